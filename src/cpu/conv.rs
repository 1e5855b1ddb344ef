//! A convolution's data movement on the CPU: im2col, its adjoint col2im, and the layout changes between
//! one row per window position and one plane per channel. The products themselves are sgemm's
//! (`linear.rs`). Samples are split across threads; each sample's loops run in a fixed order.

use super::{CpuTensor, in_parallel, samples_per_job};
use crate::activation::Activation;
use crate::backend::Epilogue;
use crate::error::Result;
use crate::window::{Window, check_layouts};

pub(super) fn im2col(w: &Window, x: &CpuTensor, cols: &mut CpuTensor) -> Result<()> {
    let n = w.check_columns(x, cols)?;
    let (image, patch, positions) = (w.input.len(), w.patch(), w.positions());
    let per_job = samples_per_job(n, positions * patch);
    let (height, width) = (w.input.height, w.input.width);
    let jobs = x
        .data
        .chunks(image * per_job)
        .zip(cols.data.chunks_mut(positions * patch * per_job));
    in_parallel(jobs, |(images, rows)| {
        for (x, rows) in images.chunks(image).zip(rows.chunks_mut(positions * patch)) {
            let mut out = rows.iter_mut();
            for oh in 0..w.out_height() {
                for ow in 0..w.out_width() {
                    for c in 0..w.input.channels {
                        let plane = &x[c * height * width..(c + 1) * height * width];
                        for i in 0..w.kernel_h {
                            let row = w.source(oh, i, height);
                            for j in 0..w.kernel_w {
                                let value = match (row, w.source(ow, j, width)) {
                                    (Some(r), Some(s)) => plane[r * width + s],
                                    _ => 0.0,
                                };
                                *out.next().expect("sized by the shape check") = value;
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Multiplies `dx` by `f'` from the forward output, where `before` asks for it.
pub(super) fn times_derivative(before: Epilogue<'_, CpuTensor>, dx: &mut CpuTensor) -> Result<()> {
    if let Some((f, output)) = before.gradient_factor()? {
        crate::shape::same("activation output", output, dx)?;
        if f != Activation::Identity {
            dx.data
                .iter_mut()
                .zip(&output.data)
                .for_each(|(g, &y)| *g *= f.output_derivative(y));
        }
    }
    Ok(())
}

/// Scatters every column entry back onto the input position it was read from (each sample by one
/// thread, so the sums are deterministic).
pub(super) fn col2im(
    w: &Window,
    dcols: &CpuTensor,
    before: Epilogue<'_, CpuTensor>,
    dx: &mut CpuTensor,
) -> Result<()> {
    let n = w.check_columns(dx, dcols)?;
    let (image, patch, positions) = (w.input.len(), w.patch(), w.positions());
    let per_job = samples_per_job(n, positions * patch);
    let (height, width) = (w.input.height, w.input.width);
    let jobs = dx
        .data
        .chunks_mut(image * per_job)
        .zip(dcols.data.chunks(positions * patch * per_job));
    in_parallel(jobs, |(images, rows)| {
        for (dx, rows) in images.chunks_mut(image).zip(rows.chunks(positions * patch)) {
            dx.fill(0.0);
            let mut entries = rows.iter();
            for oh in 0..w.out_height() {
                for ow in 0..w.out_width() {
                    for c in 0..w.input.channels {
                        let plane = &mut dx[c * height * width..(c + 1) * height * width];
                        for i in 0..w.kernel_h {
                            let row = w.source(oh, i, height);
                            for j in 0..w.kernel_w {
                                let g = entries.next().expect("sized by the shape check");
                                if let (Some(r), Some(s)) = (row, w.source(ow, j, width)) {
                                    plane[r * width + s] += g;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    times_derivative(before, dx)
}

pub(super) fn rows_to_planes(
    positions: usize,
    src: &CpuTensor,
    epilogue: Epilogue<'_, CpuTensor>,
    dst: &mut CpuTensor,
) -> Result<()> {
    let (n, channels) = check_layouts(positions, src, dst, epilogue.bias_row())?;
    if epilogue.grad_output().is_some() {
        return Err(crate::error::Error::Invalid(
            "rows_to_planes takes a forward epilogue".into(),
        ));
    }
    let f = epilogue.activation();
    let bias = epilogue.bias_row().map(|b| b.data.as_slice());
    let per_sample = positions * channels;
    let per_job = samples_per_job(n, per_sample);
    let jobs = src
        .data
        .chunks(per_sample * per_job)
        .zip(dst.data.chunks_mut(per_sample * per_job));
    in_parallel(jobs, |(src, dst)| {
        for (src, dst) in src.chunks(per_sample).zip(dst.chunks_mut(per_sample)) {
            for (p, row) in src.chunks(channels).enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    // No addition without a bias: `-0.0 + 0.0` would turn the sign, where the GPU
                    // copies the value as it is.
                    let z = bias.map_or(v, |b| v + b[c]);
                    dst[c * positions + p] = f.forward(z);
                }
            }
        }
    });
    Ok(())
}

pub(super) fn planes_to_rows(positions: usize, src: &CpuTensor, dst: &mut CpuTensor) -> Result<()> {
    let (n, channels) = check_layouts(positions, dst, src, None)?;
    let per_sample = positions * channels;
    let per_job = samples_per_job(n, per_sample);
    let jobs = src
        .data
        .chunks(per_sample * per_job)
        .zip(dst.data.chunks_mut(per_sample * per_job));
    in_parallel(jobs, |(src, dst)| {
        for (src, dst) in src.chunks(per_sample).zip(dst.chunks_mut(per_sample)) {
            for (p, row) in dst.chunks_mut(channels).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = src[c * positions + p];
                }
            }
        }
    });
    Ok(())
}
