//! Layers, one file each: a layer's forward pass beside its backward pass, written once against
//! [`Backend`], owning its parameters, their gradients and their optimizer state.
//!
//! Activations flow between layers as `[batch, features]` tensors whose features are one sample's
//! [`Shape`] laid out channel by channel (N×C×H×W row-major, so a dense layer's `F` features are `F×1×1`).
//! A model ([`crate::model`]) is a sequence of layers built from a spec. Each file also holds its layer's
//! [`LayerKind`]: how the spec writes it, the shape it outputs and how it is built. Adding a layer is a
//! new file here and one line in the spec parser's table ([`crate::model::spec`]).

pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod flatten;
pub mod pool;
pub mod recurrent;

use std::fmt;

use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::gpu::GpuBackend;
use crate::init::Init;
use crate::optim::OptimStep;

/// The most values a tensor of a model may hold: one sample's activations, or one parameter. The
/// GPU's kernels index with 32-bit integers.
pub const MAX_TENSOR_VALUES: usize = u32::MAX as usize;

/// Refuses a value `count` that overflowed (`None`) or is over [`MAX_TENSOR_VALUES`], naming `what`
/// holds it.
pub fn check_values(count: Option<usize>, what: impl FnOnce() -> String) -> Result<()> {
    match count {
        Some(n) if n <= MAX_TENSOR_VALUES => Ok(()),
        _ => Err(Error::Invalid(format!(
            "{} holds more than {MAX_TENSOR_VALUES} values, the most one tensor may hold",
            what()
        ))),
    }
}

/// One sample's activations: `channels × height × width` (dense features are `F × 1 × 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Channels (features, for a flat shape).
    pub channels: usize,
    /// Rows of an image; 1 when flat.
    pub height: usize,
    /// Columns of an image; 1 when flat.
    pub width: usize,
}

impl Shape {
    /// `features` values with no spatial extent.
    pub fn flat(features: usize) -> Self {
        Shape {
            channels: features,
            height: 1,
            width: 1,
        }
    }

    /// A `channels × height × width` image.
    pub fn image(channels: usize, height: usize, width: usize) -> Self {
        Shape {
            channels,
            height,
            width,
        }
    }

    /// Values per sample.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Values per sample, or `None` where the count does not fit a `usize`.
    pub fn checked_len(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }

    /// True when the shape holds no values.
    pub fn is_empty(&self) -> bool {
        self.channels == 0 || self.height == 0 || self.width == 0
    }

    /// Positions per channel (`height·width`).
    pub fn spatial(&self) -> usize {
        self.height * self.width
    }

    /// True for a shape with no spatial extent.
    pub fn is_flat(&self) -> bool {
        self.spatial() == 1
    }

    /// Reads `784` (flat), `28x28` (a sequence of 28 steps of 28 features, one channel) or `1x28x28`
    /// (channels × height × width).
    pub fn parse(s: &str) -> Result<Self> {
        let dims: Vec<usize> = s
            .split('x')
            .map(|d| d.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::Invalid(format!("shape `{s}` is not `784`, `28x28` or `1x28x28`"))
            })?;
        let shape = match dims[..] {
            [f] => Shape::flat(f),
            [h, w] => Shape::image(1, h, w),
            [c, h, w] => Shape::image(c, h, w),
            _ => {
                return Err(Error::Invalid(format!(
                    "shape `{s}` is not `784`, `28x28` or `1x28x28`"
                )));
            }
        };
        if shape.is_empty() {
            return Err(Error::Invalid(format!("shape `{s}` holds no values")));
        }
        check_values(shape.checked_len(), || format!("shape `{s}`"))?;
        Ok(shape)
    }
}

impl fmt::Display for Shape {
    /// `784` when flat, `1x28x28` otherwise (what [`Shape::parse`] reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_flat() {
            write!(f, "{}", self.channels)
        } else {
            write!(f, "{}x{}x{}", self.channels, self.height, self.width)
        }
    }
}

/// A learnable tensor with its gradient and the optimizer's state for it.
pub struct Param<B: Backend> {
    /// The values.
    pub value: B::Tensor,
    /// `dL/dvalue` from the last backward pass.
    pub grad: B::Tensor,
    /// Optimizer state: the rule's first and second tensors (1×1 when it needs fewer).
    state: [B::Tensor; 2],
}

impl<B: Backend> Param<B> {
    /// A `[rows, cols]` parameter holding `values`, with room for `states` optimizer state tensors.
    pub fn new(b: &B, rows: usize, cols: usize, values: &[f32], states: usize) -> Result<Self> {
        let state = |i: usize| {
            if i < states {
                b.zeros(rows, cols)
            } else {
                b.zeros(1, 1)
            }
        };
        Ok(Param {
            value: b.tensor(rows, cols, values)?,
            grad: b.zeros(rows, cols)?,
            state: [state(0)?, state(1)?],
        })
    }

    /// The optimizer's state tensors (1×1 where the rule needs fewer): what resuming a run restores.
    pub fn state(&self) -> &[B::Tensor; 2] {
        &self.state
    }

    /// The optimizer's state tensors, mutable.
    pub fn state_mut(&mut self) -> &mut [B::Tensor; 2] {
        &mut self.state
    }

    /// One optimizer update from the gradient.
    pub fn update(&mut self, b: &B, step: &OptimStep) -> Result<()> {
        let [s1, s2] = &mut self.state;
        b.optimizer_step(step, &mut self.value, &self.grad, s1, s2)
    }
}

/// Where a training pass stands: what a layer that draws random numbers (dropout) keys them by, so that
/// the backward pass draws the same ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Draw {
    /// The run's seed.
    pub seed: u64,
    /// The training step.
    pub step: u64,
    /// The layer's index in the model.
    pub layer: usize,
}

/// A tensor's values as a checkpoint stores them.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// 32-bit floats (parameters, running statistics).
    F32(Vec<f32>),
    /// 64-bit integers (counters).
    I64(Vec<i64>),
}

/// A tensor in a checkpoint: its name within its layer (PyTorch's: `weight`, `bias`, `running_mean`…),
/// its shape in PyTorch's layout, and its values.
pub struct Exported {
    /// The name within the layer.
    pub name: &'static str,
    /// The shape, PyTorch's layout.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub values: Values,
}

/// Reads a layer's tensor from a checkpoint: `(name, shape)` to its values, shape checked, floats
/// finite.
pub type Import<'a> = dyn Fn(&str, &[usize]) -> Result<Values> + 'a;

impl Values {
    /// The floats, or an error naming tensor `name` when it holds integers.
    pub fn into_f32(self, name: &str) -> Result<Vec<f32>> {
        match self {
            Values::F32(v) => Ok(v),
            Values::I64(_) => Err(Error::Invalid(format!(
                "tensor {name} holds integers where floats belong"
            ))),
        }
    }
}

/// One layer of a sequential model.
pub trait Layer<B: Backend> {
    /// One sample's output shape.
    fn output_shape(&self) -> Shape;

    /// Inference: `y = layer(x)`, then `then` element-wise where the layer [fuses
    /// activations](Layer::fuses_activations) (`then` is the identity otherwise).
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, then: Activation) -> Result<()>;

    /// Training: as [`Layer::forward`], but layers that behave differently while training (dropout,
    /// batch statistics) do so and keep what their backward pass needs.
    fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        y: &mut B::Tensor,
        then: Activation,
        _draw: Draw,
    ) -> Result<()> {
        self.forward(b, x, y, then)
    }

    /// After [`Layer::forward_train`] on `x`: the parameter gradients from `dy = dL/dy`, and `dx = dL/dx`
    /// when asked for, multiplied by the derivative of `before`, the activation that produced `x`
    /// (computed from `x`; only where the layer fuses activations, the identity otherwise).
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        before: Activation,
        draw: Draw,
    ) -> Result<()>;

    /// The learnable parameters, in checkpoint order.
    fn params(&self) -> Vec<&Param<B>> {
        Vec::new()
    }

    /// The learnable parameters, mutable.
    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        Vec::new()
    }

    /// Statistics the layer gathers while training and uses at inference (batch norm's running mean and
    /// variance): what data-parallel replicas average, since each gathers them from its own samples.
    fn running_statistics(&self) -> Vec<&B::Tensor> {
        Vec::new()
    }

    /// The running statistics, mutable.
    fn running_statistics_mut(&mut self) -> Vec<&mut B::Tensor> {
        Vec::new()
    }

    /// True for a layer that can apply an activation after its own output in its forward pass and
    /// multiply its input gradient by the derivative of the activation before it (a dense layer: both
    /// land in its matrix product's epilogue).
    fn fuses_activations(&self) -> bool {
        false
    }

    /// The activation, for an activation layer.
    fn activation(&self) -> Option<Activation> {
        None
    }

    /// The device tensors [`Layer::export`] is made from, in the order it takes their values.
    fn saved_tensors(&self) -> Vec<&B::Tensor> {
        Vec::new()
    }

    /// The tensors a checkpoint keeps, in PyTorch's layout and names, from the values of
    /// [`Layer::saved_tensors`] (read back by the caller, so that a browser can await them).
    fn export(&self, _values: &[Vec<f32>]) -> Vec<Exported> {
        Vec::new()
    }

    /// Loads what [`Layer::export`] wrote, through `read`.
    fn import(&mut self, _b: &B, _read: &Import<'_>) -> Result<()> {
        Ok(())
    }
}

/// What a layer's spec item holds (`dense 256`, `dropout 0.5`, `relu`): enough to describe the layer,
/// size it and build it on any backend.
pub trait LayerKind: fmt::Debug + Send + Sync {
    /// The kind's name, the spec item's first word (`dense`, `batch_norm`, `relu`).
    fn name(&self) -> &'static str;

    /// The item as the spec writes it, arguments included.
    fn describe(&self) -> String;

    /// One sample's output shape for an input of `input` (an error for an input it cannot take).
    fn output_shape(&self, input: Shape) -> Result<Shape>;

    /// The `(rows, cols)` of each parameter tensor, as the backend stores it, for an input of `input`.
    fn parameter_shapes(&self, _input: Shape) -> Vec<(usize, usize)> {
        Vec::new()
    }

    /// The `(rows, cols)` of the working buffers the layer keeps for a batch of `batch` (im2col's
    /// columns), beyond its output and gradient.
    fn scratch_shapes(&self, _input: Shape, _batch: usize) -> Vec<(usize, usize)> {
        Vec::new()
    }

    /// Floating-point operations of one sample's forward pass (matrix products only).
    fn flops(&self, _input: Shape) -> f64 {
        0.0
    }

    /// The layer on the CPU ([`Backend::build_layer`] picks the backend's).
    fn build_cpu(&self, b: &CpuBackend, at: &mut BuildAt<'_>)
    -> Result<Box<dyn Layer<CpuBackend>>>;

    /// The layer on the GPU.
    fn build_gpu(&self, b: &GpuBackend, at: &mut BuildAt<'_>)
    -> Result<Box<dyn Layer<GpuBackend>>>;
}

/// Where a layer is built: its input shape, how weights are drawn, and how many optimizer state
/// tensors each parameter needs.
pub struct BuildAt<'a> {
    /// One sample's input shape.
    pub input: Shape,
    /// How weights are drawn.
    pub init: Init,
    /// The generator weights are drawn from (layers draw in model order).
    pub rng: &'a mut StdRng,
    /// Optimizer state tensors per parameter.
    pub states: usize,
}

/// Implements [`LayerKind::build_cpu`] and [`LayerKind::build_gpu`] through one generic function of
/// the layer file, `fn(&self, b: &B, at: &mut BuildAt) -> Result<Box<dyn Layer<B>>>`.
#[macro_export]
macro_rules! build_on_every_backend {
    ($generic:ident) => {
        fn build_cpu(
            &self,
            b: &$crate::cpu::CpuBackend,
            at: &mut $crate::layers::BuildAt<'_>,
        ) -> $crate::error::Result<Box<dyn $crate::layers::Layer<$crate::cpu::CpuBackend>>> {
            self.$generic(b, at)
        }

        fn build_gpu(
            &self,
            b: &$crate::gpu::GpuBackend,
            at: &mut $crate::layers::BuildAt<'_>,
        ) -> $crate::error::Result<Box<dyn $crate::layers::Layer<$crate::gpu::GpuBackend>>> {
            self.$generic(b, at)
        }
    };
}

/// The one number a spec item such as `dense 256` or `dropout 0.5` takes, parsed as `T`.
pub fn one_argument<T: std::str::FromStr>(item: &str, args: &[&str], what: &str) -> Result<T> {
    match args {
        [value] => value.parse().map_err(|_| {
            Error::Invalid(format!("layer `{item}`: the {what} `{value}` is not valid"))
        }),
        _ => Err(Error::Invalid(format!(
            "layer `{item}`: expected one {what}"
        ))),
    }
}
