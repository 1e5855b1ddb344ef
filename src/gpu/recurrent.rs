//! A recurrent layer's fused gate steps on the GPU (`shaders/recurrent.wgsl`): one invocation per unit
//! of one step.

use super::{GpuBackend, GpuTensor, kernels, u};
use crate::error::Result;
use crate::recurrent::{Cell, Sequence, SequenceGrads, check_step};

/// Invocations per workgroup of the gate kernels (`WG` in the shader).
const WORKGROUP: usize = 64;

pub(super) fn step(
    gpu: &GpuBackend,
    cell: Cell,
    t: usize,
    s: &mut Sequence<GpuTensor>,
) -> Result<()> {
    let (n, h) = s.check(cell)?;
    check_step(t, s.steps)?;
    gpu.run(
        &kernels::RECURRENT_FORWARD,
        &[cell.code()],
        &[u(n), u(h), u(s.steps), u(t), 0],
        &[
            s.xp.binding(),
            s.r.binding(),
            s.gates.binding(),
            s.cells.binding(),
            s.hprev.binding(),
            s.h.binding(),
            s.states.binding(),
        ],
        gpu.grid(n * h, WORKGROUP),
    );
    Ok(())
}

pub(super) fn step_backward(
    gpu: &GpuBackend,
    cell: Cell,
    t: usize,
    s: &Sequence<GpuTensor>,
    dy: &GpuTensor,
    g: &mut SequenceGrads<GpuTensor>,
) -> Result<()> {
    g.check(cell, s, dy)?;
    check_step(t, s.steps)?;
    let (n, h) = (s.h.rows, s.h.cols);
    let every_step = u32::from(dy.cols != h || s.steps == 1);
    let params = [u(n), u(h), u(s.steps), u(t), every_step];
    let grid = gpu.grid(n * h, WORKGROUP);
    match cell {
        Cell::Rnn => gpu.run(
            &kernels::RNN_BACKWARD,
            &[],
            &params,
            &[
                s.gates.binding(),
                dy.binding(),
                g.dh.binding(),
                g.dxp.binding(),
                g.dr.binding(),
            ],
            grid,
        ),
        Cell::Lstm => gpu.run(
            &kernels::LSTM_BACKWARD,
            &[],
            &params,
            &[
                s.gates.binding(),
                s.cells.binding(),
                dy.binding(),
                g.dh.binding(),
                g.dxp.binding(),
                g.dr.binding(),
                g.carry.binding(),
            ],
            grid,
        ),
        Cell::Gru => gpu.run(
            &kernels::GRU_BACKWARD,
            &[],
            &params,
            &[
                s.gates.binding(),
                s.hprev.binding(),
                dy.binding(),
                g.dh.binding(),
                g.dxp.binding(),
                g.dr.binding(),
                g.dr_all.binding(),
                g.carry.binding(),
            ],
            grid,
        ),
    }
    Ok(())
}
