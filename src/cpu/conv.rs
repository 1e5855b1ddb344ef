//! A convolution on the CPU: its forward and backward passes one image at a time (that image's columns
//! stay in cache and sgemm does the products), im2col, its adjoint col2im, and the layout change from
//! one plane per channel to one row per window position. Samples are split across threads; each
//! sample's loops run in a fixed order.

use super::{CpuTensor, in_parallel, samples_per_job};
use crate::activation::Activation;
use crate::backend::{ConvGrads, Epilogue};
use crate::error::{Error, Result};
use crate::shape;
use crate::window::{Window, check_layouts};

/// One image's columns, `rows[oh·OW + ow, (c·KH + i)·KW + j] = x[c, oh·s + i − pad, ow·s + j − pad]`.
fn sample_columns(w: &Window, x: &[f32], rows: &mut [f32]) {
    let (height, width) = (w.input.height, w.input.width);
    let mut out = rows.iter_mut();
    for oh in 0..w.out_height() {
        for ow in 0..w.out_width() {
            for plane in x.chunks_exact(height * width) {
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

pub(super) fn im2col(w: &Window, x: &CpuTensor, cols: &mut CpuTensor) -> Result<()> {
    let n = w.check_columns(x, cols)?;
    let (image, patch, positions) = (w.input.len(), w.patch(), w.positions());
    let per_job = samples_per_job(n, positions * patch);
    let jobs = x
        .data
        .chunks(image * per_job)
        .zip(cols.data.chunks_mut(positions * patch * per_job));
    in_parallel(jobs, |(images, rows)| {
        for (x, rows) in images.chunks(image).zip(rows.chunks_mut(positions * patch)) {
            sample_columns(w, x, rows);
        }
    });
    Ok(())
}

/// The convolution one image at a time: its columns (`[P, C·KH·KW]`, small enough to stay in cache),
/// then one product with the filters written straight into its output planes `[O, P]`, then the bias
/// and activation. Images are split across threads.
pub(super) fn convolution(
    w: &Window,
    x: &CpuTensor,
    weight: &CpuTensor,
    epilogue: Epilogue<'_, CpuTensor>,
    y: &mut CpuTensor,
) -> Result<()> {
    if epilogue.grad_output().is_some() {
        return Err(Error::Invalid(
            "a convolution takes a forward epilogue".into(),
        ));
    }
    let (n, filters) = w.check_convolution(x, weight, epilogue.bias_row(), y)?;
    let (image, patch, positions) = (w.input.len(), w.patch(), w.positions());
    let out_len = filters * positions;
    let (f, bias) = (epilogue.activation(), epilogue.bias_row());
    let per_job = samples_per_job(n, positions * patch * filters);
    let jobs = x
        .data
        .chunks(image * per_job)
        .zip(y.data.chunks_mut(out_len * per_job));
    in_parallel(jobs, |(images, outputs)| {
        let mut cols = vec![0.0; positions * patch];
        for (x, y) in images.chunks(image).zip(outputs.chunks_mut(out_len)) {
            sample_columns(w, x, &mut cols);
            // SAFETY: weight is [filters, patch] and cols [positions, patch] read as its transpose
            // [patch, positions]; y holds filters × positions values; none alias.
            unsafe {
                matrixmultiply::sgemm(
                    filters,
                    patch,
                    positions,
                    1.0,
                    weight.data.as_ptr(),
                    patch as isize,
                    1,
                    cols.as_ptr(),
                    1,
                    patch as isize,
                    0.0,
                    y.as_mut_ptr(),
                    positions as isize,
                    1,
                );
            }
            for (o, plane) in y.chunks_exact_mut(positions).enumerate() {
                // No addition without a bias: `-0.0 + 0.0` would turn the sign, where the GPU
                // stores the value as it is.
                let b = bias.map(|b| b.data[o]);
                for v in plane {
                    *v = f.forward(b.map_or(*v, |b| *v + b));
                }
            }
        }
    });
    Ok(())
}

/// Multiplies `dx` by `f'` from the forward output, where `before` asks for it.
pub(super) fn times_derivative(before: Epilogue<'_, CpuTensor>, dx: &mut CpuTensor) -> Result<()> {
    if let Some((f, output)) = before.gradient_factor()? {
        shape::same("activation output", output, dx)?;
        if f != Activation::Identity {
            dx.data
                .iter_mut()
                .zip(&output.data)
                .for_each(|(g, &y)| *g *= f.output_derivative(y));
        }
    }
    Ok(())
}

/// One image's col2im: adds every entry of its columns `rows` `[P, C·KH·KW]` onto the input position it
/// was read from, in a fixed order, into `dx` (zeroed first).
fn sample_col2im(w: &Window, rows: &[f32], dx: &mut [f32]) {
    let (height, width) = (w.input.height, w.input.width);
    dx.fill(0.0);
    let mut entries = rows.iter();
    for oh in 0..w.out_height() {
        for ow in 0..w.out_width() {
            for plane in dx.chunks_exact_mut(height * width) {
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
    let jobs = dx
        .data
        .chunks_mut(image * per_job)
        .zip(dcols.data.chunks(positions * patch * per_job));
    in_parallel(jobs, |(images, rows)| {
        for (dx, rows) in images.chunks_mut(image).zip(rows.chunks(positions * patch)) {
            sample_col2im(w, rows, dx);
        }
    });
    times_derivative(before, dx)
}

/// The backward pass one image at a time. Image n's output gradient `dy_n` `[O, P]` is its block of
/// `Gᵀ` as it lies, so with its columns `cols_n` `[P, C·KH·KW]` (built in cache):
///
///   dW += dy_n·cols_n,   db[o] += Σ_p dy_n[o, p],   dcols_n = dy_nᵀ·W, folded back by col2im.
///
/// Each thread sums its images into its own dW and db, in image order; the threads' sums are then
/// added in job order, so results repeat for a given thread count.
pub(super) fn convolution_backward(
    w: &Window,
    x: &CpuTensor,
    dy: &CpuTensor,
    weight: &CpuTensor,
    grads: ConvGrads<'_, CpuTensor>,
) -> Result<()> {
    let (n, filters) = w.check_convolution_backward(x, dy, weight, &grads)?;
    let ConvGrads {
        weight: dweight,
        bias: dbias,
        mut input,
        before,
    } = grads;
    let (image, patch, positions) = (w.input.len(), w.patch(), w.positions());
    let out_len = filters * positions;
    let per_job = samples_per_job(n, positions * patch * filters);
    let jobs = n.div_ceil(per_job);
    let mut dx_jobs: Vec<Option<&mut [f32]>> = match input.as_deref_mut() {
        Some(dx) => dx.data.chunks_mut(image * per_job).map(Some).collect(),
        None => (0..jobs).map(|_| None).collect(),
    };
    let mut partials = vec![(vec![0.0; filters * patch], vec![0.0; filters]); jobs];
    let work = x
        .data
        .chunks(image * per_job)
        .zip(dy.data.chunks(out_len * per_job))
        .zip(dx_jobs.iter_mut().zip(partials.iter_mut()));
    in_parallel(work, |((images, dys), (dxs, (dw, db)))| {
        let mut cols = vec![0.0; positions * patch];
        for (s, (x, dy)) in images.chunks(image).zip(dys.chunks(out_len)).enumerate() {
            sample_columns(w, x, &mut cols);
            // SAFETY: dy is [filters, positions], cols [positions, patch], dw [filters, patch];
            // none alias.
            unsafe {
                matrixmultiply::sgemm(
                    filters,
                    positions,
                    patch,
                    1.0,
                    dy.as_ptr(),
                    positions as isize,
                    1,
                    cols.as_ptr(),
                    patch as isize,
                    1,
                    1.0,
                    dw.as_mut_ptr(),
                    patch as isize,
                    1,
                );
            }
            for (d, plane) in db.iter_mut().zip(dy.chunks_exact(positions)) {
                *d += plane.iter().sum::<f32>();
            }
            if let Some(dxs) = dxs.as_deref_mut() {
                // The columns are spent; their gradient takes their place.
                // SAFETY: dy read as its transpose [positions, filters], weight [filters, patch],
                // cols [positions, patch]; none alias.
                unsafe {
                    matrixmultiply::sgemm(
                        positions,
                        filters,
                        patch,
                        1.0,
                        dy.as_ptr(),
                        1,
                        positions as isize,
                        weight.data.as_ptr(),
                        patch as isize,
                        1,
                        0.0,
                        cols.as_mut_ptr(),
                        patch as isize,
                        1,
                    );
                }
                sample_col2im(w, &cols, &mut dxs[s * image..(s + 1) * image]);
            }
        }
    });
    drop(dx_jobs);
    let (dw, db) = (&mut dweight.data, &mut dbias.data);
    dw.fill(0.0);
    db.fill(0.0);
    for (pw, pb) in &partials {
        dw.iter_mut().zip(pw).for_each(|(d, p)| *d += p);
        db.iter_mut().zip(pb).for_each(|(d, p)| *d += p);
    }
    match input {
        Some(dx) => times_derivative(before, dx),
        None => Ok(()),
    }
}

/// Positions per block of the layout change: a block's rows (`LAYOUT_BLOCK × C` values) stay in the
/// first-level cache while every channel's plane gives its run of the block.
const LAYOUT_BLOCK: usize = 64;

pub(super) fn planes_to_rows(positions: usize, src: &CpuTensor, dst: &mut CpuTensor) -> Result<()> {
    let (n, channels) = check_layouts(positions, dst, src)?;
    let per_sample = positions * channels;
    let per_job = samples_per_job(n, per_sample);
    let jobs = src
        .data
        .chunks(per_sample * per_job)
        .zip(dst.data.chunks_mut(per_sample * per_job));
    in_parallel(jobs, |(src, dst)| {
        for (src, dst) in src.chunks(per_sample).zip(dst.chunks_mut(per_sample)) {
            for first in (0..positions).step_by(LAYOUT_BLOCK) {
                let block = first..(first + LAYOUT_BLOCK).min(positions);
                for (c, plane) in src.chunks_exact(positions).enumerate() {
                    for p in block.clone() {
                        dst[p * channels + c] = plane[p];
                    }
                }
            }
        }
    });
    Ok(())
}
