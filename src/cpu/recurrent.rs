//! A recurrent layer on the CPU: the fused gate step and its gradient (the reference for
//! `shaders/recurrent.wgsl`; the math is in [`crate::recurrent`]), and whole forward and backward passes
//! over the time steps with the batch split across threads.
//!
//! Sequences are batch-major, so a range of samples owns one contiguous run of every buffer's rows:
//! each thread takes its samples ([`Rows`]) through every step, with its own recurrent products, and
//! the threads meet once per pass instead of twice per step. Each gate block is a contiguous run of
//! `H` units, so the gate loops vectorise ([`simd::widest`]). The steps' products run on the thread's
//! own share with the recurrent weights packed once per pass ([`PackedB`]).

use super::gemm::{PackedB, Strided, gemm_packed_in_job};
use super::{CpuTensor, in_parallel, simd, threads};
use crate::error::Result;
use crate::recurrent::{Cell, Sequence, SequenceGrads, check_step};
use simd::{sigmoid, tanh};

/// One range of samples' share of a [`Sequence`] and its [`SequenceGrads`] (local sample indices).
struct Rows<'a> {
    steps: usize,
    h: usize,
    xp: &'a [f32],
    r: &'a mut [f32],
    gates: &'a mut [f32],
    cells: &'a mut [f32],
    hprev: &'a mut [f32],
    state: &'a mut [f32],
    states: &'a mut [f32],
}

/// One range of samples' share of the backward pass's buffers.
struct GradRows<'a> {
    dy: &'a [f32],
    dxp: &'a mut [f32],
    dr_all: &'a mut [f32],
    dr: &'a mut [f32],
    dh: &'a mut [f32],
    carry: &'a mut [f32],
}

/// Splits `v` into consecutive chunks of `sizes[i]·per` values (an empty `v`, a 1×1 placeholder's
/// stand-in, into empty chunks).
fn chunks<'a>(v: &'a mut [f32], sizes: &[usize], per: usize) -> Vec<&'a mut [f32]> {
    let mut rest = v;
    sizes
        .iter()
        .map(|&n| {
            let take = (n * per).min(rest.len());
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            head
        })
        .collect()
}

/// The sample counts of the ranges a batch of `n` is split into: one per thread when each has enough
/// work (`work` values per sample), else one.
fn ranges(n: usize, work: usize) -> Vec<usize> {
    let parts = if n * work >= 1 << 14 {
        threads().min(n).max(1)
    } else {
        1
    };
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

fn split_rows<'a>(cell: Cell, s: &'a mut Sequence<CpuTensor>, sizes: &[usize]) -> Vec<Rows<'a>> {
    let (steps, h) = (s.steps, s.h.cols);
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    let lstm = cell == Cell::Lstm;
    let mut xp = {
        let mut rest = &s.xp.data[..];
        sizes
            .iter()
            .map(|&n| {
                let (head, tail) = rest.split_at(n * steps * g);
                rest = tail;
                head
            })
            .collect::<Vec<_>>()
            .into_iter()
    };
    let mut r = chunks(&mut s.r.data, sizes, g).into_iter();
    let mut gates = chunks(&mut s.gates.data, sizes, steps * saved).into_iter();
    let cells_data: &mut [f32] = if lstm { &mut s.cells.data } else { &mut [] };
    let mut cells = chunks(cells_data, sizes, steps * h).into_iter();
    let mut hprev = chunks(&mut s.hprev.data, sizes, steps * h).into_iter();
    let mut state = chunks(&mut s.h.data, sizes, h).into_iter();
    let mut states = chunks(&mut s.states.data, sizes, steps * h).into_iter();
    sizes
        .iter()
        .map(|_| Rows {
            steps,
            h,
            xp: xp.next().expect("one per range"),
            r: r.next().expect("one per range"),
            gates: gates.next().expect("one per range"),
            cells: cells.next().expect("one per range"),
            hprev: hprev.next().expect("one per range"),
            state: state.next().expect("one per range"),
            states: states.next().expect("one per range"),
        })
        .collect()
}

/// Forward step `t`: the gates from `xp` and `r`, then the new state into `h` and `states`, and what
/// the backward pass needs into `hprev`, `gates` and `cells`.
pub(super) fn step(cell: Cell, t: usize, s: &mut Sequence<CpuTensor>) -> Result<()> {
    let (n, _) = s.check(cell)?;
    check_step(t, s.steps)?;
    let mut rows = split_rows(cell, s, &[n]);
    simd::widest(
        #[inline(always)]
        || step_rows(cell, t, &mut rows[0]),
    );
    Ok(())
}

/// Every step forward: per range of samples, on its own thread, `r = h·W_hhᵀ + b_hh` then the step.
pub(super) fn forward(
    cell: Cell,
    w_hh: &CpuTensor,
    b_hh: &CpuTensor,
    s: &mut Sequence<CpuTensor>,
) -> Result<()> {
    let (n, h) = s.check(cell)?;
    let g = cell.gates() * h;
    crate::shape::exact("the recurrent weights", w_hh, g, h)?;
    crate::shape::exact("the recurrent bias", b_hh, 1, g)?;
    // W_hhᵀ [H, G·H], packed once for every step of every thread.
    let w_t = PackedB::new(
        h,
        g,
        Strided {
            data: &w_hh.data,
            row: 1,
            col: h,
        },
    );
    let add_bias = |_: usize, j: usize, row: &mut [f32]| {
        row.iter_mut()
            .zip(&b_hh.data[j..])
            .for_each(|(v, b)| *v += b);
    };
    let sizes = ranges(n, g * h);
    let rows = split_rows(cell, s, &sizes);
    in_parallel(rows.into_iter(), |mut rows| {
        simd::widest(
            #[inline(always)]
            || {
                let batch = rows.state.len() / h;
                for t in 0..rows.steps {
                    if t == 0 {
                        for row in rows.r.chunks_exact_mut(g) {
                            row.copy_from_slice(&b_hh.data);
                        }
                    } else {
                        let state = Strided {
                            data: rows.state,
                            row: h,
                            col: 1,
                        };
                        gemm_packed_in_job(batch, state, &w_t, rows.r, &add_bias);
                    }
                    step_rows(cell, t, &mut rows);
                }
            },
        )
    });
    Ok(())
}

/// Step `t` for every sample of `rows`.
#[inline(always)]
fn step_rows(cell: Cell, t: usize, rows: &mut Rows<'_>) {
    for b in 0..rows.state.len() / rows.h {
        forward_row(cell, t, b, rows);
    }
}

#[inline(always)]
fn forward_row(cell: Cell, t: usize, b: usize, s: &mut Rows<'_>) {
    let h = s.h;
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    let row = b * s.steps + t;
    let prev = &mut s.hprev[row * h..][..h];
    let state = &mut s.state[b * h..][..h];
    if t == 0 {
        prev.fill(0.0);
    } else {
        prev.copy_from_slice(state);
    }
    let xp = &s.xp[row * g..][..g];
    let r = &s.r[b * g..][..g];
    let kept = &mut s.gates[row * saved..][..saved];
    match cell {
        Cell::Rnn => {
            let (xp, r, kept) = (&xp[..h], &r[..h], &mut kept[..h]);
            for j in 0..h {
                state[j] = tanh(xp[j] + r[j]);
                kept[j] = state[j];
            }
        }
        Cell::Lstm => {
            let (before, now) = s.cells.split_at_mut(row * h);
            let c = &mut now[..h];
            if t == 0 {
                c.fill(0.0);
            } else {
                c.copy_from_slice(&before[(row - 1) * h..]);
            }
            let [ki, kf, kg, ko] = blocks_mut(kept, h);
            let ([xi, xf, xg, xo], [ri, rf, rg, ro]) = (blocks(xp, h), blocks(r, h));
            // Cut to h where the loop sees it (no bounds checks, so the loop vectorises).
            let (ki, kf, kg, ko) = (&mut ki[..h], &mut kf[..h], &mut kg[..h], &mut ko[..h]);
            let (xi, xf, xg, xo) = (&xi[..h], &xf[..h], &xg[..h], &xo[..h]);
            let (ri, rf, rg, ro) = (&ri[..h], &rf[..h], &rg[..h], &ro[..h]);
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
            let (kr, kz, kn, krn) = (&mut kr[..h], &mut kz[..h], &mut kn[..h], &mut krn[..h]);
            let (xr, xz, xn) = (&xr[..h], &xz[..h], &xn[..h]);
            let (rr_, rz, rn) = (&rr_[..h], &rz[..h], &rn[..h]);
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
    s.states[row * h..][..h].copy_from_slice(state);
}

fn split_grads<'a>(
    cell: Cell,
    steps: usize,
    h: usize,
    dy: &'a CpuTensor,
    g: &'a mut SequenceGrads<CpuTensor>,
    sizes: &[usize],
) -> Vec<GradRows<'a>> {
    let width = cell.gates() * h;
    let mut dy_rest = &dy.data[..];
    let dy_per = dy.cols;
    let dr_all: &mut [f32] = if cell == Cell::Gru {
        &mut g.dr_all.data
    } else {
        &mut []
    };
    let mut dxp = chunks(&mut g.dxp.data, sizes, steps * width).into_iter();
    let mut dr_all = chunks(dr_all, sizes, steps * width).into_iter();
    let mut dr = chunks(&mut g.dr.data, sizes, width).into_iter();
    let mut dh = chunks(&mut g.dh.data, sizes, h).into_iter();
    let mut carry = chunks(&mut g.carry.data, sizes, h).into_iter();
    sizes
        .iter()
        .map(|&n| {
            let (mine, tail) = dy_rest.split_at(n * dy_per);
            dy_rest = tail;
            GradRows {
                dy: mine,
                dxp: dxp.next().expect("one per range"),
                dr_all: dr_all.next().expect("one per range"),
                dr: dr.next().expect("one per range"),
                dh: dh.next().expect("one per range"),
                carry: carry.next().expect("one per range"),
            }
        })
        .collect()
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
    let every_step = dy.cols != h || s.steps == 1;
    let mut parts = split_grads(cell, s.steps, h, dy, grads, &[n]);
    simd::widest(
        #[inline(always)]
        || backward_rows(cell, t, s, 0, every_step, &mut parts[0]),
    );
    Ok(())
}

/// Every step backward: per range of samples, on its own thread, the step's gradients, then
/// `dh = dr·W_hh` for the step before.
pub(super) fn backward(
    cell: Cell,
    w_hh: &CpuTensor,
    s: &Sequence<CpuTensor>,
    dy: &CpuTensor,
    grads: &mut SequenceGrads<CpuTensor>,
) -> Result<()> {
    grads.check(cell, s, dy)?;
    let (n, h) = (s.h.rows, s.h.cols);
    let g = cell.gates() * h;
    crate::shape::exact("the recurrent weights", w_hh, g, h)?;
    let every_step = dy.cols != h || s.steps == 1;
    let sizes = ranges(n, g * h);
    let starts: Vec<usize> = sizes
        .iter()
        .scan(0, |at, &k| {
            *at += k;
            Some(*at - k)
        })
        .collect();
    let parts = split_grads(cell, s.steps, h, dy, grads, &sizes);
    // W_hh [G·H, H], packed once for every step of every thread.
    let w = PackedB::new(
        g,
        h,
        Strided {
            data: &w_hh.data,
            row: h,
            col: 1,
        },
    );
    in_parallel(parts.into_iter().zip(starts), |(mut part, first)| {
        simd::widest(
            #[inline(always)]
            || {
                let batch = part.dh.len() / h;
                for t in (0..s.steps).rev() {
                    backward_rows(cell, t, s, first, every_step, &mut part);
                    if t > 0 {
                        let dr = Strided {
                            data: part.dr,
                            row: g,
                            col: 1,
                        };
                        gemm_packed_in_job(batch, dr, &w, part.dh, &|_, _, _| {});
                    }
                }
            },
        )
    });
    Ok(())
}

/// Backward step `t` for the samples of `part`, which start at sample `first` of `s`.
#[inline(always)]
fn backward_rows(
    cell: Cell,
    t: usize,
    s: &Sequence<CpuTensor>,
    first: usize,
    every_step: bool,
    part: &mut GradRows<'_>,
) {
    let h = s.h.cols;
    let mut dh = vec![0.0f32; h];
    for b in 0..part.dh.len() / h {
        state_gradient(t, b, h, s.steps, every_step, part, &mut dh);
        backward_row(cell, t, first + b, b, h, s, part, &dh);
    }
}

/// `dL/dh_t` of local sample `b` into `dh`: `dy`'s share, plus the next step's product except at the
/// last step.
#[inline(always)]
fn state_gradient(
    t: usize,
    b: usize,
    h: usize,
    steps: usize,
    every_step: bool,
    part: &GradRows<'_>,
    dh: &mut [f32],
) {
    let last = t + 1 == steps;
    if last {
        dh.fill(0.0);
    } else {
        dh.copy_from_slice(&part.dh[b * h..][..h]);
    }
    let from_dy = if every_step {
        Some(&part.dy[(b * steps + t) * h..][..h])
    } else if last {
        Some(&part.dy[b * h..][..h])
    } else {
        None
    };
    if let Some(from_dy) = from_dy {
        dh.iter_mut().zip(from_dy).for_each(|(d, y)| *d += y);
    }
}

/// One sample's gradients at step `t`: `sample` indexes `s`, `b` the same sample in `part`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row(
    cell: Cell,
    t: usize,
    sample: usize,
    b: usize,
    h: usize,
    s: &Sequence<CpuTensor>,
    part: &mut GradRows<'_>,
    dh: &[f32],
) {
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    let row = sample * s.steps + t;
    let local = b * s.steps + t;
    let last = t + 1 == s.steps;
    let kept = &s.gates.data[row * saved..][..saved];
    let dxp = &mut part.dxp[local * g..][..g];
    let dr = &mut part.dr[b * g..][..g];
    let carry = &mut part.carry[b * h..][..h];
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
            let [di, df, dg, d_o] = blocks_mut(dxp, h);
            lstm_units_backward(kept, (c, c_prev, keep), &dh[..h], carry, di, df, dg, d_o);
            dr.copy_from_slice(dxp);
        }
        Cell::Gru => {
            let prev = &s.hprev.data[row * h..][..h];
            let all = &mut part.dr_all[local * g..][..g];
            let [kr, kz, kn, krn] = blocks(kept, h);
            let [dxr, dxz, dxn] = blocks_mut(dxp, h);
            let [dar, daz, dan] = blocks_mut(all, h);
            let (kr, kz, kn, krn) = (&kr[..h], &kz[..h], &kn[..h], &krn[..h]);
            let (dxr, dxz, dxn) = (&mut dxr[..h], &mut dxz[..h], &mut dxn[..h]);
            let (dar, daz, dan) = (&mut dar[..h], &mut daz[..h], &mut dan[..h]);
            let (dh, carry) = (&dh[..h], &mut carry[..h]);
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

/// LSTM's gate gradients for one sample's units at one step, from its kept gates `i, f, g, o`, its cell
/// `c`, the previous cell `keep·c_prev` and `dL/dh` (`dh`), with `carry` the cell's gradient from the
/// step after (updated for the step before). A function of its own so that the compiler knows the
/// slices apart and vectorises the loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn lstm_units_backward(
    kept: &[f32],
    (c, c_prev, keep): (&[f32], &[f32], f32),
    dh: &[f32],
    carry: &mut [f32],
    di: &mut [f32],
    df: &mut [f32],
    dg: &mut [f32],
    d_o: &mut [f32],
) {
    let h = dh.len();
    let [ki, kf, kg, ko] = blocks(kept, h);
    // Every slice cut to h here, where the loop can see it: no bounds checks, which would keep the
    // loop from vectorising.
    let (ki, kf, kg, ko) = (&ki[..h], &kf[..h], &kg[..h], &ko[..h]);
    let (c, c_prev, carry) = (&c[..h], &c_prev[..h], &mut carry[..h]);
    let (di, df, dg, d_o) = (&mut di[..h], &mut df[..h], &mut dg[..h], &mut d_o[..h]);
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
