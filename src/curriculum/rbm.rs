//! Lesson 22: restricted Boltzmann machines and deep belief networks. An RBM trained on MNIST without
//! labels learns strokes: each hidden unit's weights become a piece of a digit, its reconstructions
//! and the samples of its Gibbs chains look like handwriting. Its hidden probabilities are features a
//! linear classifier reads better than raw pixels. A stack of RBMs trained one after another
//! pre-trains a deep sigmoid network, which backprop then fine-tunes further than the same network
//! from random weights.

use super::tables::fit;
use crate::backend::Backend;
use crate::data::prep::Schema;
use crate::data::{Dataset, Features, Loaded, Prep, Targets, Task};
use crate::error::Result;
use crate::init::Init;
use crate::layers::Shape;
use crate::mnist::{Mnist, Split};
use crate::model::{Model, ModelSpec};
use crate::optim::{Optimizer, OptimizerKind};
use crate::rbm::stack::initialise;
use crate::rbm::train::{RbmConfig, RbmEpoch, feed_chunks, train_rbm};
use crate::rbm::{Rbm, RbmValues};
use crate::schedule::LrSchedule;
use crate::train::{Batch, DeviceSplit, EpochStats, TrainConfig, train};

/// What an RBM learnt from MNIST, for the lesson's pictures.
pub struct Strokes {
    /// Every epoch's figures.
    pub history: Vec<RbmEpoch>,
    /// The first 100 hidden units' weights (784 each) after the first epoch.
    pub filters_first: Vec<Vec<f32>>,
    /// The same units' weights after the last epoch.
    pub filters_last: Vec<Vec<f32>>,
    /// Ten test digits, then their mean-field reconstructions `σ(σ(vWᵀ + c)W + b)`.
    pub reconstructions: [Vec<Vec<f32>>; 2],
    /// Ten Gibbs chains started at those test digits: the visible probabilities after each count of
    /// steps in [`CHAIN_SNAPSHOTS`], one row of ten per count.
    pub samples: Vec<Vec<Vec<f32>>>,
    /// The trained RBM.
    pub values: RbmValues,
}

/// The Gibbs steps after which [`Strokes::samples`] shows the chains.
pub const CHAIN_SNAPSHOTS: [usize; 4] = [1, 10, 100, 1000];

fn split_set<B: Backend>(b: &B, split: &Split) -> Result<DeviceSplit<B>> {
    DeviceSplit::upload(b, split, &Prep::mnist(true))
}

fn rows(values: &[f32], width: usize, count: usize) -> Vec<Vec<f32>> {
    values
        .chunks(width)
        .take(count)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Trains a 784–`hidden` RBM on `data` by Hinton's guide ([`RbmConfig::default`], `epochs` epochs),
/// watching the test set, and collects the lesson's pictures.
pub fn learn_strokes<B: Backend>(
    b: &B,
    data: &Mnist,
    hidden: usize,
    epochs: usize,
    seed: u64,
) -> Result<Strokes> {
    let (train_set, test_set) = (split_set(b, &data.train)?, split_set(b, &data.test)?);
    let mut values = RbmValues::initial(784, hidden, seed)?;
    values.set_visible_bias_from_means(&crate::rbm::stack::means(b, &[], &train_set)?)?;
    let mut rbm = Rbm::from_values(b, &values)?;
    let config = RbmConfig {
        epochs,
        seed,
        ..RbmConfig::default()
    };
    let mut after_first = None;
    let history = train_rbm(
        b,
        &mut rbm,
        &[],
        &train_set,
        Some(&test_set),
        &config,
        |e, r| {
            if e.epoch == 1 {
                after_first = Some(r.read(b));
            }
        },
    )?;
    let filters_first = match after_first.transpose()? {
        Some(values) => rows(&values.weight, 784, 100),
        None => Vec::new(),
    };
    let values = rbm.read(b)?;
    let mut batch = Batch::new(b, &test_set, 10)?;
    batch.gather(b, &test_set, &b.indices(&(0..10).collect::<Vec<u32>>())?, 0)?;
    let (mut ph, mut pv) = (b.zeros(10, hidden)?, b.zeros(10, 784)?);
    rbm.hidden_probs(b, &batch.x, &mut ph)?;
    rbm.visible_probs(b, &ph, &mut pv)?;
    let originals = rows(&b.read(&batch.x)?, 784, 10);
    let reconstructed = rows(&b.read(&pv)?, 784, 10);
    let samples = rbm
        .gibbs_chain(b, &batch.x, &CHAIN_SNAPSHOTS, seed)?
        .iter()
        .map(|s| rows(s, 784, 10))
        .collect();
    Ok(Strokes {
        history,
        filters_first,
        filters_last: rows(&values.weight, 784, 100),
        reconstructions: [originals, reconstructed],
        samples,
        values,
    })
}

/// Every sample of `set` carried up through `stack` (its hidden probabilities at the top; the inputs
/// themselves for an empty stack), `[len, width]` row-major on the host.
pub fn features<B: Backend>(b: &B, stack: &[Rbm<B>], set: &DeviceSplit<B>) -> Result<Vec<f32>> {
    let width = stack.last().map_or(set.width, |r| r.hidden());
    let mut out = Vec::with_capacity(set.len * width);
    feed_chunks(b, stack, set, set.len, |x| {
        out.extend(b.read(x)?);
        Ok(())
    })?;
    Ok(out)
}

/// Test accuracy of logistic regression (`dense 10`, softmax; Adam 1e-3, batch 100, `epochs` epochs)
/// on features `[n, width]` of the training and test images, their labels from `data`.
pub fn logistic_regression<B: Backend>(
    b: &B,
    data: &Mnist,
    features: [Vec<f32>; 2],
    width: usize,
    epochs: usize,
) -> Result<f32> {
    let [train_x, test_x] = features;
    let part = |x: Vec<f32>, split: &Split| {
        Dataset::new(
            Shape::flat(width),
            Features::Floats(x),
            Targets::Classes {
                labels: split.labels.iter().map(|&l| u32::from(l)).collect(),
                names: (0..10).map(|d| d.to_string()).collect(),
            },
        )
    };
    let loaded = Loaded {
        train: part(train_x, &data.train)?,
        test: part(test_x, &data.test)?,
        schema: Schema::Array,
        task: Task::Classify,
        test_from: "MNIST's test set".into(),
    };
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer: Optimizer::adam(1e-3),
        schedule: LrSchedule::parse("constant", 0)?,
        seed: 1,
        max_steps: None,
        report_every: 1000,
        patience: None,
    };
    let fitted = fit(b, &loaded, "dense 10", Init::Xavier, &config, false)?;
    Ok(fitted
        .history
        .last()
        .and_then(|e| e.test_accuracy)
        .unwrap_or(f32::NAN))
}

/// The deep sigmoid network `784 → hidden… → 10`: dropout on the pixels with probability
/// `input_dropout`, a sigmoid after each hidden dense layer, then dropout with probability `dropout`
/// (each only where it is above 0).
pub fn deep_sigmoid_spec(hidden: &[usize], input_dropout: f32, dropout: f32) -> Result<ModelSpec> {
    let mut layers: Vec<String> = Vec::new();
    if input_dropout > 0.0 {
        layers.push(format!("dropout {input_dropout}"));
    }
    layers.extend(hidden.iter().map(|h| {
        if dropout > 0.0 {
            format!("dense {h}, sigmoid, dropout {dropout}")
        } else {
            format!("dense {h}, sigmoid")
        }
    }));
    layers.push("dense 10".into());
    ModelSpec::parse(&format!("input 784, {}", layers.join(", ")))
}

/// How [`fine_tune`] trains: SGD with momentum 0.9 at rate `lr` annealed by a cosine, batch 100, and
/// dropout on the input and after every hidden layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FineTuning {
    /// Epochs.
    pub epochs: usize,
    /// The initial learning rate.
    pub lr: f32,
    /// Dropout probability on the pixels (0: none).
    pub input_dropout: f32,
    /// Dropout probability after each hidden sigmoid (0: none).
    pub dropout: f32,
}

/// Fine-tunes the deep sigmoid network of `hidden` on `data` by backprop, its hidden layers started
/// from `stack` (pre-trained) or drawn by Xavier's rule (`None`), as `how` says. Returns every epoch's
/// figures.
pub fn fine_tune<B: Backend>(
    b: &B,
    data: &Mnist,
    hidden: &[usize],
    stack: Option<&[RbmValues]>,
    how: FineTuning,
    mut observe: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    let FineTuning {
        epochs,
        lr,
        input_dropout,
        dropout,
    } = how;
    let optimizer = Optimizer::new(
        OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        lr,
    );
    let mut model = Model::new(
        b,
        deep_sigmoid_spec(hidden, input_dropout, dropout)?,
        Init::Xavier,
        7,
        optimizer.state_count(),
    )?;
    if let Some(stack) = stack {
        initialise(b, stack, &mut model)?;
    }
    let (train_set, test_set) = (split_set(b, &data.train)?, split_set(b, &data.test)?);
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer,
        schedule: LrSchedule::parse("cosine", 0)?,
        seed: 7,
        max_steps: None,
        report_every: 1000,
        patience: None,
    };
    train(
        b,
        &mut model,
        &train_set,
        Some(&test_set),
        &config,
        |event, _| {
            if let crate::train::Event::Epoch(e) = event {
                observe(e);
            }
        },
    )
}
