//! Activations, dropout and Bernoulli sampling on the GPU (`shaders/activation.wgsl`, `shaders/dropout.wgsl`).

use super::{ELEMENTWISE_BLOCK, GpuBackend, GpuTensor, f, kernels, u};
use crate::activation::Activation;
use crate::backend::Shaped;
use crate::dropout;
use crate::error::Result;
use crate::shape;

pub(super) fn activation_forward(
    gpu: &GpuBackend,
    act: Activation,
    x: &GpuTensor,
    y: &mut GpuTensor,
) -> Result<()> {
    shape::same("activation", x, y)?;
    gpu.run(
        &kernels::ACT_FORWARD,
        &[act.code()],
        &[u(x.len()), f(act.alpha())],
        &[x.binding(), y.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}

pub(super) fn dropout(
    gpu: &GpuBackend,
    p: f32,
    key: u64,
    x: &GpuTensor,
    y: &mut GpuTensor,
) -> Result<()> {
    shape::same("dropout", x, y)?;
    dropout::check(p)?;
    dropout_unchecked(gpu, p, key, x, y);
    Ok(())
}

pub(super) fn sample_bernoulli(
    gpu: &GpuBackend,
    key: u64,
    p: &GpuTensor,
    s: &mut GpuTensor,
) -> Result<()> {
    shape::same("sample_bernoulli", p, s)?;
    gpu.run(
        &kernels::BERNOULLI,
        &[],
        &[u(p.len()), key as u32, (key >> 32) as u32],
        &[p.binding(), s.binding()],
        gpu.grid(p.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}

/// [`dropout`] on tensors of equal length (any shapes) with `p` already checked.
pub(super) fn dropout_unchecked(
    gpu: &GpuBackend,
    p: f32,
    key: u64,
    x: &GpuTensor,
    y: &mut GpuTensor,
) {
    gpu.run(
        &kernels::DROPOUT_MASK,
        &[],
        &[
            u(x.len()),
            key as u32,
            (key >> 32) as u32,
            dropout::threshold(p),
            f(dropout::scale(p)),
        ],
        &[x.binding(), y.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
}

pub(super) fn activation_backward(
    gpu: &GpuBackend,
    act: Activation,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &mut GpuTensor,
) -> Result<()> {
    shape::same("activation backward (x, dy)", x, dy)?;
    shape::same("activation backward (x, dx)", x, dx)?;
    gpu.run(
        &kernels::ACT_BACKWARD,
        &[act.code()],
        &[u(x.len()), f(act.alpha())],
        &[x.binding(), dy.binding(), dx.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}

pub(super) fn copy(gpu: &GpuBackend, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    shape::same_len("copy", x, y)?;
    dropout_unchecked(gpu, 0.0, 0, x, y);
    Ok(())
}
