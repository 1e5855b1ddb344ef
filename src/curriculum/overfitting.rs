//! Lesson 9, overfitting and two cures. A deep network trained on very little data learns it by heart:
//! seven layers (six hidden layers of 100 ReLU units, He init) trained by SGD (lr 0.01, batch 100) on
//! the first 300 MNIST training images reach nearly 100% training accuracy while the test accuracy stays
//! far lower. Weight decay (an L2 penalty ½λ‖W‖² on every parameter, λ = 0.1, so `g += λW`) and dropout
//! (p = 0.15 after every hidden activation) each narrow that gap.
//!
//! After every epoch both accuracies are measured by inference (dropout off): on the 300 training images
//! and on the first 1 000 test images, which keeps each epoch's evaluation short; the gap between them is
//! the lesson's point, not a benchmark.

use crate::activation::Activation;
use crate::backend::Backend;
use crate::data::Prep;
use crate::error::Result;
use crate::init::Init;
use crate::mnist::{CLASSES, Mnist, PIXELS};
use crate::model::{MlpOptions, Model, ModelSpec};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig};

/// Training images: few enough to memorise.
pub const TRAIN_IMAGES: usize = 300;
/// Test images evaluated after every epoch.
pub const TEST_IMAGES: usize = 1000;

/// One way of training the network.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// How the lesson names it.
    pub name: &'static str,
    /// λ of the L2 penalty (0 for none).
    pub weight_decay: f32,
    /// Drop probability after every hidden activation (0 for none).
    pub dropout: f32,
}

/// The network as it overfits, and with each cure.
pub const VARIANTS: [Variant; 3] = [
    Variant {
        name: "no regularisation",
        weight_decay: 0.0,
        dropout: 0.0,
    },
    Variant {
        name: "weight decay 0.1",
        weight_decay: 0.1,
        dropout: 0.0,
    },
    Variant {
        name: "dropout 0.15",
        weight_decay: 0.0,
        dropout: 0.15,
    },
];

/// Accuracy on the training images and on the test images after each epoch.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    /// Training accuracy after each epoch.
    pub train: Vec<f32>,
    /// Test accuracy after each epoch.
    pub test: Vec<f32>,
}

impl Curves {
    /// Training accuracy minus test accuracy after the last epoch: how much was learnt by heart.
    pub fn final_gap(&self) -> f32 {
        match (self.train.last(), self.test.last()) {
            (Some(train), Some(test)) => train - test,
            _ => f32::NAN,
        }
    }
}

/// Trains `variant` for `epochs` epochs from the same seeded initialisation and measures both
/// accuracies after every epoch.
pub fn run<B: Backend>(b: &B, mnist: &Mnist, variant: Variant, epochs: usize) -> Result<Curves> {
    let spec = ModelSpec::mlp_with(
        PIXELS,
        &[100; 6],
        CLASSES,
        Activation::Relu,
        MlpOptions {
            dropout: variant.dropout,
            batch_norm: false,
        },
    );
    let mut optimizer = Optimizer::sgd(0.01);
    optimizer.weight_decay = variant.weight_decay;
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer,
        schedule: LrSchedule::constant(),
        seed: 42,
        max_steps: None,
        report_every: usize::MAX,
        patience: None,
    };
    let train_set = DeviceSplit::upload(
        b,
        &mnist.train.clone().truncated(TRAIN_IMAGES),
        &Prep::mnist(true),
    )?;
    let test_set = DeviceSplit::upload(
        b,
        &mnist.test.clone().truncated(TEST_IMAGES),
        &Prep::mnist(true),
    )?;
    let mut model = Model::new(b, spec, Init::He, 42, optimizer.state_count())?;
    let (history, train_accuracy) =
        super::train_watching_accuracy(b, &mut model, &train_set, Some(&test_set), &config);
    let history = history?;
    Ok(Curves {
        train: train_accuracy,
        test: history.iter().filter_map(|s| s.test_accuracy).collect(),
    })
}
