//! The CPU's matrix product with its epilogues, bias gradient, vector updates and gradient clipping.

use super::gemm::{Strided, gemm};
use super::{CpuTensor, activation, chunk_len, in_parallel, simd};
use crate::activation::Activation;
use crate::backend::{Epilogue, Shaped};
use crate::error::Result;
use crate::shape;

pub(super) fn matmul(
    a: &CpuTensor,
    trans_a: bool,
    b: &CpuTensor,
    trans_b: bool,
    epilogue: Epilogue<'_, CpuTensor>,
    c: &mut CpuTensor,
) -> Result<()> {
    let (m, k, n) = shape::matmul(a, trans_a, b, trans_b, &epilogue, c)?;
    // Strides of op(A) [m, k] and op(B) [k, n] inside their row-major storage.
    let (row, col) = if trans_a { (1, m) } else { (k, 1) };
    let a = Strided {
        data: &a.data,
        row,
        col,
    };
    let (row, col) = if trans_b { (1, k) } else { (n, 1) };
    let b = Strided {
        data: &b.data,
        row,
        col,
    };
    // The epilogue, on each row segment of C as the product finishes it.
    let finish = |i: usize, j: usize, row: &mut [f32]| match epilogue {
        Epilogue::Forward { bias, activation } => {
            if let Some(bias) = bias {
                row.iter_mut()
                    .zip(&bias.data[j..])
                    .for_each(|(v, b)| *v += b);
            }
            if activation != Activation::Identity {
                activation::forward_in_place(activation, row);
            }
        }
        Epilogue::ActivationGrad { activation, output } => {
            let y = &output.data[i * n + j..];
            activation::derivative_product(activation, y, row);
        }
    };
    gemm(m, k, n, a, b, &mut c.data, &finish);
    Ok(())
}

/// `db[j] = Σ_i dy[i, j]`, summed in row order; threads take column ranges, so the sums are the same
/// however many there are.
pub(super) fn bias_grad(dy: &CpuTensor, db: &mut CpuTensor) -> Result<()> {
    shape::exact("bias gradient", db, 1, dy.cols)?;
    if dy.rows == 0 {
        db.data.fill(0.0);
        return Ok(());
    }
    let cols = dy.cols.max(1);
    let chunk = chunk_len(dy.data.len()).div_ceil(dy.rows).max(1);
    let jobs = db.data.chunks_mut(chunk).enumerate();
    in_parallel(jobs, |(part, db)| {
        let first = part * chunk;
        db.fill(0.0);
        simd::widest(|| {
            for row in dy.data.chunks_exact(cols) {
                let row = &row[first..first + db.len()];
                db.iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
        });
    });
    Ok(())
}

pub(super) fn axpy(alpha: f32, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
    shape::same("axpy", x, y)?;
    let chunk = chunk_len(y.len());
    let jobs = y.data.chunks_mut(chunk).zip(x.data.chunks(chunk));
    in_parallel(jobs, |(y, x)| {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
    });
    Ok(())
}

pub(super) fn scale(alpha: f32, x: &mut CpuTensor) -> Result<()> {
    x.data.iter_mut().for_each(|v| *v *= alpha);
    Ok(())
}

/// `total[0] += Σ x²`, summed in order.
pub(super) fn sum_squares(x: &CpuTensor, total: &mut CpuTensor) -> Result<()> {
    shape::exact("a sum of squares' total", total, 1, 1)?;
    total.data[0] += x.data.iter().map(|v| v * v).sum::<f32>();
    Ok(())
}

/// `x *= min(1, max_norm/√total[0])`: clipping by a global norm whose squares `total` holds.
pub(super) fn clip(max_norm: f32, total: &CpuTensor, x: &mut CpuTensor) -> Result<()> {
    shape::exact("a clip's total", total, 1, 1)?;
    let factor = crate::optim::clip_factor(max_norm, total.data[0]);
    if factor != 1.0 {
        x.data.iter_mut().for_each(|v| *v *= factor);
    }
    Ok(())
}
