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

pub(super) fn sum_squares(gpu: &GpuBackend, x: &GpuTensor, total: &mut GpuTensor) -> Result<()> {
    shape::exact("a sum of squares' total", total, 1, 1)?;
    gpu.run(
        &kernels::SUM_SQUARES,
        &[],
        &[u(x.len()), 0, 0, 0],
        &[x.binding(), total.binding()],
        [1, 1, 1],
    );
    Ok(())
}

pub(super) fn clip(
    gpu: &GpuBackend,
    max_norm: f32,
    total: &GpuTensor,
    x: &mut GpuTensor,
) -> Result<()> {
    shape::exact("a clip's total", total, 1, 1)?;
    gpu.run(
        &kernels::CLIP,
        &[],
        &[u(x.len()), 0, 0, f(max_norm)],
        &[total.binding(), x.binding()],
        gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}
