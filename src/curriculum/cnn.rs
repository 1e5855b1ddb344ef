//! Lessons 16 and 17, convolutional networks: the book's SimpleConvNet trained on MNIST, its curves,
//! and the 30 filters of its first layer before and after training (random noise becomes edge and blob
//! detectors).

use crate::backend::{Backend, Shaped};
use crate::data::Prep;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::mnist::Split;
use crate::model::{Model, ModelSpec, presets};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, EpochStats, TrainConfig, train};

/// SimpleConvNet: conv 30×5×5, ReLU, 2×2 max pooling, dense 100, ReLU, dense 10.
pub fn spec() -> ModelSpec {
    ModelSpec::parse(presets::SIMPLE_CNN).expect("the preset parses")
}

/// SimpleConvNet with weights drawn by `init` from `seed`, and room for Adam's state. The filters
/// lesson starts from the book's N(0, 0.01²), small enough that what training adds stands out; He's
/// larger start trains as well but keeps more of its noise.
pub fn simple_conv_net<B: Backend>(b: &B, init: Init, seed: u64) -> Result<Model<B>> {
    Model::new(b, spec(), init, seed, 2)
}

/// Trains `model` on `train` for `epochs` epochs (Adam, lr 1e-3, batch 100), evaluating on `test`
/// after each: the history, one row per epoch.
pub fn train_on_mnist<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    train_split: &Split,
    test: &Split,
    epochs: usize,
) -> Result<Vec<EpochStats>> {
    let input = Prep::mnist(true);
    let set = DeviceSplit::upload(b, train_split, &input)?;
    let test = DeviceSplit::upload(b, test, &input)?;
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer: Optimizer::adam(1e-3),
        schedule: LrSchedule::constant(),
        seed: 42,
        max_steps: None,
        report_every: usize::MAX,
        patience: None,
    };
    train(b, model, &set, Some(&test), &config, |_, _| {})
}

/// The first layer's filters, one `KH·KW` tile per filter (its only input channel).
pub fn first_filters<B: Backend>(b: &B, model: &Model<B>) -> Result<Vec<Vec<f32>>> {
    let first = model
        .layers
        .first()
        .and_then(|l| l.params().first().map(|p| &p.value));
    let weight =
        first.ok_or_else(|| Error::Invalid("the model has no first-layer weights".into()))?;
    let filters = weight.rows();
    let values = b.read(weight)?;
    Ok(values
        .chunks(values.len() / filters.max(1))
        .map(<[f32]>::to_vec)
        .collect())
}
