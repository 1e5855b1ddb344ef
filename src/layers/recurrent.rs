//! Recurrent layers, `rnn N`, `lstm N` and `gru N`, trained by backpropagation through time (the
//! cells' math is in [`crate::recurrent`]).
//!
//! The input is a sequence of `T` steps of `F` features: a `1×T×F` sample (`input 28x28` is 28 rows of
//! 28 pixels), or any input read as `T` equal steps with `steps T`. The layer outputs its last state
//! `h_{T−1}` (`[N, H]`), or with `seq` every state (`1×T×H`, so that recurrent layers stack). The work is
//! cuDNN's: one product projects every step's input, then each step is one recurrent product and one
//! fused gate kernel; backward, one gate-gradient kernel and one product per step, then one product per
//! weight matrix over all steps.

use rand::Rng;

use super::{BuildAt, Draw, Exported, Import, Layer, LayerKind, Param, Shape, Values};
use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::error::{Error, Result};
use crate::recurrent::{Cell, Sequence, SequenceGrads};

/// `rnn N`, `lstm N` or `gru N`, with `seq` (every step's state out) and `steps T` (read the input as
/// `T` steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentKind {
    /// The cell.
    pub cell: Cell,
    /// Hidden units `H`.
    pub units: usize,
    /// True to output every step's state, false for the last one only.
    pub sequence: bool,
    /// Steps to read the input as (`None`: the input's rows).
    pub steps: Option<usize>,
    /// LSTM only: how the forget and input gates' biases start.
    pub gate_bias: GateBias,
}

/// How an LSTM's forget and input gates' biases start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateBias {
    /// PyTorch's random draw, like every other bias.
    Drawn,
    /// The forget gate's bias at 1 (`forget-bias`; Keras's `unit_forget_bias`, after Jozefowicz et
    /// al. 2015), so that the cell keeps its memory at first.
    ForgetOne,
    /// Chrono initialisation (`chrono`; Tallec & Ollivier 2018): unit j's forget bias is `log u_j`
    /// and its input bias `−log u_j`, with `u_j ~ U(1, T − 1)` for `T` steps, so that the cells start
    /// with memories whose lengths, `≈ u_j` steps, spread over the whole sequence (`u_j = 1`, both
    /// biases 0, when `T ≤ 2`).
    Chrono,
}

fn parse(cell: Cell, item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    let bad = || {
        Error::Invalid(format!(
            "layer `{item}`: expected `{0} UNITS [seq] [steps T]{1}`, e.g. `{0} 128` or `{0} 64 seq`",
            cell.name(),
            if cell == Cell::Lstm {
                " [forget-bias | chrono]"
            } else {
                ""
            }
        ))
    };
    let (units, rest) = args.split_first().ok_or_else(bad)?;
    let units: usize = units.parse().map_err(|_| bad())?;
    if units == 0 {
        return Err(Error::Invalid(format!(
            "layer `{item}`: a layer needs at least 1 unit"
        )));
    }
    let mut kind = RecurrentKind {
        cell,
        units,
        sequence: false,
        steps: None,
        gate_bias: GateBias::Drawn,
    };
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        match word {
            "seq" if !kind.sequence => kind.sequence = true,
            "steps" if kind.steps.is_none() => {
                let steps: usize = words.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
                if steps == 0 {
                    return Err(Error::Invalid(format!(
                        "layer `{item}`: a sequence needs at least 1 step"
                    )));
                }
                kind.steps = Some(steps);
            }
            "forget-bias" if cell == Cell::Lstm && kind.gate_bias == GateBias::Drawn => {
                kind.gate_bias = GateBias::ForgetOne
            }
            "chrono" if cell == Cell::Lstm && kind.gate_bias == GateBias::Drawn => {
                kind.gate_bias = GateBias::Chrono
            }
            _ => return Err(bad()),
        }
    }
    Ok(Box::new(kind))
}

/// Reads `rnn N [seq] [steps T]`.
pub fn parse_rnn(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    parse(Cell::Rnn, item, args)
}

/// Reads `lstm N [seq] [steps T] [forget-bias | chrono]`.
pub fn parse_lstm(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    parse(Cell::Lstm, item, args)
}

/// Reads `gru N [seq] [steps T]`.
pub fn parse_gru(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    parse(Cell::Gru, item, args)
}

impl RecurrentKind {
    /// The input read as `(T, F)`: `steps` equal steps, or a `1×T×F` sample's rows.
    pub fn timeline(&self, input: Shape) -> Result<(usize, usize)> {
        let len = input.len();
        match self.steps {
            Some(t) if len.is_multiple_of(t) => Ok((t, len / t)),
            Some(t) => Err(Error::Invalid(format!(
                "layer `{}`: an input of {len} values ({input}) is not {t} equal steps",
                self.describe()
            ))),
            None if input.channels == 1 && !input.is_flat() => Ok((input.height, input.width)),
            None => Err(Error::Invalid(format!(
                "layer `{}`: a recurrent layer reads a sequence of T steps of F features (`input \
                 TxF`, e.g. `input 28x28`), or any input as T steps with `steps T`; {input} is \
                 neither",
                self.describe()
            ))),
        }
    }

    fn build<B: Backend>(&self, b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        let (steps, features) = self.timeline(at.input)?;
        let (h, g) = (self.units, self.cell.gates() * self.units);
        // PyTorch's initialisation: every weight and bias from U(−1/√H, 1/√H).
        let bound = 1.0 / (h as f32).sqrt();
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| at.rng.random_range(-bound..bound)).collect() };
        let (w_ih, w_hh, mut b_ih, mut b_hh) = (draw(g * features), draw(g * h), draw(g), draw(g));
        // The gates are ordered i, f, g, o: a gate's bias is b_ih + b_hh, the input gate's over
        // [0, H) and the forget gate's over [H, 2H).
        match self.gate_bias {
            GateBias::Drawn => {}
            _ if self.cell != Cell::Lstm => {
                return Err(Error::Invalid(format!(
                    "layer `{}`: only an LSTM has forget and input gates to start",
                    self.describe()
                )));
            }
            GateBias::ForgetOne => {
                b_ih[h..2 * h].fill(1.0);
                b_hh[h..2 * h].fill(0.0);
            }
            GateBias::Chrono => {
                let longest = (steps as f32 - 1.0).max(1.0);
                for unit in 0..h {
                    let forget = at.rng.random_range(1.0..=longest).ln();
                    (b_ih[h + unit], b_ih[unit]) = (forget, -forget);
                }
                b_hh[..2 * h].fill(0.0);
            }
        }
        Ok(Box::new(Recurrent {
            kind: *self,
            steps,
            features,
            weight_ih: Param::new(b, g, features, &w_ih, at.states)?,
            weight_hh: Param::new(b, g, h, &w_hh, at.states)?,
            bias_ih: Param::new(b, 1, g, &b_ih, at.states)?,
            bias_hh: Param::new(b, 1, g, &b_hh, at.states)?,
            scratch: None,
        }))
    }
}

impl LayerKind for RecurrentKind {
    fn name(&self) -> &'static str {
        self.cell.name()
    }

    fn describe(&self) -> String {
        let mut s = format!("{} {}", self.cell.name(), self.units);
        if self.sequence {
            s += " seq";
        }
        if let Some(t) = self.steps {
            s += &format!(" steps {t}");
        }
        match self.gate_bias {
            GateBias::Drawn => {}
            GateBias::ForgetOne => s += " forget-bias",
            GateBias::Chrono => s += " chrono",
        }
        s
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        let (steps, _) = self.timeline(input)?;
        Ok(if self.sequence {
            Shape::image(1, steps, self.units)
        } else {
            Shape::flat(self.units)
        })
    }

    /// `W_ih` `[G·H, F]`, `W_hh` `[G·H, H]`, `b_ih` and `b_hh` `[1, G·H]`.
    fn parameter_shapes(&self, input: Shape) -> Vec<(usize, usize)> {
        let features = self.timeline(input).map_or(0, |(_, f)| f);
        let g = self.cell.gates() * self.units;
        vec![(g, features), (g, self.units), (1, g), (1, g)]
    }

    /// The buffers of [`Scratch`] for a batch of `batch`.
    fn scratch_shapes(&self, input: Shape, batch: usize) -> Vec<(usize, usize)> {
        match self.timeline(input) {
            Ok((steps, features)) => Scratch::<crate::cpu::CpuBackend>::shapes(
                self.cell, batch, steps, features, self.units,
            )
            .to_vec(),
            Err(_) => Vec::new(),
        }
    }

    fn flops(&self, input: Shape) -> f64 {
        self.timeline(input).map_or(0.0, |(steps, features)| {
            let g = self.cell.gates() * self.units;
            2.0 * (steps * g * (features + self.units)) as f64
        })
    }

    crate::build_on_every_backend!(build);
}

/// What a batch of `N` sequences needs besides the layer's output: the input as `[N·T, F]` rows, the
/// steps' shared buffers and their gradients.
pub struct Scratch<B: Backend> {
    rows: B::Tensor,
    seq: Sequence<B::Tensor>,
    grads: SequenceGrads<B::Tensor>,
    drows: B::Tensor,
}

impl<B: Backend> Scratch<B> {
    /// The `(rows, cols)` of every buffer, in the order [`Scratch::new`] allocates them.
    fn shapes(cell: Cell, n: usize, t: usize, f: usize, h: usize) -> [(usize, usize); 15] {
        let (g, rows) = (cell.gates() * h, n * t);
        let cells = if cell == Cell::Lstm {
            (rows, h)
        } else {
            (1, 1)
        };
        let dr_all = if cell == Cell::Gru { (rows, g) } else { (1, 1) };
        [
            (rows, f),
            (rows, g),
            (n, g),
            (rows, cell.saved() * h),
            cells,
            (rows, h),
            (n, h),
            (rows, h),
            (n, h),
            (rows, g),
            dr_all,
            (n, g),
            (n, h),
            (n, h),
            (rows, f),
        ]
    }

    /// The buffers for `n` sequences; without `training`, the gradients' are 1×1 placeholders (the
    /// inference path keeps no more than its forward pass needs).
    fn new(
        b: &B,
        cell: Cell,
        n: usize,
        t: usize,
        f: usize,
        h: usize,
        training: bool,
    ) -> Result<Self> {
        let mut shapes = Self::shapes(cell, n, t, f, h);
        if !training {
            shapes[9..].fill((1, 1));
        }
        let mut tensors = Vec::with_capacity(shapes.len());
        for (rows, cols) in shapes {
            tensors.push(b.zeros(rows, cols)?);
        }
        let mut it = tensors.into_iter();
        let mut next = || it.next().expect("one tensor per shape");
        Ok(Scratch {
            rows: next(),
            seq: Sequence {
                steps: t,
                xp: next(),
                r: next(),
                gates: next(),
                cells: next(),
                hprev: next(),
                h: next(),
                states: next(),
                zero: next(),
            },
            grads: SequenceGrads {
                dxp: next(),
                dr_all: next(),
                dr: next(),
                dh: next(),
                carry: next(),
            },
            drows: next(),
        })
    }

    fn batch(&self) -> usize {
        self.seq.h.rows()
    }
}

/// A recurrent layer with PyTorch's parameters: `weight_ih` `[G·H, F]`, `weight_hh` `[G·H, H]`,
/// `bias_ih` and `bias_hh` `[G·H]`.
pub struct Recurrent<B: Backend> {
    kind: RecurrentKind,
    steps: usize,
    features: usize,
    /// Input weights `[G·H, F]`.
    pub weight_ih: Param<B>,
    /// Recurrent weights `[G·H, H]`.
    pub weight_hh: Param<B>,
    /// Input bias `[1, G·H]`.
    pub bias_ih: Param<B>,
    /// Recurrent bias `[1, G·H]`.
    pub bias_hh: Param<B>,
    scratch: Option<Scratch<B>>,
}

impl<B: Backend> Recurrent<B> {
    fn scratch(&self, b: &B, n: usize, training: bool) -> Result<Scratch<B>> {
        let k = &self.kind;
        Scratch::new(b, k.cell, n, self.steps, self.features, k.units, training)
    }

    /// Every step forward, from `x` (`[N, T·F]`) to the states in `s`, then the output into `y`.
    fn run(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, s: &mut Scratch<B>) -> Result<()> {
        b.copy(x, &mut s.rows)?;
        let project = Epilogue::bias(&self.bias_ih.value);
        b.matmul(
            &s.rows,
            false,
            &self.weight_ih.value,
            true,
            project,
            &mut s.seq.xp,
        )?;
        let (w, bias) = (&self.weight_hh.value, &self.bias_hh.value);
        b.recurrent_forward(self.kind.cell, w, bias, &mut s.seq)?;
        if self.kind.sequence {
            b.copy(&s.seq.states, y)
        } else {
            b.copy(&s.seq.h, y)
        }
    }
}

impl<B: Backend> Layer<B> for Recurrent<B> {
    fn output_shape(&self) -> Shape {
        if self.kind.sequence {
            Shape::image(1, self.steps, self.kind.units)
        } else {
            Shape::flat(self.kind.units)
        }
    }

    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, _then: Activation) -> Result<()> {
        let mut s = self.scratch(b, x.rows(), false)?;
        self.run(b, x, y, &mut s)
    }

    fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        y: &mut B::Tensor,
        _then: Activation,
        _draw: Draw,
    ) -> Result<()> {
        let mut s = match self.scratch.take() {
            Some(s) if s.batch() == x.rows() => s,
            _ => self.scratch(b, x.rows(), true)?,
        };
        let result = self.run(b, x, y, &mut s);
        self.scratch = Some(s);
        result
    }

    /// Backpropagation through time: the steps' gradients from last to first, then `dW_ih = dxpᵀ·X`,
    /// `dW_hh = drᵀ·H_prev` and the biases' column sums over every step, and `dx = dxp·W_ih`.
    fn backward(
        &mut self,
        b: &B,
        _x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        _before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        let cell = self.kind.cell;
        let s = self.scratch.as_mut().ok_or_else(|| {
            Error::Invalid("a recurrent layer's backward pass before its forward pass".into())
        })?;
        b.recurrent_backward(cell, &self.weight_hh.value, &s.seq, dy, &mut s.grads)?;
        let g = &s.grads;
        let dr = if cell == Cell::Gru { &g.dr_all } else { &g.dxp };
        let none = Epilogue::none;
        b.matmul(
            &g.dxp,
            true,
            &s.rows,
            false,
            none(),
            &mut self.weight_ih.grad,
        )?;
        b.bias_grad(&g.dxp, &mut self.bias_ih.grad)?;
        b.matmul(
            dr,
            true,
            &s.seq.hprev,
            false,
            none(),
            &mut self.weight_hh.grad,
        )?;
        b.bias_grad(dr, &mut self.bias_hh.grad)?;
        if let Some(dx) = dx {
            b.matmul(
                &g.dxp,
                false,
                &self.weight_ih.value,
                false,
                none(),
                &mut s.drows,
            )?;
            b.copy(&s.drows, dx)?;
        }
        Ok(())
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![
            &self.weight_ih,
            &self.weight_hh,
            &self.bias_ih,
            &self.bias_hh,
        ]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![
            &mut self.weight_ih,
            &mut self.weight_hh,
            &mut self.bias_ih,
            &mut self.bias_hh,
        ]
    }

    /// As PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` with one layer: `weight_ih_l0`, `weight_hh_l0`,
    /// `bias_ih_l0`, `bias_hh_l0`.
    fn saved_tensors(&self) -> Vec<&B::Tensor> {
        self.params().into_iter().map(|p| &p.value).collect()
    }

    fn export(&self, values: &[Vec<f32>]) -> Vec<Exported> {
        self.tensor_shapes()
            .into_iter()
            .zip(values)
            .map(|((name, shape), v)| Exported {
                name,
                shape,
                values: Values::F32(v.clone()),
            })
            .collect()
    }

    fn import(&mut self, b: &B, read: &Import<'_>) -> Result<()> {
        for ((name, shape), param) in self.tensor_shapes().into_iter().zip(self.params_mut()) {
            let values = read(name, &shape)?.into_f32(name)?;
            b.write(&mut param.value, &values)?;
        }
        Ok(())
    }
}

impl<B: Backend> Recurrent<B> {
    /// The checkpoint's names and shapes, in [`Layer::params`] order.
    fn tensor_shapes(&self) -> [(&'static str, Vec<usize>); 4] {
        let g = self.kind.cell.gates() * self.kind.units;
        [
            ("weight_ih_l0", vec![g, self.features]),
            ("weight_hh_l0", vec![g, self.kind.units]),
            ("bias_ih_l0", vec![g]),
            ("bias_hh_l0", vec![g]),
        ]
    }
}
