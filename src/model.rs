//! A sequential network of layers, each with its forward and backward pass next to each other, written
//! once against [`Backend`] so that the same model trains on the CPU and on the GPU.
//!
//! Activations and gradients live in a [`Workspace`] sized for one batch size, allocated once; a
//! training step then allocates nothing.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::dropout;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::optim::OptimStep;

/// The architecture of a multi-layer perceptron: `inputs → hidden… → outputs`, with `activation` after
/// every hidden layer (then dropout, if `dropout > 0`) and a softmax (inside the loss) after the last.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Input features (784 for MNIST).
    pub inputs: usize,
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Output classes.
    pub outputs: usize,
    /// The hidden layers' activation.
    pub activation: Activation,
    /// Drop probability of the dropout after every hidden activation while training; 0 for none.
    pub dropout: f32,
}

impl ModelSpec {
    /// Layer widths from input to output.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.inputs];
        w.extend(&self.hidden);
        w.push(self.outputs);
        w
    }

    /// Written as `784-128-10 relu` (and ` dropout 0.5` when there is dropout), the form
    /// [`ModelSpec::parse`] reads.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths().iter().map(|w| w.to_string()).collect();
        let dropout = if self.dropout > 0.0 {
            format!(" dropout {}", self.dropout)
        } else {
            String::new()
        };
        format!("{} {}{dropout}", widths.join("-"), self.activation.name())
    }

    /// Bytes that training this model in batches of `batch` keeps in memory, with `optimizer_states`
    /// state tensors per parameter: every parameter with its gradient and states, and every layer's
    /// output and its gradient for one batch. Also the largest single tensor, `(rows, cols)`.
    pub fn training_memory(&self, batch: usize, optimizer_states: usize) -> (u64, (usize, usize)) {
        let widths = self.widths();
        let params: u64 = widths
            .windows(2)
            .map(|w| (w[0] as u64 + 1) * w[1] as u64)
            .sum();
        // Dense and activation outputs, each with its gradient, and the input batch.
        let activations: u64 = widths[1..]
            .iter()
            .map(|&w| 4 * (batch * w) as u64)
            .sum::<u64>()
            + (batch * widths[0]) as u64;
        let bytes = 4 * (params * (2 + optimizer_states as u64) + activations);
        let weights = widths.windows(2).map(|w| (w[0], w[1]));
        let batches = widths.iter().map(|&w| (batch, w));
        let largest = weights
            .chain(batches)
            .max_by_key(|&(r, c)| r as u64 * c as u64)
            .unwrap_or((0, 0));
        (bytes, largest)
    }

    /// Reads the form [`ModelSpec::describe`] writes.
    pub fn parse(s: &str) -> Result<ModelSpec> {
        let bad = || {
            Error::Invalid(format!(
                "architecture `{s}` is not of the form `784-128-10 relu` (or `784-128-10 relu dropout 0.5`)"
            ))
        };
        let mut words = s.split_whitespace();
        let (Some(widths), Some(act)) = (words.next(), words.next()) else {
            return Err(bad());
        };
        let dropout = match (words.next(), words.next(), words.next()) {
            (None, None, None) => 0.0,
            (Some("dropout"), Some(p), None) => p.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        crate::dropout::check(dropout)?;
        let widths: Vec<usize> = widths
            .split('-')
            .map(|w| w.parse().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        if widths.len() < 2 || widths.contains(&0) {
            return Err(bad());
        }
        Ok(ModelSpec {
            inputs: widths[0],
            hidden: widths[1..widths.len() - 1].to_vec(),
            outputs: widths[widths.len() - 1],
            activation: Activation::from_name(act).ok_or_else(bad)?,
            dropout,
        })
    }
}

/// A fully connected layer `y = x·W + b` with `W` of shape `[inputs, outputs]`.
pub struct Dense<B: Backend> {
    /// Weights `[inputs, outputs]`.
    pub weight: B::Tensor,
    /// Bias `[1, outputs]`.
    pub bias: B::Tensor,
    grad_weight: B::Tensor,
    grad_bias: B::Tensor,
    /// Optimizer state: two tensors for the weight, two for the bias (1×1 when the rule needs none).
    state: [B::Tensor; 4],
}

impl<B: Backend> Dense<B> {
    fn new(b: &B, weight: &[f32], inputs: usize, outputs: usize, states: usize) -> Result<Self> {
        let state_of = |rows, cols, i: usize| {
            if i < states {
                b.zeros(rows, cols)
            } else {
                b.zeros(1, 1)
            }
        };
        Ok(Dense {
            weight: b.tensor(inputs, outputs, weight)?,
            bias: b.zeros(1, outputs)?,
            grad_weight: b.zeros(inputs, outputs)?,
            grad_bias: b.zeros(1, outputs)?,
            state: [
                state_of(inputs, outputs, 0)?,
                state_of(inputs, outputs, 1)?,
                state_of(1, outputs, 0)?,
                state_of(1, outputs, 1)?,
            ],
        })
    }

    /// Forward: `y = f(x·W + b)`, the bias and the activation `f` applied in the product's epilogue.
    fn forward(&self, b: &B, x: &B::Tensor, f: Activation, y: &mut B::Tensor) -> Result<()> {
        let epilogue = Epilogue::forward(Some(&self.bias), f);
        b.matmul(x, false, &self.weight, false, epilogue, y)
    }

    /// Backward: `dW = xᵀ·dy`, `db = Σ_rows dy`, and, when the caller needs it, `dx = dy·Wᵀ` times the
    /// derivative of the activation `f` that produced `x` (computed from `x = f(z)`; identity for none).
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<(&mut B::Tensor, Activation)>,
    ) -> Result<()> {
        b.matmul(x, true, dy, false, Epilogue::none(), &mut self.grad_weight)?;
        b.bias_grad(dy, &mut self.grad_bias)?;
        if let Some((dx, f)) = dx {
            let epilogue = if f == Activation::Identity {
                Epilogue::none()
            } else {
                Epilogue::activation_grad(f, x)
            };
            b.matmul(dy, false, &self.weight, true, epilogue, dx)?;
        }
        Ok(())
    }

    /// `dL/dW` from the last backward pass.
    pub fn grad_weight(&self) -> &B::Tensor {
        &self.grad_weight
    }

    /// `dL/db` from the last backward pass.
    pub fn grad_bias(&self) -> &B::Tensor {
        &self.grad_bias
    }

    fn update(&mut self, b: &B, step: &OptimStep) -> Result<()> {
        let [s1, s2, t1, t2] = &mut self.state;
        b.optimizer_step(step, &mut self.weight, &self.grad_weight, s1, s2)?;
        b.optimizer_step(step, &mut self.bias, &self.grad_bias, t1, t2)
    }
}

/// One layer of a sequential model.
pub enum Layer<B: Backend> {
    /// A fully connected layer.
    Dense(Dense<B>),
    /// An element-wise activation.
    Activation(Activation),
    /// Inverted dropout with this drop probability while training; the identity otherwise.
    Dropout(f32),
}

/// Buffers for one batch size: every layer's output and the gradient of the loss with respect to it.
pub struct Workspace<B: Backend> {
    outputs: Vec<B::Tensor>,
    grads: Vec<B::Tensor>,
    /// The batch's mean loss, `[1, 1]`.
    pub loss: B::Tensor,
}

impl<B: Backend> Workspace<B> {
    /// The batch size this workspace holds.
    pub fn rows(&self) -> usize {
        self.outputs[0].rows()
    }

    /// The last layer's output (the logits).
    pub fn logits(&self) -> &B::Tensor {
        self.outputs.last().expect("a model has layers")
    }
}

/// A sequential model.
pub struct Model<B: Backend> {
    /// The architecture.
    pub spec: ModelSpec,
    /// The layers, input first.
    pub layers: Vec<Layer<B>>,
    /// The (seed, step) of the last training forward pass, whose dropout masks its backward pass draws
    /// again.
    dropout_draw: (u64, u64),
}

impl<B: Backend> Model<B> {
    /// A model of architecture `spec` with weights drawn by `init` from a generator seeded with `seed`,
    /// and room for `optimizer_states` state tensors per parameter.
    pub fn new(
        b: &B,
        spec: ModelSpec,
        init: Init,
        seed: u64,
        optimizer_states: usize,
    ) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let widths = spec.widths();
        let weights: Vec<Vec<f32>> = widths
            .windows(2)
            .map(|w| init.sample(&mut rng, w[0], w[0] * w[1]))
            .collect();
        Self::from_weights(b, spec, &weights, optimizer_states)
    }

    /// A model with the given weights (biases zero), one `[inputs·outputs]` vector per dense layer.
    pub fn from_weights(
        b: &B,
        spec: ModelSpec,
        weights: &[Vec<f32>],
        optimizer_states: usize,
    ) -> Result<Self> {
        let widths = spec.widths();
        if widths.contains(&0) {
            return Err(Error::Invalid(format!(
                "architecture {}: every layer needs at least 1 unit",
                spec.describe()
            )));
        }
        dropout::check(spec.dropout)?;
        if weights.len() != widths.len() - 1 {
            return Err(Error::shape(format!(
                "{} weight matrices for {} dense layers",
                weights.len(),
                widths.len() - 1
            )));
        }
        let mut layers = Vec::new();
        for (i, (w, pair)) in weights.iter().zip(widths.windows(2)).enumerate() {
            layers.push(Layer::Dense(Dense::new(
                b,
                w,
                pair[0],
                pair[1],
                optimizer_states,
            )?));
            if i + 2 < widths.len() {
                layers.push(Layer::Activation(spec.activation));
                if spec.dropout > 0.0 {
                    layers.push(Layer::Dropout(spec.dropout));
                }
            }
        }
        Ok(Model {
            spec,
            layers,
            dropout_draw: (0, 0),
        })
    }

    /// Buffers for batches of `rows`.
    pub fn workspace(&self, b: &B, rows: usize) -> Result<Workspace<B>> {
        let mut width = self.spec.inputs;
        let mut outputs = Vec::new();
        let mut grads = Vec::new();
        for layer in &self.layers {
            if let Layer::Dense(d) = layer {
                width = d.bias.cols();
            }
            outputs.push(b.zeros(rows, width)?);
            grads.push(b.zeros(rows, width)?);
        }
        Ok(Workspace {
            outputs,
            grads,
            loss: b.zeros(1, 1)?,
        })
    }

    /// The activation fused into the dense layer `i` (its forward epilogue computes it), when layer
    /// `i + 1` is an activation whose derivative its output determines and layer `i + 2` is a dense layer
    /// (whose input-gradient product then multiplies by that derivative in its epilogue).
    fn fused_activation(&self, i: usize) -> Option<Activation> {
        match (
            self.layers.get(i),
            self.layers.get(i + 1),
            self.layers.get(i + 2),
        ) {
            (Some(Layer::Dense(_)), Some(Layer::Activation(f)), Some(Layer::Dense(_)))
                if f.has_output_derivative() =>
            {
                Some(*f)
            }
            _ => None,
        }
    }

    /// True when layer `i` is an activation fused into the dense layer before it.
    fn is_fused(&self, i: usize) -> bool {
        i > 0 && self.fused_activation(i - 1).is_some()
    }

    /// Runs the layers on `x` for inference (dropout is the identity); the logits end up in
    /// [`Workspace::logits`]. A dense layer followed by an activation whose derivative its output
    /// determines (ReLU, sigmoid, tanh, …) and then by a dense layer runs as one product with the
    /// activation in its epilogue, writing the activation's output; the dense layer's own output buffer
    /// is then left unwritten.
    pub fn forward(&self, b: &B, x: &B::Tensor, ws: &mut Workspace<B>) -> Result<()> {
        self.run_forward(b, x, ws, None)
    }

    /// [`Model::forward`] for training: each dropout layer drops elements by the mask of
    /// (`seed`, its index, `step`), which [`Model::backward`] draws again.
    pub fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        ws: &mut Workspace<B>,
        seed: u64,
        step: u64,
    ) -> Result<()> {
        self.dropout_draw = (seed, step);
        self.run_forward(b, x, ws, Some((seed, step)))
    }

    fn run_forward(
        &self,
        b: &B,
        x: &B::Tensor,
        ws: &mut Workspace<B>,
        training: Option<(u64, u64)>,
    ) -> Result<()> {
        for (i, layer) in self.layers.iter().enumerate() {
            if self.is_fused(i) {
                continue;
            }
            let fused = self.fused_activation(i);
            let (before, rest) = ws.outputs.split_at_mut(i);
            let input = if i == 0 { x } else { &before[i - 1] };
            let out = &mut rest[usize::from(fused.is_some())];
            match layer {
                Layer::Dense(d) => {
                    d.forward(b, input, fused.unwrap_or(Activation::Identity), out)?
                }
                Layer::Activation(f) => b.activation_forward(*f, input, out)?,
                Layer::Dropout(p) => match training {
                    Some((seed, step)) => b.dropout(*p, dropout::key(seed, i, step), input, out)?,
                    // Drop nothing: a copy.
                    None => b.dropout(0.0, 0, input, out)?,
                },
            }
        }
        Ok(())
    }

    /// Runs the layers on `x` and puts the mean softmax cross-entropy against `labels` in
    /// [`Workspace::loss`], without backprop (what a numerical gradient evaluates).
    pub fn loss(
        &self,
        b: &B,
        x: &B::Tensor,
        labels: &B::Indices,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        self.forward(b, x, ws)?;
        let last = self.layers.len() - 1;
        b.softmax_cross_entropy(&ws.outputs[last], labels, &mut ws.grads[last], &mut ws.loss)
    }

    /// After [`Model::forward_train`] (or [`Model::forward`] for a model without dropout): the softmax cross-entropy loss against `labels` (into `ws.loss`) and
    /// its gradient back through every layer, ending in each dense layer's parameter gradients.
    pub fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        labels: &B::Indices,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        let last = self.layers.len() - 1;
        b.softmax_cross_entropy(&ws.outputs[last], labels, &mut ws.grads[last], &mut ws.loss)?;
        for i in (0..self.layers.len()).rev() {
            if self.is_fused(i) {
                continue;
            }
            let input = if i == 0 { x } else { &ws.outputs[i - 1] };
            // The input gradient skips back over an activation fused into the layer before.
            let fused = if i >= 2 && self.is_fused(i - 1) {
                match self.layers[i - 1] {
                    Layer::Activation(f) => Some(f),
                    Layer::Dense(_) | Layer::Dropout(_) => None,
                }
            } else {
                None
            };
            let target = i - usize::from(fused.is_some());
            let (before, rest) = ws.grads.split_at_mut(target);
            let dy = &rest[i - target];
            let dx = (i > 0).then(|| &mut before[target - 1]);
            match &mut self.layers[i] {
                Layer::Dense(d) => {
                    let dx = dx.map(|dx| (dx, fused.unwrap_or(Activation::Identity)));
                    d.backward(b, input, dy, dx)?;
                }
                Layer::Activation(f) => {
                    if let Some(dx) = dx {
                        b.activation_backward(*f, input, dy, dx)?;
                    }
                }
                Layer::Dropout(p) => {
                    if let Some(dx) = dx {
                        let (seed, step) = self.dropout_draw;
                        b.dropout(*p, dropout::key(seed, i, step), dy, dx)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies one optimizer update to every parameter from the gradients of the last backward pass.
    pub fn update(&mut self, b: &B, step: &OptimStep) -> Result<()> {
        for layer in &mut self.layers {
            if let Layer::Dense(d) = layer {
                d.update(b, step)?;
            }
        }
        Ok(())
    }

    /// The dense layers, input first.
    pub fn dense_layers(&self) -> impl Iterator<Item = &Dense<B>> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Dense(d) => Some(d),
            Layer::Activation(_) | Layer::Dropout(_) => None,
        })
    }

    /// Mutable access to the dense layers, input first.
    pub fn dense_layers_mut(&mut self) -> impl Iterator<Item = &mut Dense<B>> {
        self.layers.iter_mut().filter_map(|l| match l {
            Layer::Dense(d) => Some(d),
            Layer::Activation(_) | Layer::Dropout(_) => None,
        })
    }

    /// Floating-point operations of one forward pass per sample (2·in·out per dense layer).
    pub fn forward_flops_per_sample(&self) -> f64 {
        self.spec
            .widths()
            .windows(2)
            .map(|w| 2.0 * (w[0] * w[1]) as f64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::ModelSpec;
    use crate::activation::Activation;

    #[test]
    fn specs_read_what_they_write_with_and_without_dropout() {
        for text in [
            "784-50-10 sigmoid",
            "784-256-256-10 relu dropout 0.5",
            "3-1 tanh dropout 0",
        ] {
            let spec = ModelSpec::parse(text).unwrap();
            assert_eq!(ModelSpec::parse(&spec.describe()).unwrap(), spec, "{text}");
        }
        let spec = ModelSpec::parse("784-256-10 relu dropout 0.25").unwrap();
        assert_eq!(spec.dropout, 0.25);
        assert_eq!(spec.activation, Activation::Relu);
        assert_eq!(spec.describe(), "784-256-10 relu dropout 0.25");
        for bad in [
            "784-256-10 relu dropout",
            "784-256-10 relu dropout 1",
            "784-256-10 relu dropout -0.1",
            "784-256-10 relu dropout nan",
            "784-256-10 relu lasso 0.5",
            "784-256-10 relu dropout 0.5 extra",
            "784-0-10 relu",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
