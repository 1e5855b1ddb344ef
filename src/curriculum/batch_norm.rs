//! Lesson 13, batch normalisation. A deep network's training stalls when its first weights are too
//! small (the signal fades layer by layer) or too large (it saturates or explodes). Normalising each
//! hidden layer's pre-activations by the batch's mean and variance, then scaling and shifting them by a
//! learnt γ and β, keeps every layer's input in range whatever the initial scale, so training starts at
//! once.
//!
//! The experiment: six hidden layers of 100 ReLU units, trained by SGD (lr 0.01, batch 100) on the first
//! 1 000 MNIST training images, from N(0, σ²) weights over a sweep of σ. Each σ trains twice from the
//! same weights: plain, and with a batch norm between every hidden dense layer and its activation. After
//! every epoch the training accuracy is measured by inference on the same 1 000 images (batch norm with
//! its running statistics).

use crate::activation::Activation;
use crate::backend::Backend;
use crate::data::Prep;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::mnist::{CLASSES, Mnist, PIXELS};
use crate::model::{MlpOptions, Model, ModelSpec};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig};

/// Training images.
pub const TRAIN_IMAGES: usize = 1000;
/// The initial weights' standard deviations swept.
pub const SCALES: [f32; 6] = [1.0, 0.3, 0.1, 0.03, 0.01, 0.001];
/// Hidden layers of 100 units.
pub const HIDDEN: [usize; 5] = [100; 5];

/// One training run: its training accuracy after each epoch, up to where it diverged, if it did.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// Training accuracy after each completed epoch.
    pub accuracy: Vec<f32>,
    /// The epoch in which the loss became NaN or infinite, ending the run.
    pub diverged_in: Option<usize>,
}

impl Curve {
    /// The accuracy after `epoch` (from 1); 0 past a divergence, when the network no longer computes
    /// anything.
    pub fn at(&self, epoch: usize) -> f32 {
        match self.accuracy.get(epoch - 1) {
            Some(&a) => a,
            None if self.diverged_in.is_some() => 0.0,
            None => f32::NAN,
        }
    }
}

/// Training without and with batch normalisation, from the same weights.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The initial weights' σ.
    pub scale: f32,
    /// Without batch normalisation.
    pub plain: Curve,
    /// With batch normalisation.
    pub normalised: Curve,
}

/// The network, with or without batch normalisation.
pub fn spec(batch_norm: bool) -> ModelSpec {
    let options = MlpOptions {
        dropout: 0.0,
        batch_norm,
    };
    ModelSpec::mlp_with(PIXELS, &HIDDEN, CLASSES, Activation::Relu, options)
}

/// Trains both networks from weights drawn from N(0, `scale`²) for `epochs` epochs.
pub fn compare<B: Backend>(b: &B, mnist: &Mnist, scale: f32, epochs: usize) -> Result<Comparison> {
    let set = DeviceSplit::upload(
        b,
        &mnist.train.clone().truncated(TRAIN_IMAGES),
        &Prep::mnist(true),
    )?;
    let run = |batch_norm: bool| -> Result<Curve> {
        let config = TrainConfig {
            epochs,
            batch: 100,
            optimizer: Optimizer::sgd(0.01),
            schedule: LrSchedule::constant(),
            seed: 42,
            max_steps: None,
            report_every: usize::MAX,
            patience: None,
        };
        // Batch norm draws no weights, so both models get the same dense weights from the same seed.
        let mut model = Model::new(b, spec(batch_norm), Init::Normal(scale), 42, 0)?;
        let (trained, accuracy) =
            super::train_watching_accuracy(b, &mut model, &set, None, &config);
        // Too large a scale makes the plain network's activations overflow: that is a result here.
        let diverged_in = match trained {
            Ok(_) => None,
            Err(Error::Diverged { epoch, .. }) => Some(epoch),
            Err(e) => return Err(e),
        };
        Ok(Curve {
            accuracy,
            diverged_in,
        })
    };
    Ok(Comparison {
        scale,
        plain: run(false)?,
        normalised: run(true)?,
    })
}
