//! A model's architecture as text: a list of layers such as
//! `input 784, dense 256, batch_norm, relu, dropout 0.5, dense 10`, or the MLP shorthand
//! `784-256-256-10 relu` (with an optional ` dropout 0.5`).
//!
//! Each layer kind has one line here, in the parser's table; its file under `src/layers/` says how it
//! is written, the shape it outputs and how it is built.

use std::fmt;
use std::sync::Arc;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layers::activation::ActivationKind;
use crate::layers::batch_norm::{self, BatchNormKind};
use crate::layers::dense::{self, DenseKind};
use crate::layers::dropout::{self, DropoutKind};
use crate::layers::flatten::{self, FlattenKind};
use crate::layers::{LayerKind, Shape, check_values};
use crate::layers::{conv, pool, recurrent};

/// Reads one spec item's arguments (the words after its name) into its kind.
type Parser = fn(&str, &[&str]) -> Result<Box<dyn LayerKind>>;

/// Every layer kind the spec language knows, by its first word (activations are read by their names).
/// A new layer adds its line here.
const KINDS: &[(&str, Parser)] = &[
    ("dense", dense::parse),
    ("dropout", dropout::parse),
    ("batch_norm", batch_norm::parse),
    ("conv", conv::parse),
    ("max_pool", pool::parse_max),
    ("avg_pool", pool::parse_avg),
    ("flatten", flatten::parse),
    ("rnn", recurrent::parse_rnn),
    ("lstm", recurrent::parse_lstm),
    ("gru", recurrent::parse_gru),
];

/// One layer of an architecture: its [`LayerKind`], compared and printed as the spec writes it.
#[derive(Clone, Debug)]
pub struct LayerSpec(Arc<dyn LayerKind>);

impl LayerSpec {
    /// Wraps a layer kind.
    pub fn new(kind: impl LayerKind + 'static) -> Self {
        LayerSpec(Arc::new(kind))
    }

    /// Reads one item: `dense 256`, `relu`, `dropout 0.5`, `batch_norm`.
    pub fn parse(item: &str) -> Result<Self> {
        let words: Vec<&str> = item.split_whitespace().collect();
        let Some((&name, args)) = words.split_first() else {
            return Err(Error::Invalid("an empty layer in the list".into()));
        };
        if let Some((_, parse)) = KINDS.iter().find(|(n, _)| *n == name) {
            return Ok(LayerSpec(Arc::from(parse(item, args)?)));
        }
        match (Activation::from_name(name), args) {
            (Some(f), []) => Ok(LayerSpec::new(ActivationKind(f))),
            _ => {
                let known: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
                Err(Error::Invalid(format!(
                    "layer `{item}`: unknown layer or wrong arguments; expected {} or an activation \
                     (relu, sigmoid, tanh, …)",
                    known.join(", ")
                )))
            }
        }
    }

    /// The layer kind.
    pub fn kind(&self) -> &dyn LayerKind {
        &*self.0
    }
}

impl PartialEq for LayerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.describe() == other.0.describe()
    }
}

impl fmt::Display for LayerSpec {
    /// As [`LayerSpec::parse`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
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
        for &units in hidden {
            layers.push(LayerSpec::new(DenseKind { units }));
            if options.batch_norm {
                layers.push(LayerSpec::new(BatchNormKind));
            }
            layers.push(LayerSpec::new(ActivationKind(activation)));
            if options.dropout > 0.0 {
                layers.push(LayerSpec::new(DropoutKind { p: options.dropout }));
            }
        }
        layers.push(LayerSpec::new(DenseKind { units: outputs }));
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
        let mut layers = Vec::new();
        // Whether the values are images (even 1×1 ones), as PyTorch's tensors would be.
        let mut images = !input.is_flat();
        let mut shape = input;
        for item in items {
            let layer = LayerSpec::parse(item)?;
            let name = layer.kind().name();
            // A dense layer after images gets the flatten PyTorch's nn.Sequential would need.
            if name == "dense" && images {
                layers.push(LayerSpec::new(FlattenKind));
            }
            shape = layer.kind().output_shape(shape)?;
            images = match name {
                "conv" | "max_pool" | "avg_pool" => true,
                "dense" | "flatten" => false,
                // A recurrent layer's sequence of states, `[N, T, H]` in PyTorch.
                "rnn" | "lstm" | "gru" => !shape.is_flat(),
                _ => images,
            };
            layers.push(layer);
        }
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

    /// One sample's shape after each layer; an error names the first layer that cannot take its input
    /// or holds a tensor over [`MAX_TENSOR_VALUES`](crate::layers::MAX_TENSOR_VALUES), or a model with
    /// no layers or whose output is not flat.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let mut shape = self.input;
        let mut shapes = Vec::new();
        check_values(shape.checked_len(), || format!("the input {shape}"))?;
        for (i, layer) in self.layers.iter().enumerate() {
            let input = shape;
            shape = layer.kind().output_shape(input)?;
            if shape.is_empty() {
                return Err(Error::Invalid(format!(
                    "layer {i} ({layer}) of `{}` outputs nothing: every layer needs at least 1 unit",
                    self.describe()
                )));
            }
            check_values(shape.checked_len(), || {
                format!("the output of layer {i} ({layer})")
            })?;
            for (rows, cols) in layer.kind().parameter_shapes(input) {
                check_values(rows.checked_mul(cols), || {
                    format!("a {rows}×{cols} parameter of layer {i} ({layer})")
                })?;
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

    /// How many parameters (weights, biases, batch norm's scales and shifts) the model holds.
    pub fn parameter_count(&self) -> Result<u64> {
        let shapes = self.parameter_shapes(&self.shapes()?);
        Ok(shapes.iter().map(|&(r, c)| r as u64 * c as u64).sum())
    }

    /// Every layer's parameter tensors, `(rows, cols)`, given the layers' output `shapes`.
    fn parameter_shapes(&self, shapes: &[Shape]) -> Vec<(usize, usize)> {
        let inputs = std::iter::once(self.input).chain(shapes.iter().copied());
        self.layers
            .iter()
            .zip(inputs)
            .flat_map(|(l, i)| l.kind().parameter_shapes(i))
            .collect()
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
        let tensors = self.parameter_shapes(&shapes);
        let params: u64 = tensors.iter().map(|&(r, c)| (r * c) as u64).sum();
        let scratch: Vec<(usize, usize)> = self
            .layers
            .iter()
            .zip(inputs.clone())
            .flat_map(|(l, i)| l.kind().scratch_shapes(i, batch))
            .collect();
        let scratch_values: u64 = scratch.iter().map(|&(r, c)| (r * c) as u64).sum();
        let activations: u64 = shapes
            .iter()
            .map(|s| 2 * (batch * s.len()) as u64)
            .sum::<u64>()
            + (batch * self.input.len()) as u64;
        let bytes = 4 * (params * (2 + optimizer_states as u64) + activations + scratch_values);
        let batches = inputs.map(|s| (batch, s.len()));
        let largest = tensors
            .into_iter()
            .chain(scratch)
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
            flops += layer.kind().flops(shape);
            shape = layer.kind().output_shape(shape).unwrap_or(shape);
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
        assert_eq!(spec.layers[1].kind().name(), "batch_norm");
        assert_eq!(spec.layers[1], LayerSpec::parse("batch_norm").unwrap());
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
            "input 1x28x28x1, dense 10",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad}");
        }
    }

    /// Sizes whose products overflow, or pass the most a tensor may hold, are errors that say what is
    /// too large, never a panic.
    #[test]
    fn sizes_too_large_are_errors() {
        let max = usize::MAX;
        let (big, half) = (1usize << 62, 1usize << 63);
        for (text, says) in [
            (
                format!("input 1x28x28, conv {max}x5x5, dense 10"),
                "the output of layer 0",
            ),
            (
                format!("input 1x28x28, conv 1x{half}x1 pad {}, dense 10", half - 1),
                "is too large",
            ),
            (
                format!(
                    "input 1x28x28, conv 1x{big}x{big} pad {}, dense 10",
                    big - 1
                ),
                "window over",
            ),
            (format!("input {max}x{max}x2, dense 10"), "holds more than"),
            ("input 65536x65536x2, dense 10".into(), "holds more than"),
            (
                "input 784, dense 6000000, dense 10".into(),
                "parameter of layer 0",
            ),
        ] {
            let err = ModelSpec::parse(&text).expect_err(&text).to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn memory_counts_parameters_states_and_activations() {
        let spec = ModelSpec::mlp(784, &[100], 10, Activation::Relu);
        let (bytes, largest) = spec.training_memory(50, 2).unwrap();
        let params = 785 * 100 + 101 * 10;
        assert_eq!(spec.parameter_count().unwrap(), params as u64);
        let activations = 2 * 50 * (100 + 100 + 10) + 50 * 784;
        assert_eq!(bytes, 4 * (4 * params + activations) as u64);
        assert_eq!(largest, (784, 100));
    }
}
