//! An element-wise activation layer, `y = f(x)`.

use super::{BuildAt, Draw, Layer, LayerKind, Shape};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::Result;

/// An activation by name (`relu`, `sigmoid`, …): element-wise, shape kept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationKind(pub Activation);

impl ActivationKind {
    fn build<B: Backend>(&self, _b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        Ok(Box::new(ActivationLayer::new(self.0, at.input)))
    }
}

impl LayerKind for ActivationKind {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn describe(&self) -> String {
        self.0.name().to_string()
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(input)
    }

    crate::build_on_every_backend!(build);
}

/// `y = f(x)` element-wise; any shape in, the same shape out.
pub struct ActivationLayer {
    f: Activation,
    shape: Shape,
}

impl ActivationLayer {
    /// `f` over inputs of `shape`.
    pub fn new(f: Activation, shape: Shape) -> Self {
        ActivationLayer { f, shape }
    }
}

impl<B: Backend> Layer<B> for ActivationLayer {
    fn output_shape(&self) -> Shape {
        self.shape
    }

    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, _then: Activation) -> Result<()> {
        b.activation_forward(self.f, x, y)
    }

    /// `dx = dy ⊙ f'(x)`.
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        _before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        match dx {
            Some(dx) => b.activation_backward(self.f, x, dy, dx),
            None => Ok(()),
        }
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.f)
    }
}
