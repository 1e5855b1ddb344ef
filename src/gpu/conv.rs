//! A convolution's backward pass on the GPU. The filters' gradient works the book's way over the whole
//! batch: im2col, the output gradient laid out as rows, one product `dW = Gᵀ·cols`. The input's
//! gradient is itself a convolution where the window allows it (stride 1, square, padding below the
//! size) and the input has enough channels: the output gradient convolved with the flipped, transposed
//! filters by the implicit GEMM, `dx[n, c] = Σ_o rot180(W[o, c]) ⋆ dy[n, o]` with padding
//! `K − 1 − pad`, so no columns are written or folded back. Other layers take the product `dcols = G·W`
//! and col2im.

use super::{GpuBackend, GpuTensor, window};
use crate::backend::{Backend, ConvGrads, Epilogue, Shaped};
use crate::error::Result;
use crate::window::Window;

/// Input channels from which the input's gradient runs as a convolution. The channels are that
/// product's columns, and a product kernel's workgroup covers 32 (subgroup) or 64 (tiled) of them.
/// On lavapipe, SimpleConvNet's layer (one channel) took 479.7 ms for its whole backward pass this way
/// against 133.0 ms through the product and col2im; DeepConvNet's second (16 channels) took 112.8 ms
/// for the input's gradient against 225.8 ms (BENCHMARKS.md).
const CONVOLVED_INPUT_GRADIENT_MIN_CHANNELS: usize = 8;

/// Whole-batch buffers kept from one step to the next: im2col's columns (reused for their gradient
/// where col2im runs), the output gradient in rows, and the flipped filters.
#[derive(Default)]
pub struct ConvScratch {
    cols: Option<GpuTensor>,
    dy_rows: Option<GpuTensor>,
    flipped: Option<GpuTensor>,
}

/// The buffer in `slot`, (re)allocated unless it is already `rows × cols`.
fn sized<'a>(
    gpu: &GpuBackend,
    slot: &'a mut Option<GpuTensor>,
    rows: usize,
    cols: usize,
) -> Result<&'a mut GpuTensor> {
    if slot
        .as_ref()
        .is_none_or(|t| t.rows() != rows || t.cols() != cols)
    {
        *slot = Some(gpu.zeros(rows, cols)?);
    }
    Ok(slot.as_mut().expect("allocated above"))
}

pub(super) fn backward(
    gpu: &GpuBackend,
    w: &Window,
    x: &GpuTensor,
    dy: &GpuTensor,
    weight: &GpuTensor,
    grads: ConvGrads<'_, GpuTensor>,
    scratch: &mut ConvScratch,
) -> Result<()> {
    let (_, filters) = w.check_convolution_backward(x, dy, weight, &grads)?;
    let rows = x.rows() * w.positions();
    let cols = sized(gpu, &mut scratch.cols, rows, w.patch())?;
    let dy_rows = sized(gpu, &mut scratch.dy_rows, rows, filters)?;
    gpu.im2col(w, x, cols)?;
    gpu.planes_to_rows(w.positions(), dy, dy_rows)?;
    gpu.matmul(dy_rows, true, cols, false, Epilogue::none(), grads.weight)?;
    gpu.bias_grad(dy_rows, grads.bias)?;
    let Some(dx) = grads.input else {
        return Ok(());
    };
    let transposed = w
        .transposed(filters)
        .filter(|_| w.input.channels >= CONVOLVED_INPUT_GRADIENT_MIN_CHANNELS);
    match transposed {
        Some(t) => {
            let flipped = sized(gpu, &mut scratch.flipped, w.input.channels, t.patch())?;
            window::flip_filters(gpu, w, weight, flipped)?;
            gpu.launch_convolution(&t, dy, flipped, grads.before, dx)
        }
        None => {
            // The columns are spent; their gradient takes their place.
            gpu.matmul(dy_rows, false, weight, false, Epilogue::none(), cols)?;
            gpu.col2im(w, cols, grads.before, dx)
        }
    }
}
