//! Flatten: images become flat features. The values do not move (activations are stored row-major
//! N×C×H×W already); the layer exists so that a model's layers line up with PyTorch's `nn.Flatten`
//! and its checkpoint names match. The parser inserts it before a dense layer that follows images.

use super::{BuildAt, Draw, Layer, LayerKind, Shape};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::{Error, Result};

/// `flatten`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlattenKind;

/// Reads `flatten` (no arguments).
pub fn parse(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    if !args.is_empty() {
        return Err(Error::Invalid(format!(
            "layer `{item}`: flatten takes no arguments"
        )));
    }
    Ok(Box::new(FlattenKind))
}

impl FlattenKind {
    fn build<B: Backend>(&self, _b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        Ok(Box::new(Flatten {
            features: at.input.len(),
        }))
    }
}

impl LayerKind for FlattenKind {
    fn name(&self) -> &'static str {
        "flatten"
    }

    fn describe(&self) -> String {
        "flatten".into()
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(Shape::flat(input.len()))
    }

    crate::build_on_every_backend!(build);
}

/// Flatten to `features` values per sample.
pub struct Flatten {
    features: usize,
}

impl<B: Backend> Layer<B> for Flatten {
    fn output_shape(&self) -> Shape {
        Shape::flat(self.features)
    }

    /// `y = x`.
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, _then: Activation) -> Result<()> {
        b.copy(x, y)
    }

    /// `dx = dy`.
    fn backward(
        &mut self,
        b: &B,
        _x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        _before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        match dx {
            Some(dx) => b.copy(dy, dx),
            None => Ok(()),
        }
    }
}
