//! Preprocessing, fitted on the training part only and stored in the checkpoint: what the model learns
//! ([`Task`]), how raw features become inputs ([`Scaling`]), how regression targets are standardised,
//! and the names and table columns that `predict` needs to read new samples the same way.

use serde_json::{Value, json};

use super::{Dataset, Features, NO_LABEL, Targets};
use crate::backend::{SampleFeatures, Samples};
use crate::error::{Error, Result};
use crate::layers::Shape;
use crate::model::ModelSpec;

/// What a model learns from a set's targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// One of `C ≥ 2` classes: `C` logits, softmax and cross-entropy, accuracy.
    Classify,
    /// Yes or no (class 1 or 0): one logit, sigmoid and binary cross-entropy, class 1 when `σ(z) > ½`.
    Binary,
    /// `T` real values: `T` linear outputs, mean squared error on standardised targets.
    Regress,
}

impl Task {
    /// The task a set's targets imply: two classes are a binary task, more a classification, real
    /// values a regression.
    pub fn infer(targets: &Targets) -> Result<Task> {
        match targets {
            Targets::Classes { names, .. } if names.len() == 2 => Ok(Task::Binary),
            Targets::Classes { .. } => Ok(Task::Classify),
            Targets::Values { .. } => Ok(Task::Regress),
        }
    }

    /// The name `--task` takes.
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classification",
            Task::Binary => "binary",
            Task::Regress => "regression",
        }
    }

    /// Parses [`Task::name`] (also `classify`, `regress`).
    pub fn parse(text: &str) -> Result<Task> {
        match text {
            "classification" | "classify" => Ok(Task::Classify),
            "binary" => Ok(Task::Binary),
            "regression" | "regress" => Ok(Task::Regress),
            _ => Err(Error::Invalid(format!(
                "unknown task `{text}`: classification, binary or regression"
            ))),
        }
    }

    /// The model's outputs for targets with `names` (classes or target columns).
    pub fn outputs(self, names: usize) -> usize {
        match self {
            Task::Binary => 1,
            Task::Classify | Task::Regress => names,
        }
    }

    /// `targets` as this task needs them: class labels read as numbers for a regression, or real values
    /// that are whole numbers as classes (sorted by value) for a classification. A training set's
    /// classes are then checked with [`Task::check_classes`].
    pub fn convert(self, targets: Targets) -> Result<Targets> {
        let targets = match (self, targets) {
            (Task::Regress, Targets::Classes { labels, names }) => {
                let numbers = names
                    .iter()
                    .map(|n| n.parse::<f32>().ok().filter(|v| v.is_finite()))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| {
                        Error::Invalid(
                            "a regression needs numeric targets; this target's values are names \
                             (use --task classification)"
                                .into(),
                        )
                    })?;
                Targets::Values {
                    values: labels.iter().map(|&l| numbers[l as usize]).collect(),
                    names: vec!["target".into()],
                }
            }
            (Task::Classify | Task::Binary, Targets::Values { values, names }) => {
                if names.len() != 1 {
                    return Err(Error::Invalid(format!(
                        "a classification has one target column, not {}",
                        names.len()
                    )));
                }
                classes_from_values(&values)?
            }
            (_, t) => t,
        };
        Ok(targets)
    }

    /// Checks a training set's class count for this task: at least 2, exactly 2 for a binary task, at
    /// most [`super::MAX_CLASSES`] (a test set may hold fewer of the same classes).
    pub fn check_classes(self, targets: &Targets) -> Result<()> {
        if let Targets::Classes { names, .. } = &targets {
            match (self, names.len()) {
                (_, 0 | 1) => {
                    return Err(Error::Invalid(format!(
                        "the target has {} class{}: a classifier needs at least two",
                        names.len(),
                        if names.len() == 1 { "" } else { "es" }
                    )));
                }
                (Task::Binary, n) if n != 2 => {
                    return Err(Error::Invalid(format!(
                        "a binary task needs exactly two classes; the target has {n} (use --task \
                         classification)"
                    )));
                }
                (_, n) if n > super::MAX_CLASSES => {
                    return Err(Error::Invalid(format!(
                        "the target has {n} classes, more than the {} a classifier takes: is it a \
                         number to regress (--task regression) or an identifier?",
                        super::MAX_CLASSES
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whole-number values as classes named by their values, in increasing order.
fn classes_from_values(values: &[f32]) -> Result<Targets> {
    if let Some(v) = values.iter().find(|v| v.fract() != 0.0 || !v.is_finite()) {
        return Err(Error::Invalid(format!(
            "a classification needs whole-number or named classes; the target holds {v} \
             (use --task regression)"
        )));
    }
    // `+ 0.0` turns −0 into 0, so the two are one class.
    let values: Vec<f32> = values.iter().map(|v| v + 0.0).collect();
    let mut distinct = values.clone();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    if distinct.len() > super::MAX_CLASSES {
        return Err(Error::Invalid(format!(
            "the target has {} distinct values, more than the {} classes a classifier takes \
             (use --task regression)",
            distinct.len(),
            super::MAX_CLASSES
        )));
    }
    let labels = values
        .iter()
        .map(|v| {
            distinct
                .binary_search_by(|d| d.total_cmp(v))
                .expect("present") as u32
        })
        .collect();
    Ok(Targets::Classes {
        labels,
        names: distinct.iter().map(|v| format!("{v}")).collect(),
    })
}

/// How raw features become model inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Scaling {
    /// Bytes: `x = byte·scale + shift`, applied as batches are gathered.
    Bytes {
        /// Multiplies the byte.
        scale: f32,
        /// Added after.
        shift: f32,
    },
    /// Floats, standardised per feature: `x = (v − mean[j]) / std[j]`, with the training part's mean and
    /// standard deviation (`std` 1 for a constant feature, so it becomes 0 rather than a division by 0).
    Standard {
        /// Per-feature means.
        mean: Vec<f32>,
        /// Per-feature standard deviations.
        std: Vec<f32>,
    },
    /// Floats used as they are.
    Identity,
}

/// One column of a table as `predict` must read it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The header's name.
    pub name: String,
    /// `None` for a numeric column (one feature); a text column's categories (one feature each, one-hot).
    pub categories: Option<Vec<String>>,
}

/// Where the inputs came from, so that `predict` reads new samples the same way.
#[derive(Clone, Debug, PartialEq)]
pub enum Schema {
    /// Images (IDX files, PNG folders, byte arrays): the model's input shape says their size.
    Images,
    /// A CSV table: its input columns, in order.
    Table(Vec<Column>),
    /// A float array read as it is.
    Array,
}

/// Everything needed to turn raw samples into model inputs and outputs back into answers, fitted on
/// the training part.
#[derive(Clone, Debug, PartialEq)]
pub struct Prep {
    /// What the model learns.
    pub task: Task,
    /// One sample's input shape.
    pub shape: Shape,
    /// Raw features to inputs.
    pub scaling: Scaling,
    /// Regression only: the targets' training means and standard deviations; the model learns
    /// `(t − mean)/std` and its outputs are mapped back.
    pub target: Option<(Vec<f32>, Vec<f32>)>,
    /// Class names (classification, binary: index 1 is the positive class) or target names.
    pub names: Vec<String>,
    /// Where the inputs came from.
    pub schema: Schema,
}

/// Per-column mean and standard deviation of `[N, width]` values, in f64 (1 where a column is constant
/// or there is one row).
fn standardise_fit(values: &[f32], width: usize) -> (Vec<f32>, Vec<f32>) {
    let n = values.len() / width.max(1);
    let mut mean = vec![0f64; width];
    for row in values.chunks_exact(width) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut var = vec![0f64; width];
    for row in values.chunks_exact(width) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let std = var
        .iter()
        .map(|s| {
            let sd = (s / n.max(1) as f64).sqrt();
            if sd > 1e-12 * (1.0 + sd) && sd.is_finite() {
                sd as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}

/// `[N, width]` values standardised in place column by column.
fn standardise(values: &mut [f32], mean: &[f32], std: &[f32]) {
    for row in values.chunks_exact_mut(mean.len().max(1)) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = (*v - m) / s;
        }
    }
}

/// A set ready for the device: inputs (bytes to be scaled by [`Prep::byte_scale`], or floats already
/// scaled), one label per sample ([`NO_LABEL`] in a regression) and the float targets the losses read
/// (binary: the label as 0 or 1; regression: standardised values; classification: none).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Features per sample.
    pub width: usize,
    /// Inputs, `[N, width]`.
    pub features: Features,
    /// One label per sample.
    pub labels: Vec<u32>,
    /// Targets per sample (0 for a classification).
    pub target_width: usize,
    /// `[N, target_width]` float targets.
    pub targets: Vec<f32>,
}

impl Prepared {
    /// The samples as [`crate::Backend::dataset`] takes them, byte features scaled as `prep` says.
    pub fn samples(&self, prep: &Prep) -> Samples<'_> {
        let (scale, shift) = prep.byte_scale();
        Samples {
            width: self.width,
            features: match &self.features {
                Features::Bytes(v) => SampleFeatures::Bytes {
                    values: v,
                    scale,
                    shift,
                },
                Features::Floats(v) => SampleFeatures::Floats(v),
            },
            labels: &self.labels,
            target_width: self.target_width,
            targets: &self.targets,
        }
    }
}

impl Prep {
    /// Images of `shape` bytes in `classes` classes named `0, 1, …`, scaled to [0, 1] when
    /// `normalise` (else kept as 0–255): MNIST's preprocessing, and any IDX set's.
    pub fn images(shape: Shape, classes: usize, normalise: bool) -> Prep {
        Prep {
            task: Task::Classify,
            shape,
            scaling: Scaling::Bytes {
                scale: if normalise { 1.0 / 255.0 } else { 1.0 },
                shift: 0.0,
            },
            target: None,
            names: (0..classes).map(|c| c.to_string()).collect(),
            schema: Schema::Images,
        }
    }

    /// MNIST's preprocessing: 1×28×28 images of 10 digits, see [`Prep::images`].
    pub fn mnist(normalise: bool) -> Prep {
        Prep::images(Shape::image(1, 28, 28), 10, normalise)
    }

    /// Fits the preprocessing of `task` on `train`: byte images scaled to [0, 1], float features and
    /// regression targets standardised per column; with `normalise` false, all kept as they are.
    /// `train`'s targets must already be in the task's form ([`Task::convert`]).
    pub fn fit(train: &Dataset, task: Task, normalise: bool, schema: Schema) -> Result<Prep> {
        if train.is_empty() {
            return Err(Error::Invalid("the training part has no samples".into()));
        }
        let scaling = match (&train.features, normalise) {
            (Features::Bytes(_), true) => Scaling::Bytes {
                scale: 1.0 / 255.0,
                shift: 0.0,
            },
            (Features::Bytes(_), false) => Scaling::Bytes {
                scale: 1.0,
                shift: 0.0,
            },
            (Features::Floats(v), true) => {
                let (mean, std) = standardise_fit(v, train.width());
                Scaling::Standard { mean, std }
            }
            (Features::Floats(_), false) => Scaling::Identity,
        };
        let target = match (&train.targets, task) {
            (Targets::Values { values, names }, Task::Regress) if normalise => {
                Some(standardise_fit(values, names.len()))
            }
            (Targets::Values { names, .. }, Task::Regress) => {
                Some((vec![0.0; names.len()], vec![1.0; names.len()]))
            }
            (Targets::Values { .. }, _) | (Targets::Classes { .. }, Task::Regress) => {
                return Err(Error::Invalid(format!(
                    "the targets do not suit a {} task",
                    task.name()
                )));
            }
            _ => None,
        };
        Ok(Prep {
            task,
            shape: train.shape,
            scaling,
            target,
            names: train.targets.names().to_vec(),
            schema,
        })
    }

    /// The model's outputs.
    pub fn outputs(&self) -> usize {
        self.task.outputs(self.names.len())
    }

    /// Refuses a model that cannot take these samples or give the task's outputs. A model takes the
    /// samples as they are (`input 1x28x28` for MNIST's images) or flat (`input 784`); any other
    /// layout of the same values would scramble them.
    pub fn check_model(&self, spec: &ModelSpec) -> Result<()> {
        let (shape, outputs) = (self.shape, self.outputs());
        let takes = spec.input == shape || spec.input == Shape::flat(shape.len());
        if !takes || spec.outputs() != outputs {
            return Err(Error::Invalid(format!(
                "the samples are {shape} (`input {shape}`, or flat `input {}`) and a {} model gives \
                 {outputs} output{}; `{}` takes {} and gives {} (end with dense {outputs})",
                shape.len(),
                self.task.name(),
                if outputs == 1 { "" } else { "s" },
                spec.describe(),
                spec.input,
                spec.outputs()
            )));
        }
        Ok(())
    }

    /// The byte scaling the device applies when gathering (identity for float sets, which are scaled
    /// on the host).
    pub fn byte_scale(&self) -> (f32, f32) {
        match self.scaling {
            Scaling::Bytes { scale, shift } => (scale, shift),
            _ => (1.0, 0.0),
        }
    }

    /// Checks that `set` has this preprocessing's input shape, feature kind and targets.
    pub fn check(&self, set: &Dataset) -> Result<()> {
        if set.shape != self.shape {
            return Err(Error::shape(format!(
                "samples of {} where the model takes {}",
                set.shape, self.shape
            )));
        }
        let bytes = matches!(set.features, Features::Bytes(_));
        if bytes != matches!(self.scaling, Scaling::Bytes { .. }) {
            return Err(Error::Invalid(format!(
                "the samples are {} but the model was trained on {}",
                if bytes { "bytes" } else { "floats" },
                if bytes { "floats" } else { "bytes" }
            )));
        }
        if set.targets.names() != self.names.as_slice() {
            return Err(Error::Invalid(format!(
                "the set's {} ({}) are not the model's ({})",
                if self.task == Task::Regress {
                    "targets"
                } else {
                    "classes"
                },
                set.targets.names().join(", "),
                self.names.join(", ")
            )));
        }
        Ok(())
    }

    /// Raw features of any number of samples as model inputs (floats scaled on the host, bytes as
    /// floats scaled here): what `predict` feeds the model.
    pub fn inputs(&self, features: &Features) -> Vec<f32> {
        match (features, &self.scaling) {
            (Features::Bytes(v), _) => {
                let (scale, shift) = self.byte_scale();
                v.iter().map(|&b| f32::from(b) * scale + shift).collect()
            }
            (Features::Floats(v), Scaling::Standard { mean, std }) => {
                let mut v = v.clone();
                standardise(&mut v, mean, std);
                v
            }
            (Features::Floats(v), _) => v.clone(),
        }
    }

    /// `set` (checked with [`Prep::check`]) as the device stores it.
    pub fn prepare(&self, set: Dataset) -> Result<Prepared> {
        self.check(&set)?;
        let width = set.width();
        let features = match (set.features, &self.scaling) {
            (Features::Floats(mut v), Scaling::Standard { mean, std }) => {
                standardise(&mut v, mean, std);
                Features::Floats(v)
            }
            (features, _) => features,
        };
        let (labels, target_width, targets) = match (set.targets, self.task) {
            (Targets::Classes { labels, .. }, Task::Classify) => (labels, 0, Vec::new()),
            (Targets::Classes { labels, .. }, _) => {
                let t = labels.iter().map(|&l| l as f32).collect();
                (labels, 1, t)
            }
            (Targets::Values { mut values, names }, _) => {
                let (mean, std) = self.target.as_ref().ok_or_else(|| {
                    Error::Invalid("a regression's preprocessing has no target scaling".into())
                })?;
                standardise(&mut values, mean, std);
                (
                    vec![NO_LABEL; values.len() / names.len()],
                    names.len(),
                    values,
                )
            }
        };
        Ok(Prepared {
            width,
            features,
            labels,
            target_width,
            targets,
        })
    }

    /// Model outputs `[N, outputs]` in the targets' own units (regression: mapped back from
    /// standardised; classification and binary: unchanged).
    pub fn outputs_to_targets(&self, outputs: &mut [f32]) {
        if let Some((mean, std)) = &self.target {
            for row in outputs.chunks_exact_mut(mean.len().max(1)) {
                for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                    *v = *v * s + m;
                }
            }
        }
    }

    /// The preprocessing as JSON, for a checkpoint's metadata.
    pub fn to_json(&self) -> String {
        let scaling = match &self.scaling {
            Scaling::Bytes { scale, shift } => json!({"bytes": {"scale": scale, "shift": shift}}),
            Scaling::Standard { mean, std } => json!({"standard": {"mean": mean, "std": std}}),
            Scaling::Identity => json!("identity"),
        };
        let schema = match &self.schema {
            Schema::Images => json!("images"),
            Schema::Array => json!("array"),
            Schema::Table(columns) => json!({"table": columns
                .iter()
                .map(|c| json!({"name": c.name, "categories": c.categories}))
                .collect::<Vec<_>>()}),
        };
        json!({
            "task": self.task.name(),
            "shape": self.shape.to_string(),
            "scaling": scaling,
            "target": self.target.as_ref().map(|(m, s)| json!({"mean": m, "std": s})),
            "names": self.names,
            "schema": schema,
        })
        .to_string()
    }

    /// Reads [`Prep::to_json`]'s text back.
    pub fn from_json(text: &str) -> Result<Prep> {
        let bad =
            |what: &str| Error::Invalid(format!("the preprocessing record's {what} is invalid"));
        let v: Value = serde_json::from_str(text).map_err(|_| bad("JSON"))?;
        let floats = |v: &Value, what: &str| -> Result<Vec<f32>> {
            v.as_array()
                .ok_or_else(|| bad(what))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32).ok_or_else(|| bad(what)))
                .collect()
        };
        let strings = |v: &Value, what: &str| -> Result<Vec<String>> {
            v.as_array()
                .ok_or_else(|| bad(what))?
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or_else(|| bad(what)))
                .collect()
        };
        let task = Task::parse(v["task"].as_str().ok_or_else(|| bad("task"))?)?;
        let shape = Shape::parse(v["shape"].as_str().ok_or_else(|| bad("shape"))?)?;
        let s = &v["scaling"];
        let scaling = if let Some(b) = s.get("bytes") {
            Scaling::Bytes {
                scale: b["scale"].as_f64().ok_or_else(|| bad("scale"))? as f32,
                shift: b["shift"].as_f64().ok_or_else(|| bad("shift"))? as f32,
            }
        } else if let Some(st) = s.get("standard") {
            let (mean, std) = (floats(&st["mean"], "mean")?, floats(&st["std"], "std")?);
            if mean.len() != shape.len() || std.len() != shape.len() {
                return Err(bad("feature scaling's length"));
            }
            Scaling::Standard { mean, std }
        } else if s.as_str() == Some("identity") {
            Scaling::Identity
        } else {
            return Err(bad("scaling"));
        };
        let names = strings(&v["names"], "names")?;
        let target = match &v["target"] {
            Value::Null => None,
            t => {
                let (mean, std) = (
                    floats(&t["mean"], "target mean")?,
                    floats(&t["std"], "target std")?,
                );
                if mean.len() != names.len() || std.len() != names.len() {
                    return Err(bad("target scaling's length"));
                }
                Some((mean, std))
            }
        };
        if (task == Task::Regress) != target.is_some() {
            return Err(bad("target scaling"));
        }
        let schema = match &v["schema"] {
            Value::String(s) if s == "images" => Schema::Images,
            Value::String(s) if s == "array" => Schema::Array,
            Value::Object(o) => {
                let columns = o
                    .get("table")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("schema"))?;
                Schema::Table(
                    columns
                        .iter()
                        .map(|c| {
                            Ok(Column {
                                name: c["name"].as_str().ok_or_else(|| bad("column name"))?.into(),
                                categories: match &c["categories"] {
                                    Value::Null => None,
                                    cats => Some(strings(cats, "categories")?),
                                },
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            _ => return Err(bad("schema")),
        };
        Ok(Prep {
            task,
            shape,
            scaling,
            target,
            names,
            schema,
        })
    }
}
