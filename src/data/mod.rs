//! Data sets: what training, evaluation, `predict`, `bench`, checkpoints and the browser page share.
//!
//! A [`Dataset`] is `N` samples of one input [`Shape`] (features as image bytes or as floats) and their
//! [`Targets`] (class labels, or real values to regress). Sources read files into one: IDX files of any
//! image size ([`idx`]), CSV tables ([`csv`]), NumPy arrays ([`npy`]) and folders of PNG images
//! ([`folder`]); [`open`] picks the source from the path. [`prep`] fits the preprocessing on the training
//! part only and records it, so a saved model is fed the same way later; [`metrics`] scores predictions.

pub mod csv;
pub mod folder;
pub mod idx;
pub mod metrics;
pub mod npy;
pub mod prep;
pub mod source;

pub use prep::{Prep, Scaling, Schema, Task};
pub use source::{LoadOptions, Loaded, open};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::layers::Shape;

/// The most classes a classification target may have: more is almost always a regression target or an
/// identifier column read as a label (`--task regression`, or pick another `--target`).
pub const MAX_CLASSES: usize = 10_000;

/// The label of a sample with no class (a regression set's samples): never a prediction, so it counts
/// no hit, and a classification loss over it is NaN.
pub const NO_LABEL: u32 = u32::MAX;

/// Every sample's input, row-major `[N, F]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Bytes 0–255 (images), scaled to inputs as [`Scaling::Bytes`] says when a batch is gathered.
    Bytes(Vec<u8>),
    /// Floats (tables, float arrays).
    Floats(Vec<f32>),
}

impl Features {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Features::Bytes(v) => v.len(),
            Features::Floats(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `rows` (of `width` values each), in that order, as a new set of the same kind.
    fn rows(&self, width: usize, rows: &[usize]) -> Features {
        fn pick<T: Copy>(v: &[T], width: usize, rows: &[usize]) -> Vec<T> {
            let mut out = Vec::with_capacity(rows.len() * width);
            for &r in rows {
                out.extend_from_slice(&v[r * width..(r + 1) * width]);
            }
            out
        }
        match self {
            Features::Bytes(v) => Features::Bytes(pick(v, width, rows)),
            Features::Floats(v) => Features::Floats(pick(v, width, rows)),
        }
    }
}

/// What is predicted for every sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class per sample, an index into `names`.
    Classes {
        /// Labels, each `< names.len()`.
        labels: Vec<u32>,
        /// The classes' names (a folder's name, a CSV category, a digit).
        names: Vec<String>,
    },
    /// `names.len()` real values per sample, row-major.
    Values {
        /// `[N, T]` values.
        values: Vec<f32>,
        /// The target columns' names.
        names: Vec<String>,
    },
}

impl Targets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, names } => values.len() / names.len().max(1),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class or target names.
    pub fn names(&self) -> &[String] {
        match self {
            Targets::Classes { names, .. } | Targets::Values { names, .. } => names,
        }
    }

    fn rows(&self, rows: &[usize]) -> Targets {
        match self {
            Targets::Classes { labels, names } => Targets::Classes {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                names: names.clone(),
            },
            Targets::Values { values, names } => {
                let t = names.len();
                let mut out = Vec::with_capacity(rows.len() * t);
                for &r in rows {
                    out.extend_from_slice(&values[r * t..(r + 1) * t]);
                }
                Targets::Values {
                    values: out,
                    names: names.clone(),
                }
            }
        }
    }
}

/// `N` samples: inputs of one shape and what to predict from them.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// One sample's input (flat features, or a C×H×W image).
    pub shape: Shape,
    /// Every sample's input, `[N, shape.len()]`.
    pub features: Features,
    /// Every sample's target.
    pub targets: Targets,
}

impl Dataset {
    /// A set, checked: the features fill `N` samples of `shape`, and every label names a class.
    pub fn new(shape: Shape, features: Features, targets: Targets) -> Result<Self> {
        let width = shape.len();
        let n = targets.len();
        if width == 0 || n.checked_mul(width) != Some(features.len()) {
            return Err(Error::shape(format!(
                "{} feature values are not {n} samples of {shape}",
                features.len()
            )));
        }
        if let Targets::Classes { labels, names } = &targets
            && let Some(l) = labels.iter().find(|&&l| l as usize >= names.len())
        {
            return Err(Error::Invalid(format!(
                "label {l} names no class of {}",
                names.len()
            )));
        }
        if let Targets::Values { values, names } = &targets
            && (names.is_empty() || !values.len().is_multiple_of(names.len()))
        {
            return Err(Error::shape(format!(
                "{} target values are not whole rows of {} targets",
                values.len(),
                names.len()
            )));
        }
        Ok(Dataset {
            shape,
            features,
            targets,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when the set has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per sample.
    pub fn width(&self) -> usize {
        self.shape.len()
    }

    /// The samples at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        Dataset {
            shape: self.shape,
            features: self.features.rows(self.width(), rows),
            targets: self.targets.rows(rows),
        }
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn truncated(&self, n: usize) -> Dataset {
        let rows: Vec<usize> = (0..n.min(self.len())).collect();
        self.select(&rows)
    }

    /// The set cut in two at `at`: the samples before it and those from it on.
    pub fn split_at(&self, at: usize) -> (Dataset, Dataset) {
        let at = at.min(self.len());
        let head: Vec<usize> = (0..at).collect();
        let tail: Vec<usize> = (at..self.len()).collect();
        (self.select(&head), self.select(&tail))
    }

    /// A seeded random split: `fraction` of the samples (rounded, at least 1 and at most all but one)
    /// go to the second set, the rest, in their shuffled order, to the first. The same seed always
    /// gives the same split.
    pub fn split_fraction(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::Invalid(format!(
                "a test fraction of {fraction} must lie strictly between 0 and 1"
            )));
        }
        if self.len() < 2 {
            return Err(Error::Invalid(format!(
                "{} sample(s) cannot be split into a training and a test part",
                self.len()
            )));
        }
        let held = ((self.len() as f64 * fraction).round() as usize).clamp(1, self.len() - 1);
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (train, test) = order.split_at(self.len() - held);
        Ok((self.select(train), self.select(test)))
    }

    /// Labels per class, for classification sets.
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let Targets::Classes { labels, names } = &self.targets else {
            return None;
        };
        let mut counts = vec![0; names.len()];
        for &l in labels {
            counts[l as usize] += 1;
        }
        Some(counts)
    }
}
