//! Batch normalisation (Ioffe & Szegedy, 2015): each channel normalised by its batch mean and variance
//! while training, by running averages of them at inference, then scaled and shifted by learnable γ, β.
//! Flat inputs normalise each feature (PyTorch's `BatchNorm1d`); images each channel over the batch and
//! its positions (`BatchNorm2d`).

use super::{BuildAt, Draw, Exported, Import, Layer, LayerKind, Param, Shape, Values};
use crate::activation::Activation;
use crate::backend::{Backend, Shaped};
use crate::error::{Error, Result};

/// `batch_norm`: batch normalisation over the input's channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormKind;

/// Reads `batch_norm` (no arguments).
pub fn parse(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    if !args.is_empty() {
        return Err(Error::Invalid(format!(
            "layer `{item}`: batch_norm takes no arguments"
        )));
    }
    Ok(Box::new(BatchNormKind))
}

impl BatchNormKind {
    fn build<B: Backend>(&self, b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        Ok(Box::new(BatchNorm::new(b, at.input, at.states)?))
    }
}

impl LayerKind for BatchNormKind {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn describe(&self) -> String {
        "batch_norm".into()
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(input)
    }

    /// γ and β, `[2, channels]`.
    fn parameter_shapes(&self, input: Shape) -> Vec<(usize, usize)> {
        vec![(2, input.channels)]
    }

    crate::build_on_every_backend!(build);
}

/// Added to the variance before the square root.
pub const EPS: f32 = 1e-5;
/// Weight of the newest batch in the running averages.
pub const MOMENTUM: f32 = 0.1;

/// Batch normalisation over the channels of its input shape.
pub struct BatchNorm<B: Backend> {
    /// γ (row 0) and β (row 1), `[2, channels]`; γ starts at 1, β at 0.
    pub affine: Param<B>,
    /// Running mean (row 0) and variance (row 1), `[2, channels]`, used at inference.
    pub running: B::Tensor,
    /// The last training batch's mean and `1/√(σ² + ε)`, `[2, channels]`, for the backward pass.
    saved: B::Tensor,
    /// Training batches seen (PyTorch's `num_batches_tracked`).
    batches: i64,
    /// Where the input gradient goes when the model needs none (a first layer), kept for the next step.
    unused_dx: Option<B::Tensor>,
    shape: Shape,
}

impl<B: Backend> BatchNorm<B> {
    /// Batch normalisation of inputs of `shape`, with room for `states` optimizer state tensors.
    pub fn new(b: &B, shape: Shape, states: usize) -> Result<Self> {
        let c = shape.channels;
        let mut unit = vec![0.0; 2 * c];
        unit[..c].fill(1.0);
        Ok(BatchNorm {
            affine: Param::new(b, 2, c, &unit, states)?,
            // Mean 0, variance 1.
            running: b.tensor(2, c, &unit.iter().map(|v| 1.0 - v).collect::<Vec<_>>())?,
            saved: b.zeros(2, c)?,
            batches: 0,
            unused_dx: None,
            shape,
        })
    }
}

impl<B: Backend> Layer<B> for BatchNorm<B> {
    fn output_shape(&self) -> Shape {
        self.shape
    }

    /// `y = γ·(x − running mean)/√(running var + ε) + β`.
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, _then: Activation) -> Result<()> {
        b.batch_norm_eval(x, &self.affine.value, &self.running, EPS, y)
    }

    /// `y = γ·(x − μ)/√(σ² + ε) + β` with the batch's μ, σ²; the running averages move towards them.
    fn forward_train(
        &mut self,
        b: &B,
        x: &B::Tensor,
        y: &mut B::Tensor,
        _then: Activation,
        _draw: Draw,
    ) -> Result<()> {
        self.batches += 1;
        b.batch_norm_train(
            x,
            &self.affine.value,
            EPS,
            MOMENTUM,
            &mut self.saved,
            &mut self.running,
            y,
        )
    }

    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        _before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        // The kernel computes the input gradient with the parameters'; without a caller for it, it
        // lands in a buffer kept for the purpose.
        let dx = match dx {
            Some(dx) => dx,
            None => {
                if self.unused_dx.as_ref().is_none_or(|t| t.rows() != x.rows()) {
                    self.unused_dx = Some(b.zeros(x.rows(), x.cols())?);
                }
                self.unused_dx.as_mut().expect("allocated above")
            }
        };
        b.batch_norm_backward(
            x,
            dy,
            &self.affine.value,
            &self.saved,
            &mut self.affine.grad,
            dx,
        )
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.affine]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.affine]
    }

    fn running_statistics(&self) -> Vec<&B::Tensor> {
        vec![&self.running]
    }

    fn running_statistics_mut(&mut self) -> Vec<&mut B::Tensor> {
        vec![&mut self.running]
    }

    /// As PyTorch's `BatchNorm1d`/`BatchNorm2d`: `weight` (γ), `bias` (β), `running_mean`, `running_var`
    /// (`[channels]` each) and `num_batches_tracked`.
    fn saved_tensors(&self) -> Vec<&B::Tensor> {
        vec![&self.affine.value, &self.running]
    }

    fn export(&self, values: &[Vec<f32>]) -> Vec<Exported> {
        let c = self.shape.channels;
        let (affine, running) = (&values[0], &values[1]);
        let row = |name, values: &[f32]| Exported {
            name,
            shape: vec![c],
            values: Values::F32(values.to_vec()),
        };
        vec![
            row("weight", &affine[..c]),
            row("bias", &affine[c..]),
            row("running_mean", &running[..c]),
            row("running_var", &running[c..]),
            Exported {
                name: "num_batches_tracked",
                shape: vec![],
                values: Values::I64(vec![self.batches]),
            },
        ]
    }

    fn import(&mut self, b: &B, read: &Import<'_>) -> Result<()> {
        let c = self.shape.channels;
        let rows = |a: &str, z: &str| -> Result<Vec<f32>> {
            let mut v = read(a, &[c])?.into_f32(a)?;
            v.extend(read(z, &[c])?.into_f32(z)?);
            Ok(v)
        };
        b.write(&mut self.affine.value, &rows("weight", "bias")?)?;
        b.write(&mut self.running, &rows("running_mean", "running_var")?)?;
        self.batches = match read("num_batches_tracked", &[])? {
            Values::I64(v) => v.first().copied().unwrap_or(0),
            Values::F32(_) => {
                return Err(Error::Invalid(
                    "tensor num_batches_tracked holds floats where a count belongs".into(),
                ));
            }
        };
        Ok(())
    }
}
