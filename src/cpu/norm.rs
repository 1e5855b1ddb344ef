//! Batch normalisation on the CPU: per-channel statistics accumulated in f64 (the reference the GPU's
//! f32 tree reductions are measured against).

use super::CpuTensor;
use crate::error::Result;
use crate::shape;

/// Element offsets of channel `c`'s values in a `[rows, channels·spatial]` tensor, row by row.
fn channel(rows: usize, channels: usize, spatial: usize, c: usize) -> impl Iterator<Item = usize> {
    (0..rows).flat_map(move |n| {
        let start = (n * channels + c) * spatial;
        start..start + spatial
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm_train(
    x: &CpuTensor,
    affine: &CpuTensor,
    eps: f32,
    momentum: f32,
    saved: &mut CpuTensor,
    running: &mut CpuTensor,
    y: &mut CpuTensor,
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
    let m = (x.rows * spatial) as f64;
    // Slices taken once, outside the loops (the elements' variant is not checked per value).
    let (xv, yv) = (&x.data[..], &mut y.data[..]);
    for c in 0..channels {
        let at = || channel(x.rows, channels, spatial, c);
        let mean = at().map(|i| f64::from(xv[i])).sum::<f64>() / m;
        let var = at().map(|i| (f64::from(xv[i]) - mean).powi(2)).sum::<f64>() / m;
        let r = 1.0 / (var + f64::from(eps)).sqrt();
        let (gamma, beta) = (
            f64::from(affine.data[c]),
            f64::from(affine.data[channels + c]),
        );
        for i in at() {
            yv[i] = (gamma * (f64::from(xv[i]) - mean) * r + beta) as f32;
        }
        saved.data[c] = mean as f32;
        saved.data[channels + c] = r as f32;
        let keep = 1.0 - momentum;
        running.data[c] = keep * running.data[c] + momentum * mean as f32;
        running.data[channels + c] =
            keep * running.data[channels + c] + momentum * (var * m / (m - 1.0)) as f32;
    }
    Ok(())
}

pub(super) fn batch_norm_eval(
    x: &CpuTensor,
    affine: &CpuTensor,
    running: &CpuTensor,
    eps: f32,
    y: &mut CpuTensor,
) -> Result<()> {
    let (channels, spatial) =
        shape::batch_norm(x, affine, &[("batch-norm running statistics", running)], y)?;
    let (xv, yv) = (&x.data[..], &mut y.data[..]);
    for c in 0..channels {
        let r = 1.0 / (running.data[channels + c] + eps).sqrt();
        let (mean, gamma, beta) = (running.data[c], affine.data[c], affine.data[channels + c]);
        for i in channel(x.rows, channels, spatial, c) {
            yv[i] = gamma * (xv[i] - mean) * r + beta;
        }
    }
    Ok(())
}

pub(super) fn batch_norm_backward(
    x: &CpuTensor,
    dy: &CpuTensor,
    affine: &CpuTensor,
    saved: &CpuTensor,
    daffine: &mut CpuTensor,
    dx: &mut CpuTensor,
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
    let m = (x.rows * spatial) as f64;
    let (xv, dyv, dxv) = (&x.data[..], &dy.data[..], &mut dx.data[..]);
    for c in 0..channels {
        let at = || channel(x.rows, channels, spatial, c);
        let (mean, r) = (
            f64::from(saved.data[c]),
            f64::from(saved.data[channels + c]),
        );
        let x_hat = |i: usize| (f64::from(xv[i]) - mean) * r;
        let dbeta: f64 = at().map(|i| f64::from(dyv[i])).sum();
        let dgamma: f64 = at().map(|i| f64::from(dyv[i]) * x_hat(i)).sum();
        let gamma = f64::from(affine.data[c]);
        for i in at() {
            dxv[i] = (gamma * r * (f64::from(dyv[i]) - dbeta / m - x_hat(i) * dgamma / m)) as f32;
        }
        daffine.data[c] = dgamma as f32;
        daffine.data[channels + c] = dbeta as f32;
    }
    Ok(())
}
