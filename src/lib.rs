//! nabla: neural networks from scratch, trained on any GPU through WGSL compute kernels, with a CPU
//! reference for every operation.
//!
//! The [`Backend`] trait is the seam: [`CpuBackend`] is the reference, [`GpuBackend`] runs the kernels in
//! `shaders/` through wgpu (Vulkan, Metal, DX12, or Mesa's lavapipe where there is no GPU).

#![warn(missing_docs)]

pub mod activation;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cpu;
pub mod curriculum;
pub mod data;
pub mod distributed;
pub mod dropout;
pub mod error;
pub mod fetch;
pub mod gpu;
pub mod init;
pub mod layers;
pub mod mnist;
pub mod model;
pub mod numerical;
pub mod optim;
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;
pub mod png_digit;
pub mod rbm;
pub mod recurrent;
pub mod schedule;
pub mod shape;
pub mod train;
pub mod window;

pub use activation::Activation;
pub use backend::{Backend, ConvGrads, Epilogue, Shaped};
pub use cpu::{CpuBackend, CpuTensor};
pub use error::{Error, Result};
pub use gpu::{GpuBackend, GpuTensor, MatmulKernel};
pub use optim::{OptimStep, Optimizer, OptimizerKind};
