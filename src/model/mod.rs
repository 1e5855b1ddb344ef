//! A sequential model: layers built from a [`ModelSpec`], run forward and backward through
//! [`Backend`], so that the same model trains on the CPU and on the GPU.
//!
//! Activations and gradients live in a [`Workspace`] sized for one batch size, allocated once; a
//! training step then allocates nothing.

pub mod presets;
pub mod spec;

use rand::SeedableRng;
use rand::rngs::StdRng;

pub use spec::{LayerSpec, MlpOptions, ModelSpec};

use crate::activation::Activation;
use crate::backend::Backend;
use crate::data::Task;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::{BuildAt, Draw, Layer, Param};
use crate::optim::OptimStep;

/// Buffers for one batch size: every layer's output and the gradient of the loss with respect to it
/// ([`Model::workspace`]), or for inference only the last layer's ([`Model::inference_workspace`]).
pub struct Workspace<B: Backend> {
    outputs: Vec<B::Tensor>,
    grads: Vec<B::Tensor>,
    /// The batch's mean loss, `[1, 1]`.
    pub loss: B::Tensor,
    /// Whether it holds every layer's gradient ([`Model::workspace`]), not only the loss's.
    every_grad: bool,
}

impl<B: Backend> Workspace<B> {
    /// The last layer's output (the logits).
    pub fn logits(&self) -> &B::Tensor {
        self.outputs.last().expect("a model has layers")
    }
}

/// What a batch's loss compares the model's outputs with.
pub enum Truth<'a, B: Backend> {
    /// Class labels, one per row (classification).
    Labels(&'a B::Indices),
    /// Float targets of the outputs' shape (binary: 0 or 1; regression: values).
    Targets(&'a B::Tensor),
}

impl<B: Backend> Clone for Truth<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for Truth<'_, B> {}

/// A sequential model.
pub struct Model<B: Backend> {
    /// The architecture.
    pub spec: ModelSpec,
    /// What the outputs are, and so the loss: softmax cross-entropy over class logits
    /// ([`Task::Classify`], the default), sigmoid binary cross-entropy over one logit
    /// ([`Task::Binary`]) or half the squared error of linear outputs ([`Task::Regress`]).
    pub task: Task,
    /// The layers, input first.
    pub layers: Vec<Box<dyn Layer<B>>>,
    /// The (seed, step) of the last training forward pass, whose random draws its backward pass repeats.
    draw: (u64, u64),
}

impl<B: Backend> Model<B> {
    /// A model of architecture `spec` with weights drawn by `init` from a generator seeded with `seed`
    /// (dense layers in order), and room for `optimizer_states` state tensors per parameter.
    pub fn new(
        b: &B,
        spec: ModelSpec,
        init: Init,
        seed: u64,
        optimizer_states: usize,
    ) -> Result<Self> {
        let shapes = spec.shapes()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let inputs = std::iter::once(spec.input).chain(shapes);
        let layers = spec
            .layers
            .iter()
            .zip(inputs)
            .map(|(l, input)| {
                let mut at = BuildAt {
                    input,
                    init,
                    rng: &mut rng,
                    states: optimizer_states,
                };
                b.build_layer(l.kind(), &mut at)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            spec,
            task: Task::Classify,
            layers,
            draw: (0, 0),
        })
    }
}

impl<B: Backend> Model<B> {
    /// Buffers for batches of `rows`: to train on, or to evaluate.
    pub fn workspace(&self, b: &B, rows: usize) -> Result<Workspace<B>> {
        self.buffers(b, rows, true)
    }

    /// Buffers for forward passes and losses of batches of `rows`: the outputs, and of the gradients
    /// only the loss's (the last layer's); [`Model::backward`] refuses it.
    pub fn inference_workspace(&self, b: &B, rows: usize) -> Result<Workspace<B>> {
        self.buffers(b, rows, false)
    }

    fn buffers(&self, b: &B, rows: usize, every_grad: bool) -> Result<Workspace<B>> {
        let mut outputs = Vec::new();
        let mut grads = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let width = layer.output_shape().len();
            outputs.push(b.zeros(rows, width)?);
            grads.push(if every_grad || i + 1 == self.layers.len() {
                b.zeros(rows, width)?
            } else {
                b.zeros(1, 1)?
            });
        }
        Ok(Workspace {
            outputs,
            grads,
            loss: b.zeros(1, 1)?,
            every_grad,
        })
    }

    /// The activation fused into layer `i` (its forward pass applies it, writing the activation's
    /// output), when layer `i` fuses activations, layer `i + 1` is an activation whose derivative its
    /// output determines, and layer `i + 2` fuses activations too (its input-gradient product then
    /// multiplies by that derivative).
    fn fused_activation(&self, i: usize) -> Option<Activation> {
        let (layer, next, after) = (
            self.layers.get(i)?,
            self.layers.get(i + 1)?,
            self.layers.get(i + 2)?,
        );
        let f = next.activation()?;
        (layer.fuses_activations() && after.fuses_activations() && f.has_output_derivative())
            .then_some(f)
    }

    /// True when layer `i` is an activation fused into the layer before it.
    fn is_fused(&self, i: usize) -> bool {
        i > 0 && self.fused_activation(i - 1).is_some()
    }

    /// Runs the layers on `x` for inference (dropout is the identity, batch norm uses its running
    /// statistics); the logits end up in [`Workspace::logits`]. A dense layer followed by an activation
    /// whose derivative its output determines (ReLU, sigmoid, tanh, …) and then by a dense layer runs
    /// as one product with the activation in its epilogue, writing the activation's output; the dense
    /// layer's own output buffer is then left unwritten.
    pub fn forward(&self, b: &B, x: &B::Tensor, ws: &mut Workspace<B>) -> Result<()> {
        for i in 0..self.layers.len() {
            if self.is_fused(i) {
                continue;
            }
            let fused = self.fused_activation(i);
            let (input, out) = slots(&mut ws.outputs, x, i, fused.is_some());
            self.layers[i].forward(b, input, out, fused.unwrap_or(Activation::Identity))?;
        }
        Ok(())
    }

    /// [`Model::forward`] for training: dropout draws its masks from (`seed`, layer, `step`), which
    /// [`Model::backward`] draws again, and batch norm normalises by the batch's statistics.
    pub fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        ws: &mut Workspace<B>,
        seed: u64,
        step: u64,
    ) -> Result<()> {
        self.draw = (seed, step);
        for i in 0..self.layers.len() {
            if self.is_fused(i) {
                continue;
            }
            let fused = self.fused_activation(i);
            let draw = self.draw_for(i);
            let (input, out) = slots(&mut ws.outputs, x, i, fused.is_some());
            self.layers[i].forward_train(
                b,
                input,
                out,
                fused.unwrap_or(Activation::Identity),
                draw,
            )?;
        }
        Ok(())
    }

    fn draw_for(&self, layer: usize) -> Draw {
        Draw {
            seed: self.draw.0,
            step: self.draw.1,
            layer,
        }
    }

    /// Runs the layers on `x` for inference and puts the batch's mean loss against `truth` in
    /// [`Workspace::loss`], without backprop.
    pub fn loss(
        &self,
        b: &B,
        x: &B::Tensor,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        self.forward(b, x, ws)?;
        self.loss_of_outputs(b, truth, ws)
    }

    /// As [`Model::loss`] in training mode, with the draws of (`seed`, `step`): what a numerical
    /// gradient of a training step evaluates.
    pub fn loss_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
        seed: u64,
        step: u64,
    ) -> Result<()> {
        self.forward_train(b, x, ws, seed, step)?;
        self.loss_of_outputs(b, truth, ws)
    }

    /// The task's loss of the last outputs against `truth` into `ws.loss`, and its gradient into the
    /// last layer's output gradient.
    pub(crate) fn loss_of_outputs(
        &self,
        b: &B,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        let last = self.layers.len() - 1;
        let (out, grad, loss) = (&ws.outputs[last], &mut ws.grads[last], &mut ws.loss);
        match (self.task, truth) {
            (Task::Classify, Truth::Labels(labels)) => {
                b.softmax_cross_entropy(out, labels, grad, loss)
            }
            (Task::Binary, Truth::Targets(t)) => b.sigmoid_binary_cross_entropy(out, t, grad, loss),
            (Task::Regress, Truth::Targets(t)) => b.mean_squared_error(out, t, grad, loss),
            (task, _) => Err(Error::Invalid(format!(
                "a {} model's loss needs {}",
                task.name(),
                if task == Task::Classify {
                    "class labels"
                } else {
                    "float targets"
                }
            ))),
        }
    }

    /// After [`Model::forward_train`]: the task's loss against `truth` (into `ws.loss`) and its
    /// gradient back through every layer, ending in every parameter's gradient.
    pub fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
    ) -> Result<()> {
        self.backward_into(b, x, truth, ws, None)
    }

    /// [`Model::backward`], and the loss's gradient with respect to the input itself into `dx` (`x`'s
    /// shape): how strongly each input value moves the loss (the recurrent lesson's gradient at each
    /// time step).
    pub fn backward_to_input(
        &mut self,
        b: &B,
        x: &B::Tensor,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
        dx: &mut B::Tensor,
    ) -> Result<()> {
        self.backward_into(b, x, truth, ws, Some(dx))
    }

    fn backward_into(
        &mut self,
        b: &B,
        x: &B::Tensor,
        truth: Truth<'_, B>,
        ws: &mut Workspace<B>,
        mut input_grad: Option<&mut B::Tensor>,
    ) -> Result<()> {
        if !ws.every_grad {
            return Err(Error::Invalid(
                "an inference workspace holds no layer's gradient: backpropagate with \
                 Model::workspace's"
                    .into(),
            ));
        }
        self.loss_of_outputs(b, truth, ws)?;
        for i in (0..self.layers.len()).rev() {
            if self.is_fused(i) {
                continue;
            }
            let input = if i == 0 { x } else { &ws.outputs[i - 1] };
            // The input gradient skips back over an activation fused into the layer before.
            let before = if i >= 2 && self.is_fused(i - 1) {
                self.layers[i - 1].activation()
            } else {
                None
            };
            let target = i - usize::from(before.is_some());
            let (earlier, rest) = ws.grads.split_at_mut(target);
            let dy = &rest[i - target];
            let dx = match i {
                0 => input_grad.take(),
                _ => Some(&mut earlier[target - 1]),
            };
            let draw = self.draw_for(i);
            let before = before.unwrap_or(Activation::Identity);
            self.layers[i].backward(b, input, dy, dx, before, draw)?;
        }
        Ok(())
    }

    /// Applies one optimizer update to every parameter from the gradients of the last backward pass,
    /// after clipping them by their global norm where `step` asks (on the device: nothing is read back).
    pub fn update(&mut self, b: &B, step: &OptimStep) -> Result<()> {
        if let Some(max_norm) = step.clip_norm {
            let mut squares = b.zeros(1, 1)?;
            for p in self.params() {
                b.sum_squares(&p.grad, &mut squares)?;
            }
            for p in self.params_mut() {
                b.clip(max_norm, &squares, &mut p.grad)?;
            }
        }
        for p in self.params_mut() {
            p.update(b, step)?;
        }
        Ok(())
    }

    /// Every learnable parameter, input first.
    pub fn params(&self) -> impl Iterator<Item = &Param<B>> {
        self.layers.iter().flat_map(|l| l.params())
    }

    /// Every learnable parameter, mutable, input first.
    pub fn params_mut(&mut self) -> impl Iterator<Item = &mut Param<B>> {
        self.layers.iter_mut().flat_map(|l| l.params_mut())
    }

    /// Every layer's running statistics (see [`Layer::running_statistics`]), input first.
    pub fn running_statistics(&self) -> impl Iterator<Item = &B::Tensor> {
        self.layers.iter().flat_map(|l| l.running_statistics())
    }

    /// Every layer's running statistics, mutable, input first.
    pub fn running_statistics_mut(&mut self) -> impl Iterator<Item = &mut B::Tensor> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.running_statistics_mut())
    }

    /// Floating-point operations of one forward pass per sample (the matrix products).
    pub fn forward_flops_per_sample(&self) -> f64 {
        self.spec.forward_flops_per_sample()
    }
}

/// Layer `i`'s input (`x` for the first layer) and the buffer it writes: its own output, or the next
/// layer's when it computes a fused activation.
fn slots<'a, T>(outputs: &'a mut [T], x: &'a T, i: usize, fused: bool) -> (&'a T, &'a mut T) {
    let (before, rest) = outputs.split_at_mut(i);
    let input = if i == 0 { x } else { &before[i - 1] };
    (input, &mut rest[usize::from(fused)])
}
