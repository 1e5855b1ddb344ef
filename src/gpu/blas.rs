//! Vector updates and the bias gradient on the GPU (`shaders/blas.wgsl`).

use super::{ELEMENTWISE_BLOCK, GpuBackend, GpuTensor, f, kernels, u};
use crate::backend::Shaped;
use crate::error::Result;
use crate::shape;

pub(super) fn bias_grad(gpu: &GpuBackend, dy: &GpuTensor, db: &mut GpuTensor) -> Result<()> {
    shape::exact("bias gradient", db, 1, dy.cols)?;
    let phases = gpu.bias_grad_phases;
    let cols = if phases == 1 { 64 } else { 16 };
    gpu.run(
        &kernels::COLUMN_SUMS,
        &[cols, phases],
        &[u(dy.len()), u(dy.rows), u(dy.cols), 0],
        &[dy.binding(), db.binding()],
        gpu.grid(dy.cols, cols as usize),
    );
    Ok(())
}

pub(super) fn axpy(gpu: &GpuBackend, alpha: f32, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    shape::same("axpy", x, y)?;
    gpu.run(
        &kernels::AXPY,
        &[],
        &[u(x.len()), 0, 0, f(alpha)],
        &[x.binding(), y.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}

pub(super) fn scale(gpu: &GpuBackend, alpha: f32, x: &mut GpuTensor) -> Result<()> {
    gpu.run(
        &kernels::SCALE,
        &[],
        &[u(x.len()), 0, 0, f(alpha)],
        &[x.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}
