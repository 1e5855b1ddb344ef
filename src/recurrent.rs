//! Recurrent cells and the buffers a recurrent layer's time steps share, laid out as cuDNN lays out its
//! work: the input projection of every step is one matrix product before the loop, each step is one
//! recurrent product and one fused gate kernel ([`crate::backend::Backend::recurrent_step`]), and the
//! weight gradients are one product each after the backward loop.
//!
//! With `H` hidden units, input `x_t` and previous state `h_{t−1}`, the cells compute (PyTorch's gate
//! orders; `xp_t = W_ih·x_t + b_ih` and `r_t = W_hh·h_{t−1} + b_hh`, each split into gate blocks of `H`):
//!
//! - **RNN** (`G = 1`): `h_t = tanh(xp_t + r_t)`.
//! - **LSTM** (`G = 4`, gates i, f, g, o): `i = σ(xp_i + r_i)`, `f = σ(xp_f + r_f)`, `g = tanh(xp_g + r_g)`,
//!   `o = σ(xp_o + r_o)`; `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`.
//! - **GRU** (`G = 3`, gates r, z, n): `r = σ(xp_r + r_r)`, `z = σ(xp_z + r_z)`,
//!   `n = tanh(xp_n + r⊙r_n)`; `h_t = (1 − z)⊙n + z⊙h_{t−1}`.
//!
//! `h_{−1} = c_{−1} = 0`. Sequences are batch-major: step `t` of sample `n` is row `n·T + t` of an
//! `[N·T, ·]` buffer, the same memory as a `[N, T·width]` batch of sequences.

use crate::backend::Shaped;
use crate::error::{Error, Result};
use crate::shape;

/// A recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The Elman RNN with tanh.
    Rnn,
    /// Long short-term memory.
    Lstm,
    /// The gated recurrent unit.
    Gru,
}

impl Cell {
    /// Every cell.
    pub const ALL: [Cell; 3] = [Cell::Rnn, Cell::Lstm, Cell::Gru];

    /// The layer's name in the spec language (`rnn`, `lstm`, `gru`).
    pub fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Gate blocks of `H` in the projections (`G`): 1, 4 or 3.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    /// Values per unit a step saves for the backward pass in [`Sequence::gates`]: the RNN its `h_t`, the
    /// LSTM its four activated gates, the GRU its three and `r_n = (W_hh·h_{t−1} + b_hh)_n`.
    pub fn saved(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm | Cell::Gru => 4,
        }
    }

    /// A number for the kernels (0, 1, 2).
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// What the steps of one recurrent layer share over a batch of `N` sequences of `T` steps, `H` units.
pub struct Sequence<T> {
    /// `T`.
    pub steps: usize,
    /// `[N·T, G·H]`: the input projections `xp_t` (with `b_ih`), computed before the loop.
    pub xp: T,
    /// `[N, G·H]`: the step's recurrent product `r_t = h_{t−1}·W_hhᵀ + b_hh`.
    pub r: T,
    /// `[N·T, S·H]` with `S` = [`Cell::saved`]: what each step keeps for the backward pass.
    pub gates: T,
    /// `[N·T, H]`: the LSTM's cell states `c_t` (`[1, 1]` for the other cells).
    pub cells: T,
    /// `[N·T, H]`: each step's previous state `h_{t−1}`, for the recurrent weights' gradient.
    pub hprev: T,
    /// `[N, H]`: the latest state `h_t`, the next recurrent product's input.
    pub h: T,
    /// `[N·T, H]`: every step's state `h_t`, the layer's output sequence.
    pub states: T,
    /// `[N, H]` zeros, never written: `h_{−1}`, the first recurrent product's input.
    pub zero: T,
}

/// The backward pass's buffers for a [`Sequence`].
pub struct SequenceGrads<T> {
    /// `[N·T, G·H]`: the gradient of the gates' pre-activations with respect to `xp_t`, per step.
    pub dxp: T,
    /// `[N·T, G·H]`: the GRU's gradient with respect to `r_t` per step, which differs from `dxp` in the
    /// `n` block (`[1, 1]` for the other cells, whose two are equal).
    pub dr_all: T,
    /// `[N, G·H]`: this step's gradient with respect to `r_t`, the input of the product
    /// `dh = dr·W_hh` that carries the gradient to `h_{t−1}`.
    pub dr: T,
    /// `[N, H]`: `dL/dh_t` through the next step's recurrent product (ignored at the last step).
    pub dh: T,
    /// `[N, H]`: what else the next step carries back: the LSTM's `dL/dc_t`, the GRU's `z⊙dL/dh_{t+1}`
    /// (ignored at the last step; unused by the RNN).
    pub carry: T,
}

/// Checks a step index against the sequence's length.
pub fn check_step(t: usize, steps: usize) -> Result<()> {
    if t < steps {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "step {t} of a sequence of {steps} steps"
        )))
    }
}

impl<T: Shaped> Sequence<T> {
    /// Checks every buffer against `cell`'s layout; returns the batch `N` and the units `H`.
    pub fn check(&self, cell: Cell) -> Result<(usize, usize)> {
        let (n, h) = (self.h.rows(), self.h.cols());
        let (t, g) = (self.steps, cell.gates());
        let rows = n * t;
        shape::exact("the input projections", &self.xp, rows, g * h)?;
        shape::exact("the recurrent product", &self.r, n, g * h)?;
        shape::exact("the saved gates", &self.gates, rows, cell.saved() * h)?;
        match cell {
            Cell::Lstm => shape::exact("the cell states", &self.cells, rows, h)?,
            Cell::Rnn | Cell::Gru => {}
        }
        shape::exact("the previous states", &self.hprev, rows, h)?;
        shape::exact("the states", &self.states, rows, h)?;
        shape::exact("the initial state", &self.zero, n, h)?;
        Ok((n, h))
    }
}

impl<T: Shaped> SequenceGrads<T> {
    /// Checks every buffer against `cell`'s layout over `seq`, and `dy` (`[N, H]`: the last state's
    /// gradient, or `[N, T·H]`: every state's).
    pub fn check(&self, cell: Cell, seq: &Sequence<T>, dy: &T) -> Result<()> {
        let (n, h) = seq.check(cell)?;
        let (rows, g) = (n * seq.steps, cell.gates());
        shape::exact("the projections' gradient", &self.dxp, rows, g * h)?;
        if cell == Cell::Gru {
            shape::exact(
                "the recurrent products' gradient",
                &self.dr_all,
                rows,
                g * h,
            )?;
        }
        shape::exact("the step's recurrent gradient", &self.dr, n, g * h)?;
        shape::exact("the state's gradient", &self.dh, n, h)?;
        shape::exact("the carried gradient", &self.carry, n, h)?;
        if dy.rows() != n || (dy.cols() != h && dy.cols() != seq.steps * h) {
            return Err(Error::shape(format!(
                "a recurrent layer's output gradient is {}×{}, expected {n}×{h} or {n}×{}",
                dy.rows(),
                dy.cols(),
                seq.steps * h
            )));
        }
        Ok(())
    }
}
