//! A fully connected layer, `y = x·W + b`.

use super::{
    BuildAt, Draw, Exported, Import, Layer, LayerKind, Param, Shape, Values, one_argument,
};
use crate::activation::Activation;
use crate::backend::{Backend, Epilogue};
use crate::error::{Error, Result};

/// `dense N`: a fully connected layer to `N` features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseKind {
    /// Output features.
    pub units: usize,
}

/// Reads `dense N` (`args` = `[N]`).
pub fn parse(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    let units = one_argument(item, args, "width")?;
    if units == 0 {
        return Err(Error::Invalid(format!(
            "layer `{item}`: a layer needs at least 1 unit"
        )));
    }
    Ok(Box::new(DenseKind { units }))
}

impl DenseKind {
    fn build<B: Backend>(&self, b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        let fan_in = at.input.len();
        let weights = at.init.sample(at.rng, fan_in, fan_in * self.units);
        Ok(Box::new(Dense::new(
            b, fan_in, self.units, &weights, at.states,
        )?))
    }
}

impl LayerKind for DenseKind {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn describe(&self) -> String {
        format!("dense {}", self.units)
    }

    /// Flattens any input: `units` features out.
    fn output_shape(&self, _input: Shape) -> Result<Shape> {
        Ok(Shape::flat(self.units))
    }

    fn parameter_shapes(&self, input: Shape) -> Vec<(usize, usize)> {
        vec![(input.len(), self.units), (1, self.units)]
    }

    fn flops(&self, input: Shape) -> f64 {
        2.0 * (input.len() * self.units) as f64
    }

    crate::build_on_every_backend!(build);
}

/// `y = x·W + b` with `W` of shape `[inputs, outputs]` and `b` a `[1, outputs]` row added to every sample.
/// Takes any input shape as its flattened features.
pub struct Dense<B: Backend> {
    /// Weights `[inputs, outputs]`.
    pub weight: Param<B>,
    /// Bias `[1, outputs]`.
    pub bias: Param<B>,
    inputs: usize,
    outputs: usize,
}

impl<B: Backend> Dense<B> {
    /// A layer from `inputs` to `outputs` features with the given weights (`inputs·outputs`, row-major
    /// `[inputs, outputs]`) and zero biases, with room for `states` optimizer state tensors per
    /// parameter.
    pub fn new(
        b: &B,
        inputs: usize,
        outputs: usize,
        weights: &[f32],
        states: usize,
    ) -> Result<Self> {
        Ok(Dense {
            weight: Param::new(b, inputs, outputs, weights, states)?,
            bias: Param::new(b, 1, outputs, &vec![0.0; outputs], states)?,
            inputs,
            outputs,
        })
    }
}

/// `[rows, cols]` row-major values transposed to `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| values[r * cols + c]))
        .collect()
}

impl<B: Backend> Layer<B> for Dense<B> {
    fn output_shape(&self) -> Shape {
        Shape::flat(self.outputs)
    }

    /// `y = f(x·W + b)`: the bias and the activation `f` applied in the product's epilogue.
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, then: Activation) -> Result<()> {
        let epilogue = Epilogue::forward(Some(&self.bias.value), then);
        b.matmul(x, false, &self.weight.value, false, epilogue, y)
    }

    /// `dW = xᵀ·dy`, `db = Σ_rows dy`, and `dx = dy·Wᵀ ⊙ f'(x)` for the activation `f` that produced `x`
    /// (computed from its output `x`), in the product's epilogue.
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        b.matmul(x, true, dy, false, Epilogue::none(), &mut self.weight.grad)?;
        b.bias_grad(dy, &mut self.bias.grad)?;
        if let Some(dx) = dx {
            let epilogue = Epilogue::through(before, x);
            b.matmul(dy, false, &self.weight.value, true, epilogue, dx)?;
        }
        Ok(())
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.weight, &mut self.bias]
    }

    fn fuses_activations(&self) -> bool {
        true
    }

    /// As PyTorch's `nn.Linear`: `weight` `[outputs, inputs]`, `bias` `[outputs]`.
    fn saved_tensors(&self) -> Vec<&B::Tensor> {
        vec![&self.weight.value, &self.bias.value]
    }

    fn export(&self, values: &[Vec<f32>]) -> Vec<Exported> {
        vec![
            Exported {
                name: "weight",
                shape: vec![self.outputs, self.inputs],
                values: Values::F32(transpose(&values[0], self.inputs, self.outputs)),
            },
            Exported {
                name: "bias",
                shape: vec![self.outputs],
                values: Values::F32(values[1].clone()),
            },
        ]
    }

    fn import(&mut self, b: &B, read: &Import<'_>) -> Result<()> {
        let weight = read("weight", &[self.outputs, self.inputs])?.into_f32("weight")?;
        b.write(
            &mut self.weight.value,
            &transpose(&weight, self.outputs, self.inputs),
        )?;
        let bias = read("bias", &[self.outputs])?.into_f32("bias")?;
        b.write(&mut self.bias.value, &bias)
    }
}
