//! Element-wise ops on the CPU: activations, dropout and the row-wise softmax.

use super::loss::softmax_row;
use super::{CpuTensor, chunk_len, in_parallel};
use crate::activation::Activation;
use crate::backend::Shaped;
use crate::dropout;
use crate::error::Result;
use crate::shape;

pub(super) fn activation_forward(f: Activation, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
    shape::same("activation", x, y)?;
    let chunk = chunk_len(y.len());
    let jobs = y.data.chunks_mut(chunk).zip(x.data.chunks(chunk));
    in_parallel(jobs, |(y, x)| {
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = f.forward(x));
    });
    Ok(())
}

pub(super) fn dropout(p: f32, key: u64, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
    shape::same("dropout", x, y)?;
    dropout::check(p)?;
    let (threshold, scale) = (dropout::threshold(p), dropout::scale(p));
    for (i, (y, &x)) in y.data.iter_mut().zip(&x.data).enumerate() {
        *y = if dropout::draw(key, i as u32) >= threshold {
            x * scale
        } else {
            0.0
        };
    }
    Ok(())
}

pub(super) fn activation_backward(
    f: Activation,
    x: &CpuTensor,
    dy: &CpuTensor,
    dx: &mut CpuTensor,
) -> Result<()> {
    shape::same("activation backward (x, dy)", x, dy)?;
    shape::same("activation backward (x, dx)", x, dx)?;
    let chunk = chunk_len(dx.len());
    let jobs = dx
        .data
        .chunks_mut(chunk)
        .zip(x.data.chunks(chunk))
        .zip(dy.data.chunks(chunk));
    in_parallel(jobs, |((dx, x), dy)| {
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            *dx = dy * f.derivative(x);
        }
    });
    Ok(())
}

pub(super) fn softmax(x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
    shape::same("softmax", x, y)?;
    let cols = x.cols.max(1);
    for (xr, yr) in x.data.chunks_exact(cols).zip(y.data.chunks_exact_mut(cols)) {
        softmax_row(xr, yr);
    }
    Ok(())
}
