//! Softmax, the losses fused with their gradients, and the running tally on the GPU
//! (`shaders/softmax_loss.wgsl`).

use super::GpuIndices;
use super::{GpuBackend, GpuTensor, f, kernels, u};
use crate::error::Result;
use crate::shape;

pub(super) fn softmax(gpu: &GpuBackend, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
    shape::same("softmax", x, y)?;
    gpu.run(
        &kernels::SOFTMAX,
        &[],
        &[u(x.rows), u(x.cols), 0, 0],
        &[x.binding(), y.binding()],
        gpu.grid(x.rows, 64),
    );
    Ok(())
}

pub(super) fn softmax_cross_entropy(
    gpu: &GpuBackend,
    logits: &GpuTensor,
    labels: &GpuIndices,
    dlogits: &mut GpuTensor,
    loss: &mut GpuTensor,
) -> Result<()> {
    shape::labels(logits.rows, labels.len)?;
    shape::same("softmax cross-entropy gradient", logits, dlogits)?;
    shape::exact("loss", loss, 1, 1)?;
    gpu.run(
        &kernels::SOFTMAX_XENT,
        &[],
        &loss_params(logits),
        &[
            logits.binding(),
            labels.binding(),
            dlogits.binding(),
            loss.binding(),
        ],
        [1, 1, 1],
    );
    Ok(())
}

pub(super) fn sigmoid_binary_cross_entropy(
    gpu: &GpuBackend,
    logits: &GpuTensor,
    targets: &GpuTensor,
    dlogits: &mut GpuTensor,
    loss: &mut GpuTensor,
) -> Result<()> {
    shape::same("binary cross-entropy targets", logits, targets)?;
    shape::same("binary cross-entropy gradient", logits, dlogits)?;
    shape::exact("loss", loss, 1, 1)?;
    gpu.run(
        &kernels::SIGMOID_BCE,
        &[],
        &loss_params(logits),
        &[
            logits.binding(),
            targets.binding(),
            dlogits.binding(),
            loss.binding(),
        ],
        [1, 1, 1],
    );
    Ok(())
}

pub(super) fn mean_squared_error(
    gpu: &GpuBackend,
    y: &GpuTensor,
    targets: &GpuTensor,
    dy: &mut GpuTensor,
    loss: &mut GpuTensor,
) -> Result<()> {
    shape::same("squared error targets", y, targets)?;
    shape::same("squared error gradient", y, dy)?;
    shape::exact("loss", loss, 1, 1)?;
    gpu.run(
        &kernels::MSE,
        &[],
        &loss_params(y),
        &[y.binding(), targets.binding(), dy.binding(), loss.binding()],
        [1, 1, 1],
    );
    Ok(())
}

pub(super) fn tally(
    gpu: &GpuBackend,
    logits: &GpuTensor,
    labels: &GpuIndices,
    loss: &GpuTensor,
    totals: &mut GpuTensor,
) -> Result<()> {
    shape::labels(logits.rows, labels.len)?;
    shape::exact("loss", loss, 1, 1)?;
    shape::exact("running totals", totals, 1, 2)?;
    gpu.run(
        &kernels::TALLY,
        &[],
        &loss_params(logits),
        &[
            logits.binding(),
            labels.binding(),
            totals.binding(),
            loss.binding(),
        ],
        [1, 1, 1],
    );
    Ok(())
}

/// The uniform block of the softmax/loss kernels.
fn loss_params(t: &GpuTensor) -> [u32; 4] {
    [
        u(t.rows),
        u(t.cols),
        f32::NAN.to_bits(),
        f(1.0 / t.rows as f32),
    ]
}
