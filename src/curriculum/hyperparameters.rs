//! Lesson 14, hyper-parameter search. The learning rate and the weight decay are drawn at random, on a
//! log scale, for many short trials; each trial is judged on a validation split held out of the
//! training images, never on the test set, so that the test set stays an honest measure of the model
//! finally chosen. The reference lesson's setting: six hidden layers of 100 ReLU units (He init), SGD,
//! batch 100, on the first 500 training images of which the last 100 are the validation split; learning
//! rates 10^U(−6, −2) and weight decays 10^U(−8, −4).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::activation::Activation;
use crate::backend::Backend;
use crate::data::Prep;
use crate::error::Result;
use crate::init::Init;
use crate::mnist::{CLASSES, Mnist, PIXELS};
use crate::model::{Model, ModelSpec};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig, train};

/// Training images, the validation split included.
pub const IMAGES: usize = 500;
/// The last this many of them are the validation split.
pub const VALIDATION: usize = 100;
/// The range of log₁₀ of the learning rate.
pub const LOG_LR: (f64, f64) = (-6.0, -2.0);
/// The range of log₁₀ of the weight decay.
pub const LOG_DECAY: (f64, f64) = (-8.0, -4.0);

/// One trial: its hyper-parameters and validation accuracy after each epoch.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Learning rate.
    pub lr: f32,
    /// Weight decay λ (L2).
    pub weight_decay: f32,
    /// Validation accuracy after each epoch.
    pub validation: Vec<f32>,
}

impl Trial {
    /// The last epoch's validation accuracy.
    pub fn accuracy(&self) -> f32 {
        self.validation.last().copied().unwrap_or(0.0)
    }
}

/// Runs `trials` trials of `epochs` epochs with hyper-parameters drawn from a generator seeded with
/// `seed`; returns them best first (by final validation accuracy).
pub fn search<B: Backend>(
    b: &B,
    mnist: &Mnist,
    trials: usize,
    epochs: usize,
    seed: u64,
) -> Result<Vec<Trial>> {
    let mut images = mnist.train.clone().truncated(IMAGES);
    let validation = DeviceSplit::upload(
        b,
        &images.split_off(IMAGES - VALIDATION),
        &Prep::mnist(true),
    )?;
    let training = DeviceSplit::upload(b, &images, &Prep::mnist(true))?;
    let spec = ModelSpec::mlp(PIXELS, &[100; 6], CLASSES, Activation::Relu);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut results = Vec::with_capacity(trials);
    for _ in 0..trials {
        let lr = 10f64.powf(rng.random_range(LOG_LR.0..LOG_LR.1)) as f32;
        let weight_decay = 10f64.powf(rng.random_range(LOG_DECAY.0..LOG_DECAY.1)) as f32;
        let mut optimizer = Optimizer::sgd(lr);
        optimizer.weight_decay = weight_decay;
        let config = TrainConfig {
            epochs,
            batch: 100,
            optimizer,
            schedule: LrSchedule::constant(),
            seed,
            max_steps: None,
            report_every: usize::MAX,
            patience: None,
        };
        let mut model = Model::new(b, spec.clone(), Init::He, seed, 0)?;
        let history = train(
            b,
            &mut model,
            &training,
            Some(&validation),
            &config,
            |_, _| {},
        )?;
        results.push(Trial {
            lr,
            weight_decay,
            validation: history.iter().filter_map(|e| e.test_accuracy).collect(),
        });
    }
    results.sort_by(|a, b| b.accuracy().total_cmp(&a.accuracy()));
    Ok(results)
}
