//! Max and average pooling on the CPU, forward and backward. The backward passes gather: every input
//! position sums the output gradients of the windows that read it, so no two writes meet.

use super::conv::times_derivative;
use super::{CpuTensor, activation, in_parallel, samples_per_job};
use crate::activation::Activation;
use crate::backend::Epilogue;
use crate::error::{Error, Result};
use crate::window::Window;

/// The in-image `(offset i·KW + j, input index)` pairs of the window at output `o = oh·OW + ow`, in
/// `(i, j)` order.
fn window_at(w: &Window, o: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let (oh, ow) = (o / w.out_width(), o % w.out_width());
    let (height, width) = (w.input.height, w.input.width);
    (0..w.kernel_h).flat_map(move |i| {
        (0..w.kernel_w).filter_map(move |j| {
            let r = w.source(oh, i, height)?;
            let s = w.source(ow, j, width)?;
            Some((i * w.kernel_w + j, r * width + s))
        })
    })
}

/// Whether `v` beats the best so far: greater, or a NaN over a number (NaN wins, ties keep the first).
/// Written without short-circuits, so that callers compile to selects: which element wins is data,
/// and a branch on it is mispredicted half the time.
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The maximum of one plane `x` under the window at output `(oh, ow)`, and its offset `i·KW + j`.
#[inline(always)]
fn window_max(w: &Window, x: &[f32], oh: usize, ow: usize) -> (f32, usize) {
    let width = w.input.width;
    if w.padding == 0 {
        // Every window lies inside the image: plain slices, no bounds to test.
        let corner = oh * w.stride * width + ow * w.stride;
        let (mut best, mut at) = (x[corner], 0);
        for i in 0..w.kernel_h {
            let row = &x[corner + i * width..][..w.kernel_w];
            for (j, &v) in row.iter().enumerate() {
                let wins = beats(v, best);
                best = if wins { v } else { best };
                at = if wins { i * w.kernel_w + j } else { at };
            }
        }
        return (best, at);
    }
    let mut best: Option<(f32, usize)> = None;
    for i in 0..w.kernel_h {
        let Some(r) = w.source(oh, i, w.input.height) else {
            continue;
        };
        let row = &x[r * width..(r + 1) * width];
        for j in 0..w.kernel_w {
            let Some(c) = w.source(ow, j, width) else {
                continue;
            };
            if best.is_none_or(|(b, _)| beats(row[c], b)) {
                best = Some((row[c], i * w.kernel_w + j));
            }
        }
    }
    // A window always overlaps the image (padding < kernel).
    best.unwrap_or((f32::NAN, 0))
}

/// A slice that can be split into per-sample shares: the winners, written (forward) or read (backward).
trait Shares<'a>: Sized + Send {
    /// Consecutive shares of `len` values.
    fn shares(self, len: usize) -> impl Iterator<Item = Self> + Send;
}

impl<'a> Shares<'a> for &'a [u32] {
    fn shares(self, len: usize) -> impl Iterator<Item = Self> + Send {
        self.chunks(len)
    }
}

impl<'a> Shares<'a> for &'a mut [u32] {
    fn shares(self, len: usize) -> impl Iterator<Item = Self> + Send {
        self.chunks_mut(len)
    }
}

/// Splits `n` samples across threads: `job(input, output, winners)` on each share, with `in_len`
/// input values, `out_len` output values and `per_sample` winners (one per pooled value) per sample.
fn by_samples<'a, W: Shares<'a>>(
    n: usize,
    (input, in_len): (&'a [f32], usize),
    (output, out_len): (&'a mut [f32], usize),
    (winners, per_sample): (W, usize),
    job: impl Fn(&[f32], &mut [f32], W) + Sync,
) {
    let per_job = samples_per_job(n, in_len.max(out_len));
    let jobs = input
        .chunks(in_len * per_job)
        .zip(output.chunks_mut(out_len * per_job))
        .zip(winners.shares(per_sample * per_job));
    in_parallel(jobs, |((x, y), a)| job(x, y, a));
}

pub(super) fn max_pool(
    w: &Window,
    x: &CpuTensor,
    then: Activation,
    y: &mut CpuTensor,
    argmax: &mut [u32],
) -> Result<()> {
    let n = w.check_pool(x, y)?;
    if argmax.len() != y.data.len() {
        return Err(Error::shape(format!(
            "max pooling saves {} winners for {} outputs",
            argmax.len(),
            y.data.len()
        )));
    }
    let (plane, positions) = (w.input.spatial(), w.positions());
    let (width, ow_count) = (w.input.width, w.out_width());
    let out_len = positions * w.input.channels;
    let pairs = (w.kernel_h, w.kernel_w, w.stride, w.padding) == (2, 2, 2, 0);
    by_samples(
        n,
        (&x.data, w.input.len()),
        (&mut y.data, out_len),
        (&mut argmax[..], out_len),
        |x, y, argmax: &mut [u32]| {
            // Output row by output row: no division per output.
            let rows = y
                .chunks_exact_mut(ow_count)
                .zip(argmax.chunks_exact_mut(ow_count));
            for (r, (y, argmax)) in rows.enumerate() {
                let (x, oh) = (
                    &x[(r / w.out_height()) * plane..][..plane],
                    r % w.out_height(),
                );
                if pairs {
                    // 2×2 windows at stride 2 inside the image: two input rows, read in pairs.
                    let top = &x[2 * oh * width..][..2 * ow_count];
                    let bottom = &x[(2 * oh + 1) * width..][..2 * ow_count];
                    let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
                    for ((y, winner), (t, b)) in y.iter_mut().zip(argmax.iter_mut()).zip(windows) {
                        let (mut best, mut at) = (t[0], 0);
                        for (k, v) in [(1, t[1]), (2, b[0]), (3, b[1])] {
                            let wins = beats(v, best);
                            best = if wins { v } else { best };
                            at = if wins { k } else { at };
                        }
                        (*y, *winner) = (best, at);
                    }
                } else {
                    for (ow, (y, winner)) in y.iter_mut().zip(argmax.iter_mut()).enumerate() {
                        let (value, k) = window_max(w, x, oh, ow);
                        (*y, *winner) = (value, k as u32);
                    }
                }
                activation::forward_in_place(then, y);
            }
        },
    );
    Ok(())
}

/// Max pooling's backward pass as a scatter: every output adds its gradient to its winner, plane by
/// plane in output order (one thread per plane, so the sums are deterministic).
pub(super) fn max_pool_backward(
    w: &Window,
    dy: &CpuTensor,
    argmax: &[u32],
    before: Epilogue<'_, CpuTensor>,
    dx: &mut CpuTensor,
) -> Result<()> {
    let n = w.check_pool(dx, dy)?;
    if argmax.len() != dy.data.len() {
        return Err(Error::shape(format!(
            "max pooling's backward pass has {} winners for {} outputs",
            argmax.len(),
            dy.data.len()
        )));
    }
    let (plane, positions) = (w.input.spatial(), w.positions());
    let (width, ow_count) = (w.input.width, w.out_width());
    let disjoint = w.padding == 0 && w.stride >= w.kernel_h && w.stride >= w.kernel_w;
    // Each winner's offset `i·KW + j` as `(i, j)`, looked up instead of divided.
    let offsets: Vec<(usize, usize)> = (0..w.area())
        .map(|k| (k / w.kernel_w, k % w.kernel_w))
        .collect();
    by_samples(
        n,
        (&dy.data, positions * w.input.channels),
        (&mut dx.data, w.input.len()),
        (argmax, positions * w.input.channels),
        |dy, dx, argmax| {
            let planes = dx.chunks_mut(plane).zip(dy.chunks(positions));
            for ((dx, dy), argmax) in planes.zip(argmax.chunks(positions)) {
                // Zeroed plane by plane, so that the scatter finds it in cache.
                dx.fill(0.0);
                if disjoint {
                    // Windows inside the image that never overlap: each input position takes at
                    // most one gradient, written, not added.
                    let rows = dy.chunks_exact(ow_count).zip(argmax.chunks_exact(ow_count));
                    for (oh, (dy, argmax)) in rows.enumerate() {
                        let top = oh * w.stride * width;
                        for (ow, (&g, &k)) in dy.iter().zip(argmax).enumerate() {
                            if let Some(&(i, j)) = offsets.get(k as usize) {
                                dx[top + i * width + ow * w.stride + j] = g;
                            }
                        }
                    }
                    continue;
                }
                let rows = dy.chunks_exact(ow_count).zip(argmax.chunks_exact(ow_count));
                for (oh, (dy, argmax)) in rows.enumerate() {
                    for (ow, (&g, &k)) in dy.iter().zip(argmax).enumerate() {
                        let Some(&(i, j)) = offsets.get(k as usize) else {
                            continue;
                        };
                        let row = w.source(oh, i, w.input.height);
                        let col = w.source(ow, j, width);
                        if let (Some(r), Some(c)) = (row, col) {
                            dx[r * width + c] += g;
                        }
                    }
                }
            }
        },
    );
    times_derivative(before, dx)
}

pub(super) fn avg_pool(
    w: &Window,
    x: &CpuTensor,
    then: Activation,
    y: &mut CpuTensor,
) -> Result<()> {
    let n = w.check_pool(x, y)?;
    let (plane, positions) = (w.input.spatial(), w.positions());
    let scale = 1.0 / w.area() as f32;
    let per_job = samples_per_job(n, w.input.len());
    let jobs = x
        .data
        .chunks(plane * w.input.channels * per_job)
        .zip(y.data.chunks_mut(positions * w.input.channels * per_job));
    in_parallel(jobs, |(x, y)| {
        for (x, y) in x.chunks(plane).zip(y.chunks_mut(positions)) {
            for (o, y) in y.iter_mut().enumerate() {
                let sum: f32 = window_at(w, o).map(|(_, at)| x[at]).sum();
                *y = then.forward(sum * scale);
            }
        }
    });
    Ok(())
}

/// Average pooling's backward pass as a gather: `dx[h, w] = Σ dy[o] / (KH·KW)` over the windows `o`
/// covering `(h, w)`, then `⊙ f'`.
pub(super) fn avg_pool_backward(
    w: &Window,
    dy: &CpuTensor,
    before: Epilogue<'_, CpuTensor>,
    dx: &mut CpuTensor,
) -> Result<()> {
    let n = w.check_pool(dx, dy)?;
    let (plane, positions, channels) = (w.input.spatial(), w.positions(), w.input.channels);
    let (width, oh_count, ow_count) = (w.input.width, w.out_height(), w.out_width());
    let scale = 1.0 / w.area() as f32;
    let per_job = samples_per_job(n, w.input.len());
    let jobs = dx
        .data
        .chunks_mut(plane * channels * per_job)
        .zip(dy.data.chunks(positions * channels * per_job));
    in_parallel(jobs, |(dx, dy)| {
        for (dx, dy) in dx.chunks_mut(plane).zip(dy.chunks(positions)) {
            for (at, g) in dx.iter_mut().enumerate() {
                let mut sum = 0.0;
                for (oh, _) in w.covering(at / width, oh_count, w.kernel_h) {
                    for (ow, _) in w.covering(at % width, ow_count, w.kernel_w) {
                        sum += dy[oh * ow_count + ow];
                    }
                }
                *g = sum * scale;
            }
        }
    });
    times_derivative(before, dx)
}
