//! An element-wise activation layer, `y = f(x)`.

use super::{Draw, Layer, Shape};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::Result;

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
