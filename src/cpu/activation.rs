//! Element-wise ops on the CPU: activations, dropout, Bernoulli sampling and the row-wise softmax.

use super::loss::softmax_row;
use super::{CpuTensor, chunk_len, in_parallel, simd};
use crate::activation::Activation;
use crate::backend::Shaped;
use crate::dropout;
use crate::error::Result;
use crate::shape;

pub(super) fn activation_forward(f: Activation, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
    shape::same("activation", x, y)?;
    let chunk = chunk_len(y.len());
    let jobs = y.data.chunks_mut(chunk).zip(x.data.chunks(chunk));
    // The epilogue's code on a copy, so that a separate activation layer computes the fused one's bits.
    in_parallel(jobs, |(y, x)| {
        y.copy_from_slice(x);
        forward_in_place(f, y);
    });
    Ok(())
}

/// `v = f(v)` over a row: a matrix product's epilogue. ReLU and sigmoid's mapping runs at the
/// widest vectors; the others call [`Activation::forward`] per element.
pub(super) fn forward_in_place(f: Activation, row: &mut [f32]) {
    match f {
        Activation::Identity => {}
        Activation::Relu => simd::widest(|| row.iter_mut().for_each(|v| *v = v.max(0.0))),
        // The vectorised sigmoid, within 2e-7 (absolute) of libm's (`cpu::simd`'s accuracy test).
        Activation::Sigmoid => simd::widest(|| row.iter_mut().for_each(|v| *v = simd::sigmoid(*v))),
        _ => row.iter_mut().for_each(|v| *v = f.forward(*v)),
    }
}

/// `g = g · f'(z)` over a row, with `f'(z)` computed from the forward output `y = f(z)`: a matrix
/// product's epilogue in backprop.
pub(super) fn derivative_product(f: Activation, y: &[f32], g: &mut [f32]) {
    match f {
        Activation::Relu => simd::widest(|| {
            g.iter_mut()
                .zip(y)
                .for_each(|(g, &y)| *g *= f32::from(y > 0.0))
        }),
        Activation::Sigmoid => {
            simd::widest(|| g.iter_mut().zip(y).for_each(|(g, &y)| *g *= y * (1.0 - y)))
        }
        _ => g
            .iter_mut()
            .zip(y)
            .for_each(|(g, &y)| *g *= f.output_derivative(y)),
    }
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

pub(super) fn sample_bernoulli(key: u64, p: &CpuTensor, s: &mut CpuTensor) -> Result<()> {
    shape::same("sample_bernoulli", p, s)?;
    for (i, (s, &p)) in s.data.iter_mut().zip(&p.data).enumerate() {
        *s = dropout::bernoulli(dropout::draw(key, i as u32), p);
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
