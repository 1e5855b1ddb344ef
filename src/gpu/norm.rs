//! Batch normalisation on the GPU (`shaders/batch_norm.wgsl`): one workgroup per channel for the
//! statistics and the backward pass, one invocation per element for evaluation.

use super::{GpuBackend, GpuTensor, f, kernels, u};
use crate::backend::Shaped;
use crate::error::Result;
use crate::shape;

/// Invocations per workgroup of the batch-norm kernels (`WG` in the shader).
const WORKGROUP: usize = 256;

fn params(x: &GpuTensor, channels: usize, spatial: usize, eps: f32, momentum: f32) -> [u32; 5] {
    [u(x.rows), u(channels), u(spatial), f(eps), f(momentum)]
}

#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm_train(
    gpu: &GpuBackend,
    x: &GpuTensor,
    affine: &GpuTensor,
    eps: f32,
    momentum: f32,
    saved: &mut GpuTensor,
    running: &mut GpuTensor,
    y: &mut GpuTensor,
) -> Result<()> {
    let (channels, spatial) = shape::batch_norm(
        x,
        affine,
        &[
            ("batch-norm saved statistics", saved),
            ("batch-norm running statistics", running),
        ],
        y,
    )?;
    shape::batch_statistics(x.rows, spatial)?;
    gpu.run(
        &kernels::BATCH_NORM_TRAIN,
        &[],
        &params(x, channels, spatial, eps, momentum),
        &[
            x.binding(),
            affine.binding(),
            saved.binding(),
            running.binding(),
            y.binding(),
        ],
        gpu.grid(channels, 1),
    );
    Ok(())
}

pub(super) fn batch_norm_eval(
    gpu: &GpuBackend,
    x: &GpuTensor,
    affine: &GpuTensor,
    running: &GpuTensor,
    eps: f32,
    y: &mut GpuTensor,
) -> Result<()> {
    let (channels, spatial) =
        shape::batch_norm(x, affine, &[("batch-norm running statistics", running)], y)?;
    gpu.run(
        &kernels::BATCH_NORM_EVAL,
        &[],
        &params(x, channels, spatial, eps, 0.0),
        &[
            x.binding(),
            affine.binding(),
            running.binding(),
            y.binding(),
        ],
        gpu.grid(x.len(), WORKGROUP),
    );
    Ok(())
}

pub(super) fn batch_norm_backward(
    gpu: &GpuBackend,
    x: &GpuTensor,
    dy: &GpuTensor,
    affine: &GpuTensor,
    saved: &GpuTensor,
    daffine: &mut GpuTensor,
    dx: &mut GpuTensor,
) -> Result<()> {
    let (channels, spatial) = shape::batch_norm(
        x,
        affine,
        &[
            ("batch-norm saved statistics", saved),
            ("batch-norm parameter gradient", daffine),
        ],
        dx,
    )?;
    shape::same("batch-norm output gradient", x, dy)?;
    gpu.run(
        &kernels::BATCH_NORM_BACKWARD,
        &[],
        &params(x, channels, spatial, 0.0, 0.0),
        &[
            x.binding(),
            dy.binding(),
            affine.binding(),
            saved.binding(),
            daffine.binding(),
            dx.binding(),
        ],
        gpu.grid(channels, 1),
    );
    Ok(())
}
