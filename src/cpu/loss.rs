//! Losses on the CPU, each fused with its gradient, and the trainer's running tally.

use super::CpuTensor;
use crate::activation::Activation;
use crate::error::Result;
use crate::shape;

pub(super) fn softmax_cross_entropy(
    logits: &CpuTensor,
    labels: &[u32],
    dlogits: &mut CpuTensor,
    loss: &mut CpuTensor,
) -> Result<()> {
    shape::labels(logits.rows, labels.len())?;
    shape::same("softmax cross-entropy gradient", logits, dlogits)?;
    scalar_out(loss)?;
    let cols = logits.cols.max(1);
    let inv_b = 1.0 / logits.rows as f32;
    let mut total = 0.0f64;
    let rows = logits
        .data
        .chunks_exact(cols)
        .zip(dlogits.data.chunks_exact_mut(cols));
    for ((z, dz), &t) in rows.zip(labels) {
        let log_sum = softmax_row(z, dz);
        let t = t as usize;
        total += f64::from(z.get(t).map_or(f32::NAN, |zt| log_sum - zt));
        for (j, d) in dz.iter_mut().enumerate() {
            *d = (*d - f32::from(j == t)) * inv_b;
        }
    }
    loss.data[0] = (total / logits.rows as f64) as f32;
    Ok(())
}

pub(super) fn sigmoid_binary_cross_entropy(
    logits: &CpuTensor,
    targets: &CpuTensor,
    dlogits: &mut CpuTensor,
    loss: &mut CpuTensor,
) -> Result<()> {
    shape::same("binary cross-entropy targets", logits, targets)?;
    shape::same("binary cross-entropy gradient", logits, dlogits)?;
    scalar_out(loss)?;
    let inv_b = 1.0 / logits.rows as f32;
    let mut total = 0.0f64;
    for ((&z, &t), d) in logits.data.iter().zip(&targets.data).zip(&mut dlogits.data) {
        total += f64::from(z.max(0.0) - z * t + (-z.abs()).exp().ln_1p());
        *d = (Activation::Sigmoid.forward(z) - t) * inv_b;
    }
    loss.data[0] = (total / logits.rows as f64) as f32;
    Ok(())
}

pub(super) fn mean_squared_error(
    y: &CpuTensor,
    targets: &CpuTensor,
    dy: &mut CpuTensor,
    loss: &mut CpuTensor,
) -> Result<()> {
    shape::same("squared error targets", y, targets)?;
    shape::same("squared error gradient", y, dy)?;
    scalar_out(loss)?;
    let inv_b = 1.0 / y.rows as f32;
    let mut total = 0.0f64;
    for ((&y, &t), d) in y.data.iter().zip(&targets.data).zip(&mut dy.data) {
        let e = y - t;
        total += f64::from(0.5 * e * e);
        *d = e * inv_b;
    }
    loss.data[0] = (total / y.rows as f64) as f32;
    Ok(())
}

pub(super) fn tally(
    logits: &CpuTensor,
    labels: &[u32],
    loss: &CpuTensor,
    totals: &mut CpuTensor,
) -> Result<()> {
    shape::labels(logits.rows, labels.len())?;
    shape::exact("loss", loss, 1, 1)?;
    shape::exact("running totals", totals, 1, 2)?;
    totals.data[0] += loss.data[0];
    totals.data[1] += hits(logits, labels) as f32;
    Ok(())
}

fn scalar_out(loss: &mut CpuTensor) -> Result<()> {
    shape::exact("loss", loss, 1, 1)
}

/// Writes the softmax of `z` into `out` and returns `log Σ exp(z)` (computed max-subtracted).
pub(crate) fn softmax_row(z: &[f32], out: &mut [f32]) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &v) in out.iter_mut().zip(z) {
        *o = (v - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
    max + sum.ln()
}

/// Rows whose predicted class is the label: the first maximum's column, or for one column
/// `[z > 0]` (a binary classifier's logit).
fn hits(logits: &CpuTensor, labels: &[u32]) -> usize {
    if logits.cols == 1 {
        return logits
            .data
            .iter()
            .zip(labels)
            .filter(|(z, t)| u32::from(**z > 0.0) == **t)
            .count();
    }
    logits
        .data
        .chunks_exact(logits.cols.max(1))
        .zip(labels)
        .filter(|(row, t)| argmax(row) == **t as usize)
        .count()
}

/// Index of the first largest element (0 for an empty row; NaN is never larger). Chosen with selects,
/// not branches, which a classifier's logits would mispredict.
pub fn argmax(row: &[f32]) -> usize {
    let (mut best, mut top) = (0, row.first().copied().unwrap_or(f32::NAN));
    for (j, &v) in row.iter().enumerate().skip(1) {
        let larger = v > top;
        best = if larger { j } else { best };
        top = if larger { v } else { top };
    }
    best
}
