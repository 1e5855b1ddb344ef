//! A convolution on the CPU: its forward and backward passes one image at a time (that image's columns
//! stay in cache and `gemm` does the products on the job's own thread), im2col, its adjoint col2im, and the layout change from
//! one plane per channel to one row per window position. Samples are split across threads; each
//! sample's loops run in a fixed order.

use super::gemm::{Strided, gemm_in_job};
use super::{CpuTensor, activation, chunk_len, in_parallel, samples_per_job};
use crate::activation::Activation;
use crate::backend::{ConvGrads, Epilogue};
use crate::error::{Error, Result};
use crate::shape;
use crate::window::{Window, check_layouts};

/// The output columns `lo..hi` whose window offset `j` reads inside a row of `width` (at
/// `ow·s + j − pad`), out of `out`.
fn inside_run(w: &Window, j: usize, width: usize, out: usize) -> (usize, usize) {
    let hi = (width + w.padding)
        .saturating_sub(j)
        .div_ceil(w.stride)
        .min(out);
    let lo = w.padding.saturating_sub(j).div_ceil(w.stride).min(hi);
    (lo, hi)
}

/// One image's columns transposed, `cols_t[(c·KH + i)·KW + j, oh·OW + ow] = x[c, oh·s + i − pad,
/// ow·s + j − pad]` (0 in the padding), as the forward and backward passes use them: each output row
/// of a column is one run, a plain copy of an input row's run at stride 1.
fn image_columns_t(w: &Window, x: &[f32], cols_t: &mut [f32]) {
    let (height, width, out_w) = (w.input.height, w.input.width, w.out_width());
    let mut columns = cols_t.chunks_exact_mut(w.positions());
    for plane in x.chunks_exact(height * width) {
        for i in 0..w.kernel_h {
            for j in 0..w.kernel_w {
                let column = columns.next().expect("sized by the shape check");
                let (lo, hi) = inside_run(w, j, width, out_w);
                for (oh, run) in column.chunks_exact_mut(out_w).enumerate() {
                    let Some(r) = w.source(oh, i, height) else {
                        run.fill(0.0);
                        continue;
                    };
                    run[..lo].fill(0.0);
                    run[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let first = r * width + lo * w.stride + j - w.padding;
                    let inside = &mut run[lo..hi];
                    if w.stride == 1 {
                        inside.copy_from_slice(&plane[first..first + inside.len()]);
                    } else {
                        let source = plane[first..].iter().step_by(w.stride);
                        inside.iter_mut().zip(source).for_each(|(v, x)| *v = *x);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`image_columns_t`]: adds every entry of `cols_t` onto the input position it was read
/// from, into `dx` (zeroed first), in a fixed order.
fn image_col2im_t(w: &Window, cols_t: &[f32], dx: &mut [f32]) {
    let (height, width, out_w) = (w.input.height, w.input.width, w.out_width());
    dx.fill(0.0);
    let mut columns = cols_t.chunks_exact(w.positions());
    for plane in dx.chunks_exact_mut(height * width) {
        for i in 0..w.kernel_h {
            for j in 0..w.kernel_w {
                let column = columns.next().expect("sized by the shape check");
                let (lo, hi) = inside_run(w, j, width, out_w);
                for (oh, run) in column.chunks_exact(out_w).enumerate() {
                    if let Some(r) = w.source(oh, i, height).filter(|_| lo < hi) {
                        let first = r * width + lo * w.stride + j - w.padding;
                        let target = plane[first..].iter_mut().step_by(w.stride);
                        target.zip(&run[lo..hi]).for_each(|(d, g)| *d += g);
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
        let mut cols_t = vec![0.0; patch * positions];
        for (x, rows) in images.chunks(image).zip(rows.chunks_mut(positions * patch)) {
            image_columns_t(w, x, &mut cols_t);
            transpose(&cols_t, patch, rows);
        }
    });
    Ok(())
}

/// The convolution one image at a time: its columns, transposed (`[C·KH·KW, P]`, small enough to stay
/// in cache), then one product with the filters written straight into its output planes `[O, P]`,
/// then the bias and activation. Images are split across threads.
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
        let mut cols_t = vec![0.0; patch * positions];
        for (x, y) in images.chunks(image).zip(outputs.chunks_mut(out_len)) {
            image_columns_t(w, x, &mut cols_t);
            // y [filters, positions] = W [filters, patch] · cols_t [patch, positions], then the bias
            // (no addition without one: `-0.0 + 0.0` would turn the sign, where the GPU stores the
            // value as it is) and the activation.
            let finish = |o: usize, _: usize, plane: &mut [f32]| {
                if let Some(bias) = bias {
                    let b = bias.data[o];
                    plane.iter_mut().for_each(|v| *v += b);
                }
                activation::forward_in_place(f, plane);
            };
            gemm_in_job(
                (filters, patch, positions),
                Strided {
                    data: &weight.data,
                    row: patch,
                    col: 1,
                },
                Strided {
                    data: &cols_t,
                    row: positions,
                    col: 1,
                },
                y,
                false,
                &finish,
            );
        }
    });
    Ok(())
}

/// Multiplies `dx` by `f'` from the forward output, where `before` asks for it.
pub(super) fn times_derivative(before: Epilogue<'_, CpuTensor>, dx: &mut CpuTensor) -> Result<()> {
    if let Some((f, output)) = before.gradient_factor()? {
        shape::same("activation output", output, dx)?;
        if f != Activation::Identity {
            let chunk = chunk_len(dx.data.len());
            let jobs = dx.data.chunks_mut(chunk).zip(output.data.chunks(chunk));
            in_parallel(jobs, |(g, y)| activation::derivative_product(f, y, g));
        }
    }
    Ok(())
}

/// Scatters every column entry back onto the input position it was read from, one image at a time
/// through its transposed columns (each sample by one thread, so the sums are deterministic).
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
        let mut cols_t = vec![0.0; patch * positions];
        for (dx, rows) in images.chunks_mut(image).zip(rows.chunks(positions * patch)) {
            transpose(rows, positions, &mut cols_t);
            image_col2im_t(w, &cols_t, dx);
        }
    });
    times_derivative(before, dx)
}

/// The backward pass one image at a time. Image n's output gradient `dy_n` `[O, P]` is its block of
/// `Gᵀ` as it lies, so with its columns built in cache, transposed (`cols_nᵀ` `[C·KH·KW, P]`):
///
///   dW += dy_n·cols_n,   db[o] += Σ_p dy_n[o, p],   dcols_nᵀ = Wᵀ·dy_n, folded back by col2im.
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
        let mut cols_t = vec![0.0; patch * positions];
        for (s, (x, dy)) in images.chunks(image).zip(dys.chunks(out_len)).enumerate() {
            image_columns_t(w, x, &mut cols_t);
            // dW [filters, patch] += dy [filters, positions] · cols_tᵀ [positions, patch].
            gemm_in_job(
                (filters, positions, patch),
                Strided {
                    data: dy,
                    row: positions,
                    col: 1,
                },
                Strided {
                    data: &cols_t,
                    row: 1,
                    col: positions,
                },
                dw,
                true,
                &|_, _, _| {},
            );
            for (d, plane) in db.iter_mut().zip(dy.chunks_exact(positions)) {
                *d += plane.iter().sum::<f32>();
            }
            if let Some(dxs) = dxs.as_deref_mut() {
                // The columns are spent; their gradient takes their place:
                // dcols_t = Wᵀ·dy_n.
                gemm_in_job(
                    (patch, filters, positions),
                    Strided {
                        data: &weight.data,
                        row: 1,
                        col: patch,
                    },
                    Strided {
                        data: dy,
                        row: positions,
                        col: 1,
                    },
                    &mut cols_t,
                    false,
                    &|_, _, _| {},
                );
                image_col2im_t(w, &cols_t, &mut dxs[s * image..(s + 1) * image]);
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

/// Columns per block of a transpose: a block's output rows (`LAYOUT_BLOCK × rows` values) stay in the
/// first-level cache while every input row gives its run of the block.
const LAYOUT_BLOCK: usize = 64;

/// `dst[c·rows + r] = src[r·cols + c]` for the `rows × cols` matrix `src` (`cols = src.len() / rows`).
fn transpose(src: &[f32], rows: usize, dst: &mut [f32]) {
    let cols = src.len() / rows.max(1);
    for first in (0..cols).step_by(LAYOUT_BLOCK) {
        let block = first..(first + LAYOUT_BLOCK).min(cols);
        for (r, row) in src.chunks_exact(cols).enumerate() {
            for c in block.clone() {
                dst[c * rows + r] = row[c];
            }
        }
    }
}

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
            transpose(src, channels, dst);
        }
    });
    Ok(())
}
