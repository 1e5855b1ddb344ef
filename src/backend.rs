//! The one seam between models and devices: the tensor operations training needs.
//!
//! A model's forward and backward passes are written once against [`Backend`]; the CPU backend is the
//! obviously-correct reference and the GPU backend must agree with it op by op (see `tests/parity.rs`).
//! Tensors are row-major matrices `[rows, cols]`; a batch is one sample per row. Every operation writes
//! into an output the caller allocated, so a training step allocates nothing.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layers::{BuildAt, Layer, LayerKind};
use crate::optim::OptimStep;
use crate::recurrent::{Cell, Sequence, SequenceGrads};
use crate::window::Window;

/// A tensor's shape.
pub trait Shaped {
    /// Number of rows (the batch dimension for activations).
    fn rows(&self) -> usize;
    /// Number of columns (features).
    fn cols(&self) -> usize;
    /// Number of elements.
    fn len(&self) -> usize {
        self.rows() * self.cols()
    }
    /// True for a tensor with no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the matrix product does to its raw result `P = op(A)·op(B)` before storing it.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a, T> {
    /// `C = act(P + bias)`: a dense layer's forward pass, with its activation fused in.
    Forward {
        /// A `[1, N]` row added to every row of the product.
        bias: Option<&'a T>,
        /// Applied element-wise last.
        activation: Activation,
    },
    /// `C = P ⊙ f'(z)`, where `f'(z)` is computed from the forward output `output = f(z)` (`[M, N]`):
    /// backprop through an activation fused into the product that computes the gradient of its output.
    /// Only for activations with [`Activation::has_output_derivative`].
    ActivationGrad {
        /// The activation `f` the gradient passes back through.
        activation: Activation,
        /// Its forward output `y = f(z)`, `[M, N]`.
        output: &'a T,
    },
}

impl<'a, T> Epilogue<'a, T> {
    /// No bias, identity activation: a plain product.
    pub fn none() -> Self {
        Epilogue::Forward {
            bias: None,
            activation: Activation::Identity,
        }
    }

    /// Adds `bias` to every row, identity activation: a dense layer's `X·W + b`.
    pub fn bias(bias: &'a T) -> Self {
        Epilogue::Forward {
            bias: Some(bias),
            activation: Activation::Identity,
        }
    }

    /// `act(P + bias)`, the bias optional.
    pub fn forward(bias: Option<&'a T>, activation: Activation) -> Self {
        Epilogue::Forward { bias, activation }
    }

    /// `P ⊙ f'(z)` from `output = f(z)`.
    pub fn activation_grad(activation: Activation, output: &'a T) -> Self {
        Epilogue::ActivationGrad { activation, output }
    }

    /// `P ⊙ f'(z)` for the activation `before` that produced `output`, or a plain product for the
    /// identity: what a layer's input-gradient product applies.
    pub fn through(before: Activation, output: &'a T) -> Self {
        if before == Activation::Identity {
            Epilogue::none()
        } else {
            Epilogue::activation_grad(before, output)
        }
    }

    /// The activation the epilogue applies or differentiates.
    pub fn activation(&self) -> Activation {
        match *self {
            Epilogue::Forward { activation, .. } | Epilogue::ActivationGrad { activation, .. } => {
                activation
            }
        }
    }

    /// The bias, if the epilogue adds one.
    pub fn bias_row(&self) -> Option<&'a T> {
        match *self {
            Epilogue::Forward { bias, .. } => bias,
            Epilogue::ActivationGrad { .. } => None,
        }
    }

    /// The forward output a gradient epilogue reads, if any.
    pub fn grad_output(&self) -> Option<&'a T> {
        match *self {
            Epilogue::Forward { .. } => None,
            Epilogue::ActivationGrad { output, .. } => Some(output),
        }
    }

    /// For a gradient op that can only multiply by `f'`: the activation and the forward output it
    /// differentiates from, or `None` for [`Epilogue::none`]; an error for a bias or a forward activation.
    pub fn gradient_factor(&self) -> Result<Option<(Activation, &'a T)>> {
        match *self {
            Epilogue::ActivationGrad { activation, output } => {
                if !activation.has_output_derivative() {
                    return Err(Error::Invalid(format!(
                        "{activation:?}'s derivative cannot be computed from its output"
                    )));
                }
                Ok(Some((activation, output)))
            }
            Epilogue::Forward {
                bias: None,
                activation: Activation::Identity,
            } => Ok(None),
            Epilogue::Forward { .. } => Err(Error::Invalid(
                "a gradient op takes no bias and no forward activation".into(),
            )),
        }
    }
}

/// The gradients [`Backend::convolution_backward`] writes: the filters' `[O, C·KH·KW]`, the bias's
/// `[1, O]` and, when `input` is given, the input's, multiplied by `f'` as `before` asks (as
/// [`Backend::col2im`]).
pub struct ConvGrads<'a, T> {
    /// dL/dW.
    pub weight: &'a mut T,
    /// dL/db.
    pub bias: &'a mut T,
    /// dL/dx, if wanted.
    pub input: Option<&'a mut T>,
    /// The activation that produced `x`, to differentiate through ([`Epilogue::none`] or
    /// [`Epilogue::through`]).
    pub before: Epilogue<'a, T>,
}

/// Tensor operations, each stating its math. `B` is the batch (rows), `C` the columns.
pub trait Backend: 'static {
    /// A device-resident `f32` matrix.
    type Tensor: Shaped;
    /// A device-resident vector of `u32` (class labels, sample indices).
    type Indices;
    /// A training set stored once on the device as bytes, from which [`Backend::gather`] builds batches.
    type Dataset;
    /// Buffers a convolution's backward pass keeps from one step to the next (empty on the CPU).
    type ConvScratch: Default;

    /// A one-line description of the device (e.g. adapter name and backend).
    fn describe(&self) -> String;

    /// Hands the work recorded so far to the device without waiting, so that it runs while the host
    /// records more (the trainer calls this once per step). Backends that run ops eagerly do nothing.
    fn submit(&self) {}

    /// Waits until every op issued so far has finished (for timing). Eager backends return at once.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// Kernel launches (dispatches) recorded since the backend was opened: what a step costs a GPU in
    /// launch overhead. Backends that launch no kernels return 0.
    fn kernel_launches(&self) -> u64 {
        0
    }

    /// The largest tensor, in bytes, the device can hold in one buffer (`None`: no limit but memory).
    fn max_tensor_bytes(&self) -> Option<u64> {
        None
    }

    /// The layer `kind` describes, built on this backend (each backend calls its `LayerKind::build_*`).
    fn build_layer(
        &self,
        kind: &dyn LayerKind,
        at: &mut BuildAt<'_>,
    ) -> Result<Box<dyn Layer<Self>>>;

    /// A `[rows, cols]` tensor of zeros.
    fn zeros(&self, rows: usize, cols: usize) -> Result<Self::Tensor>;
    /// A `[rows, cols]` tensor holding `data` (row-major; `data.len()` must be `rows·cols`).
    fn tensor(&self, rows: usize, cols: usize, data: &[f32]) -> Result<Self::Tensor>;
    /// Overwrites `t` with `data` (same length).
    fn write(&self, t: &mut Self::Tensor, data: &[f32]) -> Result<()>;
    /// Copies `t` back to the host once the pending work has run. The one readback path: a browser
    /// awaits it, native code waits through [`Backend::read`].
    fn read_async(&self, t: &Self::Tensor) -> impl Future<Output = Result<Vec<f32>>>;
    /// [`Backend::read_async`] into `out` (the tensor's length), which a caller keeps from step to
    /// step: on the CPU one copy, with no allocation.
    fn read_into_async(
        &self,
        t: &Self::Tensor,
        out: &mut [f32],
    ) -> impl Future<Output = Result<()>> {
        async move {
            let values = self.read_async(t).await?;
            crate::shape::data_len(out.len(), values.len(), 1)?;
            out.copy_from_slice(&values);
            Ok(())
        }
    }
    /// [`Backend::read_async`], waited for. It blocks, so a browser's main thread must not call it.
    fn read(&self, t: &Self::Tensor) -> Result<Vec<f32>> {
        pollster::block_on(self.read_async(t))
    }
    /// A device vector holding `data`.
    fn indices(&self, data: &[u32]) -> Result<Self::Indices>;
    /// Copies an index vector back to the host.
    fn read_indices(&self, ids: &Self::Indices) -> Result<Vec<u32>>;
    /// Stores a set's samples once (see [`Samples`]), for [`Backend::gather`] and
    /// [`Backend::gather_targets`] to build batches from.
    fn dataset(&self, samples: &Samples<'_>) -> Result<Self::Dataset>;
    /// `C = epilogue(op(A)·op(B))` where `op(X)` is `Xᵀ` when its flag is set: `act(P + bias)` or
    /// `P ⊙ f'(z)` (see [`Epilogue`]). `op(A)` is `[M, K]`, `op(B)` is `[K, N]`, `C` is `[M, N]`.
    fn matmul(
        &self,
        a: &Self::Tensor,
        trans_a: bool,
        b: &Self::Tensor,
        trans_b: bool,
        epilogue: Epilogue<'_, Self::Tensor>,
        c: &mut Self::Tensor,
    ) -> Result<()>;
    /// The bias gradient, column sums: `db[j] = Σ_i dy[i, j]`; `db` is `[1, C]`.
    fn bias_grad(&self, dy: &Self::Tensor, db: &mut Self::Tensor) -> Result<()>;
    /// `y += α·x`.
    fn axpy(&self, alpha: f32, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// `x *= α`.
    fn scale(&self, alpha: f32, x: &mut Self::Tensor) -> Result<()>;

    /// `y = f(x)` element-wise.
    fn activation_forward(
        &self,
        f: Activation,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// `dx = dy ⊙ f'(x)` element-wise.
    fn activation_backward(
        &self,
        f: Activation,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// Inverted dropout with drop probability `p ∈ [0, 1)`: `y[i] = x[i]/(1 - p)` where element `i`'s draw
    /// under `key` is at least `round(p·2²⁴)`, else 0 (see [`crate::dropout`]: a counter-based hash, so every
    /// backend drops the same elements). The backward pass is the same op on the gradient, same key.
    fn dropout(&self, p: f32, key: u64, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// Bernoulli sampling, a restricted Boltzmann machine's units switched on with their probabilities:
    /// `s[i] = 1` when element `i`'s 24-bit draw `d` under `key` (as dropout's, [`crate::dropout::draw`])
    /// has `d + 1 ≤ p[i]·2²⁴`, else 0 ([`crate::dropout::bernoulli`]). The comparison is exact in f32, so
    /// every backend draws the same sample from the same `p`; a NaN probability gives 0.
    fn sample_bernoulli(&self, key: u64, p: &Self::Tensor, s: &mut Self::Tensor) -> Result<()>;
    /// Batch normalisation in training. `x` is `[N, C·S]`: `C = affine.cols()` channels, channel `c` the
    /// columns `c·S..(c+1)·S` of every row (`S = 1` for dense features, `H·W` for images). Over the
    /// `M = N·S ≥ 2` values of each channel, in two passes: `μ = Σx/M`, `σ² = Σ(x − μ)²/M`, then
    /// `y = γ·(x − μ)·r + β` with `r = 1/√(σ² + ε)`. `affine` is `[2, C]` (γ, β); `saved` (`[2, C]`) receives
    /// `(μ, r)` for the backward pass; `running` (`[2, C]`: mean, variance) becomes
    /// `(1 − m)·running + m·(μ, σ²·M/(M − 1))`, PyTorch's convention.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_train(
        &self,
        x: &Self::Tensor,
        affine: &Self::Tensor,
        eps: f32,
        momentum: f32,
        saved: &mut Self::Tensor,
        running: &mut Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// Batch normalisation in evaluation: `y = γ·(x − mean)/√(var + ε) + β`, with `running`'s `(mean, var)`
    /// per channel (layout as in [`Backend::batch_norm_train`]).
    fn batch_norm_eval(
        &self,
        x: &Self::Tensor,
        affine: &Self::Tensor,
        running: &Self::Tensor,
        eps: f32,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// The backward pass of [`Backend::batch_norm_train`], from its `saved = (μ, r)`. With
    /// `x̂ = (x − μ)·r`, per channel over its `M` values: `dβ = Σ dy`, `dγ = Σ dy·x̂` into `daffine`
    /// (`[2, C]`: dγ, dβ), and `dx = γ·r·(dy − dβ/M − x̂·dγ/M)`.
    fn batch_norm_backward(
        &self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        affine: &Self::Tensor,
        saved: &Self::Tensor,
        daffine: &mut Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// A convolution without im2col's columns in memory, the implicit GEMM: with `cols` as in
    /// [`Backend::im2col`], `weight` `[O, C·KH·KW]` and `y` `[N, O·P]` (images of `O` channels),
    /// `y[n, o·P + p] = f(Σ_k cols[n·P + p, k]·weight[o, k] + bias[o])` for a forward `epilogue`.
    fn convolution(
        &self,
        w: &Window,
        x: &Self::Tensor,
        weight: &Self::Tensor,
        epilogue: Epilogue<'_, Self::Tensor>,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// A convolution's backward pass from `dy` `[N, O·P]`, the gradient of [`Backend::convolution`]'s
    /// output: with `cols` as in [`Backend::im2col`] and `G[n·P + p, o] = dy[n, o·P + p]`,
    /// `dW = Gᵀ·cols`, `db = Σ_rows G` and, where `grads.input` asks, `dx = col2im(G·W) ⊙ f'` (as
    /// [`Backend::col2im`]). `scratch` holds what the backend keeps between calls.
    fn convolution_backward(
        &self,
        w: &Window,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        weight: &Self::Tensor,
        grads: ConvGrads<'_, Self::Tensor>,
        scratch: &mut Self::ConvScratch,
    ) -> Result<()>;
    /// im2col, the unrolling that turns a convolution into one matrix product. `x` is `[N, C·H·W]` (images
    /// of `w.input`), `cols` `[N·P, C·KH·KW]` with `P = OH·OW` positions (see [`Window`]):
    /// `cols[n·P + oh·OW + ow, (c·KH + i)·KW + j] = x[n, c, oh·s + i − pad, ow·s + j − pad]`, 0 in the
    /// padding.
    fn im2col(&self, w: &Window, x: &Self::Tensor, cols: &mut Self::Tensor) -> Result<()>;
    /// col2im, the adjoint of [`Backend::im2col`] (the input gradient of a convolution from that of its
    /// columns): `dx[n, c, h, w] = Σ dcols[n·P + oh·OW + ow, (c·KH + i)·KW + j]` over the `(oh, ow, i, j)`
    /// that read `(h, w)`, summed in increasing `(i, j)` by one invocation per element (no atomics).
    /// `before` is [`Epilogue::none`] or [`Epilogue::ActivationGrad`]: the sum is multiplied by `f'` of
    /// the activation that produced `x`, from its output.
    fn col2im(
        &self,
        w: &Window,
        dcols: &Self::Tensor,
        before: Epilogue<'_, Self::Tensor>,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// From one plane per channel to one row per position: `src` `[N, C·P]`, `dst` `[N·P, C]`, `dst[n·P + p, c] = src[n, c·P + p]`.
    fn planes_to_rows(
        &self,
        positions: usize,
        src: &Self::Tensor,
        dst: &mut Self::Tensor,
    ) -> Result<()>;
    /// Max pooling: `y[n, c, oh, ow] = f(max_{i,j} x[n, c, oh·s + i − pad, ow·s + j − pad])` over the
    /// window's positions inside the image, NaN winning and the first maximum on ties (in `(i, j)`
    /// order); `argmax` (one entry per output) receives the winner's offset `i·KW + j`.
    fn max_pool(
        &self,
        w: &Window,
        x: &Self::Tensor,
        then: Activation,
        y: &mut Self::Tensor,
        argmax: &mut Self::Indices,
    ) -> Result<()>;
    /// The backward pass of [`Backend::max_pool`]: each input position gathers the output gradients of
    /// the windows whose saved winner it is, `dx[n, c, h, w] = Σ dy[n, c, oh, ow]·[argmax = (i, j)]`,
    /// deterministic, then `⊙ f'` as in [`Backend::col2im`].
    fn max_pool_backward(
        &self,
        w: &Window,
        dy: &Self::Tensor,
        argmax: &Self::Indices,
        before: Epilogue<'_, Self::Tensor>,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// Average pooling: `y[n, c, oh, ow] = f(Σ_{i,j} x[…] / (KH·KW))`, padding counted as zeros
    /// (PyTorch's `count_include_pad`).
    fn avg_pool(
        &self,
        w: &Window,
        x: &Self::Tensor,
        then: Activation,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// The backward pass of [`Backend::avg_pool`]: `dx[n, c, h, w] = Σ dy[n, c, oh, ow] / (KH·KW)` over
    /// the windows that cover `(h, w)`, then `⊙ f'` as in [`Backend::col2im`].
    fn avg_pool_backward(
        &self,
        w: &Window,
        dy: &Self::Tensor,
        before: Epilogue<'_, Self::Tensor>,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// `y = x` value for value, in row-major order: the same number of values, any shape (what a layer
    /// that only reshapes does, and how a recurrent layer reads `[N, T·F]` sequences as `[N·T, F]` rows).
    fn copy(&self, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;

    /// One forward step `t` of a recurrent layer with cell `cell` (math in [`crate::recurrent`]): for
    /// every unit `(n, j)`, the gates from `s.xp` (row `n·T + t`) and `s.r` (row `n`), then `h_t` into
    /// `s.h` and `s.states`, and `h_{t−1}`, the saved gates and the LSTM's `c_t` into row `n·T + t` of
    /// `s.hprev`, `s.gates` and `s.cells`. At `t = 0`, `h_{−1} = c_{−1} = 0` whatever `s.h` holds.
    fn recurrent_step(&self, cell: Cell, t: usize, s: &mut Sequence<Self::Tensor>) -> Result<()>;

    /// The backward pass of [`Backend::recurrent_step`] at step `t`, steps taken from last to first:
    /// `dL/dh_t` is `dy`'s (block `t` of a `[N, T·H]` `dy`; a `[N, H]` `dy` at the last step only) plus,
    /// except at the last step, `g.dh` (the product `dr_{t+1}·W_hh`) and the GRU's `g.carry`. Writes the
    /// pre-activations' gradients into `g.dxp` (row `n·T + t`) and `g.dr` (and `g.dr_all` for the GRU),
    /// and the LSTM's `dL/dc_{t−1}` or the GRU's `z⊙dL/dh_t` into `g.carry`.
    fn recurrent_step_backward(
        &self,
        cell: Cell,
        t: usize,
        s: &Sequence<Self::Tensor>,
        dy: &Self::Tensor,
        g: &mut SequenceGrads<Self::Tensor>,
    ) -> Result<()>;

    /// Every step of a recurrent layer's forward pass, first to last: `s.r = h_{t−1}·W_hhᵀ + b_hh`
    /// (`h_{−1} = 0`; `w_hh` `[G·H, H]`, `b_hh` `[1, G·H]`), then [`Backend::recurrent_step`]. By default
    /// those two ops per step (what the GPU records into one submission); the CPU runs the same math
    /// with the batch split across its threads.
    fn recurrent_forward(
        &self,
        cell: Cell,
        w_hh: &Self::Tensor,
        b_hh: &Self::Tensor,
        s: &mut Sequence<Self::Tensor>,
    ) -> Result<()> {
        for t in 0..s.steps {
            let h = if t == 0 { &s.zero } else { &s.h };
            self.matmul(h, false, w_hh, true, Epilogue::bias(b_hh), &mut s.r)?;
            self.recurrent_step(cell, t, s)?;
        }
        Ok(())
    }

    /// Every step of a recurrent layer's backward pass, last to first: [`Backend::recurrent_step_backward`],
    /// then, except at the first step, `g.dh = g.dr·W_hh`, the gradient carried to `h_{t−1}`. By default
    /// those ops per step; the CPU splits the batch across its threads.
    fn recurrent_backward(
        &self,
        cell: Cell,
        w_hh: &Self::Tensor,
        s: &Sequence<Self::Tensor>,
        dy: &Self::Tensor,
        g: &mut SequenceGrads<Self::Tensor>,
    ) -> Result<()> {
        for t in (0..s.steps).rev() {
            self.recurrent_step_backward(cell, t, s, dy, g)?;
            if t > 0 {
                self.matmul(&g.dr, false, w_hh, false, Epilogue::none(), &mut g.dh)?;
            }
        }
        Ok(())
    }

    /// `total[0] += Σ x²` (`total` is `[1, 1]`): one parameter's share of the squared global norm
    /// that gradient clipping measures.
    fn sum_squares(&self, x: &Self::Tensor, total: &mut Self::Tensor) -> Result<()>;

    /// Clipping by global norm: `x *= min(1, max_norm/√total[0])` ([`crate::optim::clip_factor`]),
    /// without reading `total` back to the host.
    fn clip(&self, max_norm: f32, total: &Self::Tensor, x: &mut Self::Tensor) -> Result<()>;

    /// Row-wise softmax, max-subtracted: `y[i, j] = exp(x[i, j] - mᵢ) / Σ_k exp(x[i, k] - mᵢ)`.
    fn softmax(&self, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;

    /// Softmax + cross-entropy fused, with class-index labels `t`:
    /// `loss = (1/B) Σ_i [log Σ_k exp(z[i,k]) - z[i, tᵢ]]` into the `[1, 1]` tensor `loss`, and its gradient
    /// `dz[i, j] = (softmax(z)[i, j] - [j = tᵢ]) / B`. A label `≥ C` makes the loss NaN.
    fn softmax_cross_entropy(
        &self,
        logits: &Self::Tensor,
        labels: &Self::Indices,
        dlogits: &mut Self::Tensor,
        loss: &mut Self::Tensor,
    ) -> Result<()>;
    /// Sigmoid + binary cross-entropy fused, with targets `t ∈ [0, 1]` of the logits' shape:
    /// `loss = (1/B) Σ_ij [max(z,0) - z·t + log(1 + e^-|z|)]`, `dz = (σ(z) - t) / B`.
    fn sigmoid_binary_cross_entropy(
        &self,
        logits: &Self::Tensor,
        targets: &Self::Tensor,
        dlogits: &mut Self::Tensor,
        loss: &mut Self::Tensor,
    ) -> Result<()>;
    /// Mean over the batch of half the sum of squared errors: `loss = (1/B) Σ_ij ½(y - t)²`,
    /// `dy = (y - t) / B`.
    fn mean_squared_error(
        &self,
        y: &Self::Tensor,
        targets: &Self::Tensor,
        dy: &mut Self::Tensor,
        loss: &mut Self::Tensor,
    ) -> Result<()>;
    /// Adds a batch's mean loss and its count of correct predictions to running totals, in one op (the
    /// trainer's per-step bookkeeping, and evaluation's count): `totals[0] += loss[0]`,
    /// `totals[1] += #{i : argmax_j logits[i, j] = tᵢ}`, the arg-max the first maximum on ties; with one
    /// column the logit is a binary classifier's and the class is `[logits[i, 0] > 0]` (`σ(z) > ½`);
    /// `loss` is `[1, 1]`, `totals` `[1, 2]`.
    fn tally(
        &self,
        logits: &Self::Tensor,
        labels: &Self::Indices,
        loss: &Self::Tensor,
        totals: &mut Self::Tensor,
    ) -> Result<()>;

    /// One optimizer update of `param` from `grad`, with state `s1`, `s2` (see [`crate::optim`]); states the
    /// rule does not use may be any size.
    fn optimizer_step(
        &self,
        step: &OptimStep,
        param: &mut Self::Tensor,
        grad: &Self::Tensor,
        s1: &mut Self::Tensor,
        s2: &mut Self::Tensor,
    ) -> Result<()>;

    /// A `[rows, width]` tensor for [`Backend::gather`] to build batches of `set` in. Gathering
    /// overwrites all of it, so its values do not matter: zeros, unless a backend has something
    /// cheaper.
    fn batch_buffer(&self, set: &Self::Dataset, rows: usize, width: usize) -> Result<Self::Tensor> {
        let _ = set;
        self.zeros(rows, width)
    }

    /// Builds a batch from the stored set: for `b < x.rows()`, with `s = order[offset + b]`,
    /// `x[b, j] = byte[s, j]·scale + shift` (byte features) or `x[b, j] = value[s, j]` (float features),
    /// and `y[b] = label[s]`. A sample index past the set is refused by the CPU; a GPU, which cannot
    /// see it without a readback, gives that row zeros and the label `0xFFFFFFFF`.
    fn gather(
        &self,
        set: &Self::Dataset,
        order: &Self::Indices,
        offset: usize,
        x: &mut Self::Tensor,
        y: &mut Self::Indices,
    ) -> Result<()>;

    /// [`Backend::gather`] of the samples `first..first + x.rows()` in the set's own order, where
    /// `order` is the identity `0..N`: evaluation's batches, which a backend may read where they lie
    /// instead of copying them (the CPU does).
    fn gather_in_order(
        &self,
        set: &Self::Dataset,
        order: &Self::Indices,
        first: usize,
        x: &mut Self::Tensor,
        y: &mut Self::Indices,
    ) -> Result<()> {
        self.gather(set, order, first, x, y)
    }

    /// The float targets of the batch [`Backend::gather`] builds: `t[b, j] = target[s, j]` with
    /// `s = order[offset + b]` (on a GPU, zeros past the set); `t` is `[rows, target_width]`.
    fn gather_targets(
        &self,
        set: &Self::Dataset,
        order: &Self::Indices,
        offset: usize,
        t: &mut Self::Tensor,
    ) -> Result<()>;
}

/// A set's features as [`Backend::dataset`] takes them, row-major `[N, width]`.
#[derive(Clone, Copy, Debug)]
pub enum SampleFeatures<'a> {
    /// Bytes, scaled as batches are gathered: `x = byte·scale + shift`.
    Bytes {
        /// The bytes.
        values: &'a [u8],
        /// Multiplies each byte.
        scale: f32,
        /// Added after.
        shift: f32,
    },
    /// Floats, gathered as they are.
    Floats(&'a [f32]),
}

impl SampleFeatures<'_> {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            SampleFeatures::Bytes { values, .. } => values.len(),
            SampleFeatures::Floats(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`Backend::dataset`] stores: `N = labels.len()` samples.
#[derive(Clone, Copy, Debug)]
pub struct Samples<'a> {
    /// Features per sample.
    pub width: usize,
    /// `[N, width]` features.
    pub features: SampleFeatures<'a>,
    /// One label per sample: its class, or [`crate::data::NO_LABEL`].
    pub labels: &'a [u32],
    /// Float targets per sample (0: none, as for a classification).
    pub target_width: usize,
    /// `[N, target_width]` float targets.
    pub targets: &'a [f32],
}

impl<'a> Samples<'a> {
    /// `N` samples of byte features (`bytes.len() = N·width`) with their labels and no float targets.
    pub fn bytes(bytes: &'a [u8], width: usize, labels: &'a [u32], scale: f32, shift: f32) -> Self {
        Samples {
            width,
            features: SampleFeatures::Bytes {
                values: bytes,
                scale,
                shift,
            },
            labels,
            target_width: 0,
            targets: &[],
        }
    }

    /// Checks that the features, labels and targets all describe `N` samples.
    pub fn check(&self) -> Result<()> {
        crate::shape::dataset(self.features.len(), self.labels.len(), self.width)?;
        if self.targets.len() != self.labels.len() * self.target_width {
            return Err(Error::shape(format!(
                "{} target values are not {} samples of {} targets",
                self.targets.len(),
                self.labels.len(),
                self.target_width
            )));
        }
        Ok(())
    }
}
