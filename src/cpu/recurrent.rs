//! A recurrent layer's fused gate step and its gradient on the CPU: the reference for
//! `shaders/recurrent.wgsl` (the math is in [`crate::recurrent`]). One unit `(n, j)` at a time, its gate
//! blocks read at offsets `k·H + j`.

use super::CpuTensor;
use crate::backend::Shaped;
use crate::error::Result;
use crate::recurrent::{Cell, Sequence, SequenceGrads, check_step};

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Forward step `t`: the gates from `xp` and `r`, then the new state into `h` and `states`, and what
/// the backward pass needs into `hprev`, `gates` and `cells`.
pub(super) fn step(cell: Cell, t: usize, s: &mut Sequence<CpuTensor>) -> Result<()> {
    let (n, h) = s.check(cell)?;
    check_step(t, s.steps)?;
    let steps = s.steps;
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    for b in 0..n {
        let row = b * steps + t;
        let xp = &s.xp.data[row * g..(row + 1) * g];
        let r = &s.r.data[b * g..(b + 1) * g];
        for j in 0..h {
            let prev = if t == 0 { 0.0 } else { s.h.data[b * h + j] };
            let kept = &mut s.gates.data[row * saved..(row + 1) * saved];
            let new = match cell {
                Cell::Rnn => {
                    let hn = (xp[j] + r[j]).tanh();
                    kept[j] = hn;
                    hn
                }
                Cell::Lstm => {
                    let i = sigmoid(xp[j] + r[j]);
                    let f = sigmoid(xp[h + j] + r[h + j]);
                    let gg = (xp[2 * h + j] + r[2 * h + j]).tanh();
                    let o = sigmoid(xp[3 * h + j] + r[3 * h + j]);
                    let c_prev = if t == 0 {
                        0.0
                    } else {
                        s.cells.data[(row - 1) * h + j]
                    };
                    let c = f * c_prev + i * gg;
                    s.cells.data[row * h + j] = c;
                    kept[j] = i;
                    kept[h + j] = f;
                    kept[2 * h + j] = gg;
                    kept[3 * h + j] = o;
                    o * c.tanh()
                }
                Cell::Gru => {
                    let rr = sigmoid(xp[j] + r[j]);
                    let z = sigmoid(xp[h + j] + r[h + j]);
                    let nn = (xp[2 * h + j] + rr * r[2 * h + j]).tanh();
                    kept[j] = rr;
                    kept[h + j] = z;
                    kept[2 * h + j] = nn;
                    kept[3 * h + j] = r[2 * h + j];
                    (1.0 - z) * nn + z * prev
                }
            };
            s.hprev.data[row * h + j] = prev;
            s.h.data[b * h + j] = new;
            s.states.data[row * h + j] = new;
        }
    }
    Ok(())
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
    let (n, h, steps) = (s.h.rows(), s.h.cols(), s.steps);
    let last = t + 1 == steps;
    let every_step = dy.cols() != h || steps == 1;
    let (g, saved) = (cell.gates() * h, cell.saved() * h);
    for b in 0..n {
        let row = b * steps + t;
        let kept = &s.gates.data[row * saved..(row + 1) * saved];
        for j in 0..h {
            let mut dh = if last { 0.0 } else { grads.dh.data[b * h + j] };
            if every_step {
                dh += dy.data[row * h + j];
            } else if last {
                dh += dy.data[b * h + j];
            }
            let carried = if last {
                0.0
            } else {
                grads.carry.data[b * h + j]
            };
            let dxp = &mut grads.dxp.data[row * g..(row + 1) * g];
            let dr = &mut grads.dr.data[b * g..(b + 1) * g];
            match cell {
                Cell::Rnn => {
                    let y = kept[j];
                    let d = dh * (1.0 - y * y);
                    dxp[j] = d;
                    dr[j] = d;
                }
                Cell::Lstm => {
                    let (i, f, gg, o) = (kept[j], kept[h + j], kept[2 * h + j], kept[3 * h + j]);
                    let c = s.cells.data[row * h + j];
                    let c_prev = if t == 0 {
                        0.0
                    } else {
                        s.cells.data[(row - 1) * h + j]
                    };
                    let tc = c.tanh();
                    let dc = carried + dh * o * (1.0 - tc * tc);
                    let pre = [
                        dc * gg * i * (1.0 - i),
                        dc * c_prev * f * (1.0 - f),
                        dc * i * (1.0 - gg * gg),
                        dh * tc * o * (1.0 - o),
                    ];
                    for (k, d) in pre.into_iter().enumerate() {
                        dxp[k * h + j] = d;
                        dr[k * h + j] = d;
                    }
                    grads.carry.data[b * h + j] = dc * f;
                }
                Cell::Gru => {
                    let (rr, z, nn, rn) = (kept[j], kept[h + j], kept[2 * h + j], kept[3 * h + j]);
                    let prev = s.hprev.data[row * h + j];
                    let dh = dh + carried;
                    let dn = dh * (1.0 - z) * (1.0 - nn * nn);
                    let dz = dh * (prev - nn) * z * (1.0 - z);
                    let dr_gate = dn * rn * rr * (1.0 - rr);
                    dxp[j] = dr_gate;
                    dxp[h + j] = dz;
                    dxp[2 * h + j] = dn;
                    dr[j] = dr_gate;
                    dr[h + j] = dz;
                    dr[2 * h + j] = dn * rr;
                    let all = &mut grads.dr_all.data[row * g..(row + 1) * g];
                    all[j] = dr_gate;
                    all[h + j] = dz;
                    all[2 * h + j] = dn * rr;
                    grads.carry.data[b * h + j] = dh * z;
                }
            }
        }
    }
    Ok(())
}
