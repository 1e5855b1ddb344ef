//! A recurrent layer's fused gate step and its gradient on the CPU: the reference for
//! `shaders/recurrent.wgsl` (the math is in [`crate::recurrent`]). One sample's row at a time, each
//! gate block a contiguous run of `H` units, so the loops vectorise ([`simd::widest`]).

use super::{CpuTensor, simd};
use crate::error::Result;
use crate::recurrent::{Cell, Sequence, SequenceGrads, check_step};
use simd::{sigmoid, tanh};

/// Forward step `t`: the gates from `xp` and `r`, then the new state into `h` and `states`, and what
/// the backward pass needs into `hprev`, `gates` and `cells`.
pub(super) fn step(cell: Cell, t: usize, s: &mut Sequence<CpuTensor>) -> Result<()> {
    let (n, h) = s.check(cell)?;
    check_step(t, s.steps)?;
    simd::widest(
        #[inline(always)]
        || {
            for b in 0..n {
                forward_row(cell, t, b, h, s);
            }
        },
    );
    Ok(())
}

#[inline(always)]
fn forward_row(cell: Cell, t: usize, b: usize, h: usize, s: &mut Sequence<CpuTensor>) {
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    let row = b * s.steps + t;
    let prev = &mut s.hprev.data[row * h..][..h];
    let state = &mut s.h.data[b * h..][..h];
    if t == 0 {
        prev.fill(0.0);
    } else {
        prev.copy_from_slice(state);
    }
    let xp = &s.xp.data[row * g..][..g];
    let r = &s.r.data[b * g..][..g];
    let kept = &mut s.gates.data[row * saved..][..saved];
    match cell {
        Cell::Rnn => {
            let (xp, r, kept) = (&xp[..h], &r[..h], &mut kept[..h]);
            for j in 0..h {
                state[j] = tanh(xp[j] + r[j]);
                kept[j] = state[j];
            }
        }
        Cell::Lstm => {
            let (before, now) = s.cells.data.split_at_mut(row * h);
            let c = &mut now[..h];
            if t == 0 {
                c.fill(0.0);
            } else {
                c.copy_from_slice(&before[(row - 1) * h..]);
            }
            let [ki, kf, kg, ko] = blocks_mut(kept, h);
            let ([xi, xf, xg, xo], [ri, rf, rg, ro]) = (blocks(xp, h), blocks(r, h));
            for j in 0..h {
                let i = sigmoid(xi[j] + ri[j]);
                let f = sigmoid(xf[j] + rf[j]);
                let gg = tanh(xg[j] + rg[j]);
                let o = sigmoid(xo[j] + ro[j]);
                c[j] = f * c[j] + i * gg;
                (ki[j], kf[j], kg[j], ko[j]) = (i, f, gg, o);
                state[j] = o * tanh(c[j]);
            }
        }
        Cell::Gru => {
            let [kr, kz, kn, krn] = blocks_mut(kept, h);
            let ([xr, xz, xn], [rr_, rz, rn]) = (blocks(xp, h), blocks(r, h));
            let prev = &prev[..h];
            for j in 0..h {
                let rr = sigmoid(xr[j] + rr_[j]);
                let z = sigmoid(xz[j] + rz[j]);
                let nn = tanh(xn[j] + rr * rn[j]);
                (kr[j], kz[j], kn[j], krn[j]) = (rr, z, nn, rn[j]);
                state[j] = (1.0 - z) * nn + z * prev[j];
            }
        }
    }
    s.states.data[row * h..][..h].copy_from_slice(state);
}

/// Backward step `t`: from `dL/dh_t` (block `t` of a `[N, T·H]` `dy`, or a `[N, H]` `dy` at the last
/// step, plus `grads.dh` and `grads.carry` from step `t + 1` except at the last step), the gradients of
/// the step's pre-activations into `dxp`, `dr` (and `dr_all` for the GRU) and what step `t − 1` needs
/// into `carry`.
pub(super) fn step_backward(
    cell: Cell,
    t: usize,
    s: &Sequence<CpuTensor>,
    dy: &CpuTensor,
    grads: &mut SequenceGrads<CpuTensor>,
) -> Result<()> {
    grads.check(cell, s, dy)?;
    check_step(t, s.steps)?;
    let (n, h) = (s.h.rows, s.h.cols);
    simd::widest(
        #[inline(always)]
        || {
            let mut dh = vec![0.0f32; h];
            for b in 0..n {
                state_gradient(t, b, h, s, dy, grads, &mut dh);
                backward_row(cell, t, b, h, s, grads, &dh);
            }
        },
    );
    Ok(())
}

/// `dL/dh_t` of sample `b` into `dh`: `dy`'s share, plus the next step's product except at the last step.
#[inline(always)]
fn state_gradient(
    t: usize,
    b: usize,
    h: usize,
    s: &Sequence<CpuTensor>,
    dy: &CpuTensor,
    grads: &SequenceGrads<CpuTensor>,
    dh: &mut [f32],
) {
    let last = t + 1 == s.steps;
    if last {
        dh.fill(0.0);
    } else {
        dh.copy_from_slice(&grads.dh.data[b * h..][..h]);
    }
    let every_step = dy.cols != h || s.steps == 1;
    let from_dy = if every_step {
        Some(&dy.data[(b * s.steps + t) * h..][..h])
    } else if last {
        Some(&dy.data[b * h..][..h])
    } else {
        None
    };
    if let Some(from_dy) = from_dy {
        dh.iter_mut().zip(from_dy).for_each(|(d, y)| *d += y);
    }
}

#[inline(always)]
fn backward_row(
    cell: Cell,
    t: usize,
    b: usize,
    h: usize,
    s: &Sequence<CpuTensor>,
    grads: &mut SequenceGrads<CpuTensor>,
    dh: &[f32],
) {
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    let row = b * s.steps + t;
    let last = t + 1 == s.steps;
    let kept = &s.gates.data[row * saved..][..saved];
    let dxp = &mut grads.dxp.data[row * g..][..g];
    let dr = &mut grads.dr.data[b * g..][..g];
    let carry = &mut grads.carry.data[b * h..][..h];
    if last && cell != Cell::Rnn {
        carry.fill(0.0);
    }
    match cell {
        Cell::Rnn => {
            let (dh, kept, out) = (&dh[..h], &kept[..h], &mut dxp[..h]);
            for j in 0..h {
                let y = kept[j];
                out[j] = dh[j] * (1.0 - y * y);
            }
            dr.copy_from_slice(dxp);
        }
        Cell::Lstm => {
            let c = &s.cells.data[row * h..][..h];
            // c_{t−1}, and 0 before the first step (any row times 0: the loop stays branch-free).
            let (c_prev, keep) = if t == 0 {
                (c, 0.0)
            } else {
                (&s.cells.data[(row - 1) * h..][..h], 1.0)
            };
            let [ki, kf, kg, ko] = blocks(kept, h);
            let [di, df, dg, d_o] = blocks_mut(dxp, h);
            let dh = &dh[..h];
            for j in 0..h {
                let (i, f, gg, o) = (ki[j], kf[j], kg[j], ko[j]);
                let cp = keep * c_prev[j];
                let tc = tanh(c[j]);
                let dc = carry[j] + dh[j] * o * (1.0 - tc * tc);
                di[j] = dc * gg * i * (1.0 - i);
                df[j] = dc * cp * f * (1.0 - f);
                dg[j] = dc * i * (1.0 - gg * gg);
                d_o[j] = dh[j] * tc * o * (1.0 - o);
                carry[j] = dc * f;
            }
            dr.copy_from_slice(dxp);
        }
        Cell::Gru => {
            let prev = &s.hprev.data[row * h..][..h];
            let all = &mut grads.dr_all.data[row * g..][..g];
            let [kr, kz, kn, krn] = blocks(kept, h);
            let [dxr, dxz, dxn] = blocks_mut(dxp, h);
            let [dar, daz, dan] = blocks_mut(all, h);
            let dh = &dh[..h];
            for j in 0..h {
                let (rr, z, nn, rn) = (kr[j], kz[j], kn[j], krn[j]);
                let d = dh[j] + carry[j];
                let dn = d * (1.0 - z) * (1.0 - nn * nn);
                let dz = d * (prev[j] - nn) * z * (1.0 - z);
                let dr_gate = dn * rn * rr * (1.0 - rr);
                (dxr[j], dxz[j], dxn[j]) = (dr_gate, dz, dn);
                (dar[j], daz[j], dan[j]) = (dr_gate, dz, dn * rr);
                carry[j] = d * z;
            }
            dr.copy_from_slice(all);
        }
    }
}

/// The first `K` blocks of `h` values of `v`.
#[inline(always)]
fn blocks<const K: usize>(v: &[f32], h: usize) -> [&[f32]; K] {
    std::array::from_fn(|k| &v[k * h..][..h])
}

/// The first `K` blocks of `h` values of `v`, mutable.
#[inline(always)]
fn blocks_mut<const K: usize>(v: &mut [f32], h: usize) -> [&mut [f32]; K] {
    let mut rest = v;
    std::array::from_fn(|_| {
        let (block, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        block
    })
}
