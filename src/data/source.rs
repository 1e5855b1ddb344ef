//! Opening a data set by its path: the source is chosen from what the path is, the targets put in the
//! task's form, and the test part taken from the source's own split, from `--test FILE`, or held out
//! at random with a seed.

use std::path::{Path, PathBuf};

use super::prep::{Column, Schema, Task};
use super::{Dataset, Targets, csv, folder, idx, npy};
use crate::error::{Error, Result};

/// How to open a set.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// CSV: the columns to predict. NPY: the file of targets (`y`).
    pub targets: Vec<String>,
    /// The task, when not inferred from the targets.
    pub task: Option<Task>,
    /// A separate test set in the same format (else the source's own, else a random part).
    pub test: Option<PathBuf>,
    /// The fraction held out for testing when the source has no test split.
    pub test_fraction: f64,
    /// Seeds the random test split.
    pub seed: u64,
    /// Tables only: read the inputs by these columns (a saved model's), in their order and with their
    /// categories, whatever the file's own order.
    pub columns: Option<Vec<Column>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            targets: Vec::new(),
            task: None,
            test: None,
            test_fraction: 0.2,
            seed: 42,
            columns: None,
        }
    }
}

/// A set opened for training: its training and test parts, what the inputs are, and the task.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The training part.
    pub train: Dataset,
    /// The test part.
    pub test: Dataset,
    /// Where the inputs came from.
    pub schema: Schema,
    /// What the model learns.
    pub task: Task,
    /// Where the test part came from, for the run's banner.
    pub test_from: String,
}

/// One file or directory read whole: the set, its schema, and its own test part if the source has one.
/// A table is read by `columns` where given.
fn read(
    path: &Path,
    opts: &LoadOptions,
    columns: Option<&[Column]>,
) -> Result<(Dataset, Option<Dataset>, Schema)> {
    if path.is_dir() {
        if idx::is_idx_dir(path) {
            let (train, test) = idx::load_dir(path)?;
            return Ok((train, Some(test), Schema::Images));
        }
        let (train, test) = folder::load(path)?;
        return Ok((train, test, Schema::Images));
    }
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    if csv::is_csv(path) {
        if let Some(columns) = columns {
            let set = csv::load_by_columns(path, &opts.targets, columns)?;
            return Ok((set, None, Schema::Table(columns.to_vec())));
        }
        let (set, columns) = csv::load(path, &opts.targets)?;
        return Ok((set, None, Schema::Table(columns)));
    }
    if npy::is_npy(path) {
        let (train, test, bytes) = npy::load(path, &opts.targets)?;
        let schema = if bytes { Schema::Images } else { Schema::Array };
        return Ok((train, test, schema));
    }
    Err(Error::Data {
        path: path.to_path_buf(),
        reason:
            "nabla reads CSV tables (.csv, .csv.gz), NumPy arrays (.npy, .npz), a directory of \
                 IDX files (MNIST's format) or a directory of class folders of PNG images"
                .into(),
    })
}

/// `test`'s class labels renumbered to `names` (the training part's classes): the same class names,
/// or a subset of them.
fn align_classes(test: Dataset, names: &[String], path: &Path) -> Result<Dataset> {
    let Targets::Classes {
        labels,
        names: test_names,
    } = &test.targets
    else {
        return Ok(test);
    };
    if test_names == names {
        return Ok(test);
    }
    let map =
        test_names
            .iter()
            .map(|n| {
                names.iter().position(|m| m == n).map(|i| i as u32).ok_or_else(|| Error::Data {
                path: path.to_path_buf(),
                reason: format!(
                    "the test part has class `{n}`, which the training part lacks (it has: {})",
                    names.join(", ")
                ),
            })
            })
            .collect::<Result<Vec<u32>>>()?;
    let labels = labels.iter().map(|&l| map[l as usize]).collect();
    Dataset::new(
        test.shape,
        test.features,
        Targets::Classes {
            labels,
            names: names.to_vec(),
        },
    )
}

/// The set at `path`, split into training and test parts, with its targets in the task's form.
pub fn open(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    let (set, own_test, schema) = read(path, opts, opts.columns.as_deref())?;
    let task = match opts.task {
        Some(t) => t,
        None => Task::infer(&set.targets)?,
    };
    let in_form = |s: Dataset, p: &Path| -> Result<Dataset> {
        let targets = match task.convert(s.targets) {
            // Classes read as numbers for a regression keep the column's name.
            Ok(Targets::Values { values, names })
                if names.len() == 1 && opts.targets.len() == 1 =>
            {
                let names = match schema {
                    Schema::Table(_) => opts.targets.clone(),
                    _ => names,
                };
                Targets::Values { values, names }
            }
            Ok(t) => t,
            Err(e) => {
                return Err(Error::Data {
                    path: p.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        Dataset::new(s.shape, s.features, targets)
    };
    let (train, test, test_from) = match (&opts.test, own_test) {
        (Some(test_path), _) => {
            // A test table is encoded by the training table's columns.
            let columns = match &schema {
                Schema::Table(columns) => Some(columns.as_slice()),
                _ => None,
            };
            let (test, _, test_schema) = read(test_path, opts, columns)?;
            if test_schema != schema {
                return Err(Error::Data {
                    path: test_path.clone(),
                    reason: "the test set's columns (or their categories) differ from the \
                             training set's"
                        .into(),
                });
            }
            (set, test, format!("{}", test_path.display()))
        }
        (None, Some(test)) => (set, test, "the source's own test split".to_string()),
        (None, None) => {
            let (train, test) = set.split_fraction(opts.test_fraction, opts.seed)?;
            (
                train,
                test,
                format!(
                    "{:.0}% held out at random (seed {})",
                    opts.test_fraction * 100.0,
                    opts.seed
                ),
            )
        }
    };
    let train = in_form(train, path)?;
    task.check_classes(&train.targets)
        .map_err(|e| Error::Data {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let test_path = opts.test.as_deref().unwrap_or(path);
    let test = align_classes(in_form(test, test_path)?, train.targets.names(), test_path)?;
    if test.shape != train.shape {
        return Err(Error::Data {
            path: test_path.to_path_buf(),
            reason: format!(
                "test samples are {} but training samples are {}",
                test.shape, train.shape
            ),
        });
    }
    if let (Targets::Values { names: a, .. }, Targets::Values { names: b, .. }) =
        (&train.targets, &test.targets)
        && a.len() != b.len()
    {
        return Err(Error::Data {
            path: test_path.to_path_buf(),
            reason: format!(
                "{} targets where the training part has {}",
                b.len(),
                a.len()
            ),
        });
    }
    Ok(Loaded {
        train,
        test,
        schema,
        task,
        test_from,
    })
}
