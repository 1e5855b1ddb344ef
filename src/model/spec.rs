//! A model's architecture as text: a list of layers such as
//! `input 784, dense 256, batch_norm, relu, dropout 0.5, dense 10`, or the MLP shorthand
//! `784-256-256-10 relu` (with an optional ` dropout 0.5`).
//!
//! Each layer kind has one entry here: its name and arguments ([`LayerSpec::parse`]), how it is written
//! back, the shape it outputs and how it is built.

use std::fmt;

use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::activation::ActivationLayer;
use crate::layers::batch_norm::BatchNorm;
use crate::layers::dense::Dense;
use crate::layers::dropout::Dropout;
use crate::layers::{Layer, Shape};

/// One layer of an architecture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    /// `dense N`: a fully connected layer to `N` features.
    Dense(usize),
    /// An activation by name (`relu`, `sigmoid`, …).
    Activation(Activation),
    /// `dropout P`: inverted dropout with drop probability `P`.
    Dropout(f32),
    /// `batch_norm`: batch normalisation over the input's channels.
    BatchNorm,
}

impl LayerSpec {
    /// Reads one layer: `dense 256`, `relu`, `dropout 0.5`, `batch_norm`.
    pub fn parse(text: &str) -> Result<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = |what: &str| Error::Invalid(format!("layer `{text}`: {what}"));
        let number = |what: &str| -> Result<&str> {
            match words[1..] {
                [n] => Ok(n),
                _ => Err(bad(&format!("expected one {what}"))),
            }
        };
        let spec = match words.first().copied() {
            Some("dense") => {
                let n: usize = number("width")?
                    .parse()
                    .map_err(|_| bad("the width is not a whole number"))?;
                LayerSpec::Dense(n)
            }
            Some("dropout") => {
                let p: f32 = number("probability")?
                    .parse()
                    .map_err(|_| bad("the probability is not a number"))?;
                crate::dropout::check(p)?;
                LayerSpec::Dropout(p)
            }
            Some("batch_norm") if words.len() == 1 => LayerSpec::BatchNorm,
            Some(name) if words.len() == 1 => {
                LayerSpec::Activation(Activation::from_name(name).ok_or_else(|| {
                    bad(
                        "unknown layer; expected dense N, dropout P, batch_norm or an activation \
                         (relu, sigmoid, tanh, …)",
                    )
                })?)
            }
            _ => return Err(bad("unknown layer or wrong arguments")),
        };
        if spec == LayerSpec::Dense(0) {
            return Err(bad("a layer needs at least 1 unit"));
        }
        Ok(spec)
    }

    /// One sample's output shape for an input of `input`.
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(match *self {
            LayerSpec::Dense(n) => Shape::flat(n),
            LayerSpec::Activation(_) | LayerSpec::Dropout(_) | LayerSpec::BatchNorm => input,
        })
    }

    /// Learnable values for an input of `input`.
    pub fn parameters(&self, input: Shape) -> usize {
        match *self {
            LayerSpec::Dense(n) => (input.len() + 1) * n,
            LayerSpec::BatchNorm => 2 * input.channels,
            LayerSpec::Activation(_) | LayerSpec::Dropout(_) => 0,
        }
    }

    /// Floating-point operations of one sample's forward pass (matrix products only).
    pub fn flops(&self, input: Shape) -> f64 {
        match *self {
            LayerSpec::Dense(n) => 2.0 * (input.len() * n) as f64,
            _ => 0.0,
        }
    }

    /// The layer for inputs of `input`, a dense layer's weights drawn by `init` from `rng`, with room
    /// for `states` optimizer state tensors per parameter.
    pub fn build<B: Backend>(
        &self,
        b: &B,
        input: Shape,
        init: Init,
        rng: &mut StdRng,
        states: usize,
    ) -> Result<Box<dyn Layer<B>>> {
        Ok(match *self {
            LayerSpec::Dense(n) => {
                let fan_in = input.len();
                let weights = init.sample(rng, fan_in, fan_in * n);
                Box::new(Dense::new(b, fan_in, n, &weights, states)?)
            }
            LayerSpec::Activation(f) => Box::new(ActivationLayer::new(f, input)),
            LayerSpec::Dropout(p) => Box::new(Dropout::new(p, input)?),
            LayerSpec::BatchNorm => Box::new(BatchNorm::new(b, input, states)?),
        })
    }
}

impl fmt::Display for LayerSpec {
    /// As [`LayerSpec::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerSpec::Dense(n) => write!(f, "dense {n}"),
            LayerSpec::Activation(a) => write!(f, "{}", a.name()),
            LayerSpec::Dropout(p) => write!(f, "dropout {p}"),
            LayerSpec::BatchNorm => write!(f, "batch_norm"),
        }
    }
}

/// What a multi-layer perceptron puts after each hidden dense layer besides its activation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MlpOptions {
    /// Dropout after each hidden activation with this probability (0: none).
    pub dropout: f32,
    /// Batch normalisation between each hidden dense layer and its activation.
    pub batch_norm: bool,
}

/// An architecture: one sample's input shape and the layers, input first. The last layer's output is
/// the logits, one per class, to which the loss applies a softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// One sample's shape.
    pub input: Shape,
    /// The layers.
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// A multi-layer perceptron `inputs → hidden… → outputs` with `activation` after each hidden layer.
    pub fn mlp(inputs: usize, hidden: &[usize], outputs: usize, activation: Activation) -> Self {
        Self::mlp_with(inputs, hidden, outputs, activation, MlpOptions::default())
    }

    /// [`ModelSpec::mlp`] with batch normalisation and dropout in each hidden block:
    /// `dense, [batch_norm], activation, [dropout]`.
    pub fn mlp_with(
        inputs: usize,
        hidden: &[usize],
        outputs: usize,
        activation: Activation,
        options: MlpOptions,
    ) -> Self {
        let mut layers = Vec::new();
        for &h in hidden {
            layers.push(LayerSpec::Dense(h));
            if options.batch_norm {
                layers.push(LayerSpec::BatchNorm);
            }
            layers.push(LayerSpec::Activation(activation));
            if options.dropout > 0.0 {
                layers.push(LayerSpec::Dropout(options.dropout));
            }
        }
        layers.push(LayerSpec::Dense(outputs));
        ModelSpec {
            input: Shape::flat(inputs),
            layers,
        }
    }

    /// Reads an architecture: a layer list that starts with `input SHAPE`, or the MLP shorthand
    /// `784-128-10 relu` (optionally followed by `dropout P`).
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim_start().starts_with("input") {
            return Self::parse_layers(text, None);
        }
        Self::parse_mlp(text)
    }

    /// Reads a layer list; `input` is the input shape when the list does not start with `input SHAPE`
    /// (the data's, from the command line).
    pub fn parse_layers(text: &str, input: Option<Shape>) -> Result<Self> {
        let mut items = text.split(',').map(str::trim).peekable();
        let input = match items.peek().and_then(|i| i.strip_prefix("input")) {
            Some(shape) => {
                items.next();
                Shape::parse(shape.trim())?
            }
            None => input.ok_or_else(|| {
                Error::Invalid(format!(
                    "architecture `{text}` does not say its input shape (start it with `input 784`)"
                ))
            })?,
        };
        let layers = items.map(LayerSpec::parse).collect::<Result<Vec<_>>>()?;
        let spec = ModelSpec { input, layers };
        spec.shapes()?;
        Ok(spec)
    }

    fn parse_mlp(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "architecture `{s}` is not a layer list (`input 784, dense 128, relu, dense 10`) nor of \
                 the form `784-128-10 relu` (or `784-128-10 relu dropout 0.5`)"
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
        let options = MlpOptions {
            dropout,
            batch_norm: false,
        };
        let activation = Activation::from_name(act).ok_or_else(bad)?;
        let hidden = &widths[1..widths.len() - 1];
        Ok(Self::mlp_with(
            widths[0],
            hidden,
            widths[widths.len() - 1],
            activation,
            options,
        ))
    }

    /// Written as `input 784, dense 256, relu, dense 10`: what [`ModelSpec::parse`] reads.
    pub fn describe(&self) -> String {
        let mut items = vec![format!("input {}", self.input)];
        items.extend(self.layers.iter().map(LayerSpec::to_string));
        items.join(", ")
    }

    /// One sample's shape after each layer; an error names the first layer that cannot take its input,
    /// or a model with no layers or whose output is not flat.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let mut shape = self.input;
        let mut shapes = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            shape = layer.output_shape(shape)?;
            if shape.is_empty() {
                return Err(Error::Invalid(format!(
                    "layer {i} ({layer}) of `{}` outputs nothing: every layer needs at least 1 unit",
                    self.describe()
                )));
            }
            shapes.push(shape);
        }
        match shapes.last() {
            None => Err(Error::Invalid(
                "an architecture needs at least one layer".into(),
            )),
            Some(out) if !out.is_flat() => Err(Error::Invalid(format!(
                "the last layer outputs {out}; end with a dense layer to get one logit per class"
            ))),
            Some(_) => Ok(shapes),
        }
    }

    /// The output classes (the last layer's features).
    pub fn outputs(&self) -> usize {
        self.shapes()
            .ok()
            .and_then(|s| s.last().map(Shape::len))
            .unwrap_or(0)
    }

    /// Bytes that training this model in batches of `batch` keeps in memory, with `optimizer_states`
    /// state tensors per parameter: every parameter with its gradient and states, the input batch and
    /// every layer's output with its gradient. Also the largest single tensor, `(rows, cols)`.
    pub fn training_memory(
        &self,
        batch: usize,
        optimizer_states: usize,
    ) -> Result<(u64, (usize, usize))> {
        let shapes = self.shapes()?;
        let inputs = std::iter::once(self.input).chain(shapes.iter().copied());
        let params: u64 = self
            .layers
            .iter()
            .zip(inputs.clone())
            .map(|(l, i)| l.parameters(i) as u64)
            .sum();
        let activations: u64 = shapes
            .iter()
            .map(|s| 2 * (batch * s.len()) as u64)
            .sum::<u64>()
            + (batch * self.input.len()) as u64;
        let bytes = 4 * (params * (2 + optimizer_states as u64) + activations);
        let weights = self
            .layers
            .iter()
            .zip(inputs.clone())
            .filter_map(|(l, i)| match l {
                LayerSpec::Dense(n) => Some((i.len(), *n)),
                _ => None,
            });
        let batches = inputs.map(|s| (batch, s.len()));
        let largest = weights
            .chain(batches)
            .max_by_key(|&(r, c)| r as u64 * c as u64)
            .unwrap_or((0, 0));
        Ok((bytes, largest))
    }

    /// Floating-point operations of one forward pass per sample.
    pub fn forward_flops_per_sample(&self) -> f64 {
        let mut shape = self.input;
        let mut flops = 0.0;
        for layer in &self.layers {
            flops += layer.flops(shape);
            shape = layer.output_shape(shape).unwrap_or(shape);
        }
        flops
    }
}

#[cfg(test)]
mod tests {
    use super::{LayerSpec, MlpOptions, ModelSpec};
    use crate::activation::Activation;
    use crate::layers::Shape;

    #[test]
    fn the_mlp_shorthand_reads_as_its_layer_list() {
        let spec = ModelSpec::parse("784-256-10 relu dropout 0.25").unwrap();
        assert_eq!(
            spec.describe(),
            "input 784, dense 256, relu, dropout 0.25, dense 10"
        );
        assert_eq!(ModelSpec::parse(&spec.describe()).unwrap(), spec);
        assert_eq!(spec.outputs(), 10);
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

    #[test]
    fn layer_lists_read_what_they_write() {
        let text = "input 784, dense 100, batch_norm, gelu, dropout 0.5, dense 10";
        let spec = ModelSpec::parse(text).unwrap();
        assert_eq!(spec.describe(), text);
        assert_eq!(spec.layers[1], LayerSpec::BatchNorm);
        let with = ModelSpec::mlp_with(
            784,
            &[100],
            10,
            Activation::Gelu,
            MlpOptions {
                dropout: 0.5,
                batch_norm: true,
            },
        );
        assert_eq!(with, spec);
        let bare = ModelSpec::parse_layers("dense 30, relu, dense 10", Some(Shape::flat(784)));
        assert_eq!(
            bare.unwrap().describe(),
            "input 784, dense 30, relu, dense 10"
        );
        for bad in [
            "dense 30, relu, dense 10",
            "input 784",
            "input 784, dense 0, dense 10",
            "input 784, dense, dense 10",
            "input 784, dense 10, lasso",
            "input 784, dropout 1.5, dense 10",
            "input 1x28x28, relu",
            "input 0, dense 10",
            "input 28x28, dense 10",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_counts_parameters_states_and_activations() {
        let spec = ModelSpec::mlp(784, &[100], 10, Activation::Relu);
        let (bytes, largest) = spec.training_memory(50, 2).unwrap();
        let params = 785 * 100 + 101 * 10;
        let activations = 2 * 50 * (100 + 100 + 10) + 50 * 784;
        assert_eq!(bytes, 4 * (4 * params + activations) as u64);
        assert_eq!(largest, (784, 100));
    }
}
