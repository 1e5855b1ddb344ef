//! Convolution's data movement and pooling on the GPU (`shaders/window.wgsl`): one invocation per
//! output element (per row and channel for im2col), gathers instead of scattered additions, so every
//! result repeats bit for bit.

use super::{GpuBackend, GpuIndices, GpuTensor, f, kernels, u};
use crate::activation::Activation;
use crate::backend::{Epilogue, Shaped};
use crate::error::{Error, Result};
use crate::shape;
use crate::window::{Window, check_layouts};

/// Invocations per workgroup (`LANES` in `shaders/elementwise.wgsl`).
const LANES: usize = 64;

/// The uniform block: the window's ten words, the activation's α and the element count.
fn params(w: &Window, batch: usize, alpha: f32, total: usize) -> [u32; 12] {
    let mut words = [0; 12];
    words[..10].copy_from_slice(&w.words(batch));
    words[10] = f(alpha);
    words[11] = u(total);
    words
}

/// Overrides `[ACT, GRAD]` and the forward output to differentiate from, for a gradient epilogue.
fn gradient<'a>(
    gpu: &'a GpuBackend,
    before: Epilogue<'a, GpuTensor>,
    dx: &GpuTensor,
) -> Result<(Activation, u32, &'a GpuTensor)> {
    match before.gradient_factor()? {
        Some((act, output)) => {
            shape::same("activation output", output, dx)?;
            Ok((act, 1, output))
        }
        None => Ok((Activation::Identity, 0, &gpu.placeholder)),
    }
}

pub(super) fn im2col(
    gpu: &GpuBackend,
    w: &Window,
    x: &GpuTensor,
    cols: &mut GpuTensor,
) -> Result<()> {
    let n = w.check_columns(x, cols)?;
    // One invocation per row and channel.
    let pairs = cols.rows() * w.input.channels;
    gpu.run(
        &kernels::IM2COL,
        &[],
        &params(w, n, 0.0, pairs),
        &[x.binding(), cols.binding()],
        gpu.grid(pairs, LANES),
    );
    Ok(())
}

/// `flipped[c, (o·KH + i)·KW + j] = weight[o, (c·KH + KH−1−i)·KW + KW−1−j]`: the filters of the
/// convolution that carries an output gradient back to the input ([`Window::transposed`]).
pub(super) fn flip_filters(
    gpu: &GpuBackend,
    w: &Window,
    weight: &GpuTensor,
    flipped: &mut GpuTensor,
) -> Result<()> {
    let filters = weight.rows();
    shape::exact("convolution filters", weight, filters, w.patch())?;
    let per_channel = filters * w.kernel_h * w.kernel_w;
    shape::exact("flipped filters", flipped, w.input.channels, per_channel)?;
    gpu.run(
        &kernels::FLIP_FILTERS,
        &[],
        &params(w, filters, 0.0, weight.len()),
        &[weight.binding(), flipped.binding()],
        gpu.grid(weight.len(), LANES),
    );
    Ok(())
}

pub(super) fn col2im(
    gpu: &GpuBackend,
    w: &Window,
    dcols: &GpuTensor,
    before: Epilogue<'_, GpuTensor>,
    dx: &mut GpuTensor,
) -> Result<()> {
    let n = w.check_columns(dx, dcols)?;
    let (act, grad, aux) = gradient(gpu, before, dx)?;
    gpu.run(
        &kernels::COL2IM,
        &[act.code(), grad],
        &params(w, n, act.alpha(), dx.len()),
        &[dcols.binding(), aux.binding(), dx.binding()],
        gpu.grid(dx.len(), LANES),
    );
    Ok(())
}

/// A window standing for `positions` rows of `channels` channels (only those words are read).
fn layout(channels: usize, positions: usize, batch: usize, total: usize) -> [u32; 12] {
    let mut words = [0; 12];
    words[0] = u(batch);
    words[1] = u(channels);
    words[8] = u(positions);
    words[9] = 1;
    words[11] = u(total);
    words
}

pub(super) fn planes_to_rows(
    gpu: &GpuBackend,
    positions: usize,
    src: &GpuTensor,
    dst: &mut GpuTensor,
) -> Result<()> {
    let (n, channels) = check_layouts(positions, dst, src)?;
    gpu.run(
        &kernels::PLANES_TO_ROWS,
        &[],
        &layout(channels, positions, n, dst.len()),
        &[src.binding(), dst.binding()],
        gpu.grid(dst.len(), LANES),
    );
    Ok(())
}

fn check_winners(argmax: &GpuIndices, outputs: usize) -> Result<()> {
    if argmax.len != outputs {
        return Err(Error::shape(format!(
            "max pooling saves {} winners for {outputs} outputs",
            argmax.len
        )));
    }
    Ok(())
}

pub(super) fn max_pool(
    gpu: &GpuBackend,
    w: &Window,
    x: &GpuTensor,
    then: Activation,
    y: &mut GpuTensor,
    argmax: &mut GpuIndices,
) -> Result<()> {
    let n = w.check_pool(x, y)?;
    check_winners(argmax, y.len())?;
    gpu.run(
        &kernels::MAX_POOL,
        &[then.code()],
        &params(w, n, then.alpha(), y.len()),
        &[x.binding(), y.binding(), argmax.binding()],
        gpu.grid(y.len(), LANES),
    );
    Ok(())
}

pub(super) fn max_pool_backward(
    gpu: &GpuBackend,
    w: &Window,
    dy: &GpuTensor,
    argmax: &GpuIndices,
    before: Epilogue<'_, GpuTensor>,
    dx: &mut GpuTensor,
) -> Result<()> {
    let n = w.check_pool(dx, dy)?;
    check_winners(argmax, dy.len())?;
    let (act, grad, aux) = gradient(gpu, before, dx)?;
    // Windows that tile the image: one invocation per window, no search (see shaders/window.wgsl).
    let (kernel, items) = if w.tiles_exactly() {
        (&kernels::MAX_POOL_BACKWARD_TILES, dy.len())
    } else {
        (&kernels::MAX_POOL_BACKWARD, dx.len())
    };
    gpu.run(
        kernel,
        &[act.code(), grad],
        &params(w, n, act.alpha(), items),
        &[dy.binding(), argmax.binding(), aux.binding(), dx.binding()],
        gpu.grid(items, LANES),
    );
    Ok(())
}

pub(super) fn avg_pool(
    gpu: &GpuBackend,
    w: &Window,
    x: &GpuTensor,
    then: Activation,
    y: &mut GpuTensor,
) -> Result<()> {
    let n = w.check_pool(x, y)?;
    gpu.run(
        &kernels::AVG_POOL,
        &[then.code()],
        &params(w, n, then.alpha(), y.len()),
        &[x.binding(), y.binding()],
        gpu.grid(y.len(), LANES),
    );
    Ok(())
}

pub(super) fn avg_pool_backward(
    gpu: &GpuBackend,
    w: &Window,
    dy: &GpuTensor,
    before: Epilogue<'_, GpuTensor>,
    dx: &mut GpuTensor,
) -> Result<()> {
    let n = w.check_pool(dx, dy)?;
    let (act, grad, aux) = gradient(gpu, before, dx)?;
    gpu.run(
        &kernels::AVG_POOL_BACKWARD,
        &[act.code(), grad],
        &params(w, n, act.alpha(), dx.len()),
        &[dy.binding(), aux.binding(), dx.binding()],
        gpu.grid(dx.len(), LANES),
    );
    Ok(())
}
