//! Inverted dropout: while training, each value is dropped with probability `p` and the rest are scaled
//! by `1/(1 − p)`; at inference it is the identity. The mask is a counter-based hash of (seed, layer,
//! step, element) ([`crate::dropout`]), so the backward pass draws it again instead of storing it.

use super::{BuildAt, Draw, Layer, LayerKind, Shape, one_argument};
use crate::activation::Activation;
use crate::backend::Backend;
use crate::dropout;
use crate::error::Result;

/// `dropout P`: inverted dropout with drop probability `P`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutKind {
    /// The drop probability, in `[0, 1)`.
    pub p: f32,
}

/// Reads `dropout P` (`args` = `[P]`).
pub fn parse(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    let p = one_argument(item, args, "probability")?;
    dropout::check(p)?;
    Ok(Box::new(DropoutKind { p }))
}

impl DropoutKind {
    fn build<B: Backend>(&self, _b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        Ok(Box::new(Dropout::new(self.p, at.input)?))
    }
}

impl LayerKind for DropoutKind {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn describe(&self) -> String {
        format!("dropout {}", self.p)
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(input)
    }

    crate::build_on_every_backend!(build);
}

/// Inverted dropout with drop probability `p`.
pub struct Dropout {
    p: f32,
    shape: Shape,
}

impl Dropout {
    /// Dropout with probability `p ∈ [0, 1)` over inputs of `shape`.
    pub fn new(p: f32, shape: Shape) -> Result<Self> {
        dropout::check(p)?;
        Ok(Dropout { p, shape })
    }
}

impl<B: Backend> Layer<B> for Dropout {
    fn output_shape(&self) -> Shape {
        self.shape
    }

    /// The identity (a copy).
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, _then: Activation) -> Result<()> {
        b.dropout(0.0, 0, x, y)
    }

    fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        y: &mut B::Tensor,
        _then: Activation,
        draw: Draw,
    ) -> Result<()> {
        b.dropout(self.p, dropout::key(draw.seed, draw.layer, draw.step), x, y)
    }

    /// `dx = dy` through the same mask and scale.
    fn backward(
        &mut self,
        b: &B,
        _x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        _before: Activation,
        draw: Draw,
    ) -> Result<()> {
        match dx {
            Some(dx) => b.dropout(
                self.p,
                dropout::key(draw.seed, draw.layer, draw.step),
                dy,
                dx,
            ),
            None => Ok(()),
        }
    }
}
