//! Training-loss curves on MNIST, for the lessons that compare ways of training on real data: four
//! optimizers (lesson 11) and three weight initialisations (lesson 12) on the reference lessons'
//! network, four hidden layers of 100 ReLU units, trained for a fixed number of steps in batches of 128.

use crate::activation::Activation;
use crate::backend::Backend;
use crate::error::Result;
use crate::init::Init;
use crate::mnist::{CLASSES, PIXELS};
use crate::model::{Model, ModelSpec};
use crate::optim::{Optimizer, OptimizerKind};
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, Event, TrainConfig, train};

/// Samples per step.
pub const BATCH: usize = 128;
/// Steps between two points of a curve: each point is the mean loss of these steps.
pub const WINDOW: usize = 10;

/// The network compared: 784-100-100-100-100-10 ReLU.
pub fn spec() -> ModelSpec {
    ModelSpec::mlp(PIXELS, &[100; 4], CLASSES, Activation::Relu)
}

/// The optimizers of lesson 11 on MNIST, with the reference lesson's rates.
pub fn optimizers() -> [(&'static str, Optimizer); 4] {
    let kind = |kind| Optimizer::new(kind, 0.01);
    [
        ("SGD", Optimizer::sgd(0.01)),
        (
            "momentum",
            kind(OptimizerKind::Momentum {
                momentum: 0.9,
                nesterov: false,
            }),
        ),
        ("AdaGrad", {
            let mut o = kind(OptimizerKind::AdaGrad);
            o.eps = 1e-7;
            o
        }),
        ("Adam", Optimizer::adam(0.001)),
    ]
}

/// The initialisations of lesson 12 on MNIST.
pub const INITS: [(&str, Init); 3] = [
    ("N(0, 0.01²)", Init::Normal(0.01)),
    ("Xavier", Init::Xavier),
    ("He", Init::He),
];

/// Trains [`spec`] on `set` from weights drawn by `init` (seed 42) with `optimizer` for `steps` steps,
/// and returns `(step, mean loss of the WINDOW steps up to it)`, every WINDOW steps.
pub fn loss_curve<B: Backend>(
    b: &B,
    set: &DeviceSplit<B>,
    init: Init,
    optimizer: Optimizer,
    steps: usize,
) -> Result<Vec<(usize, f32)>> {
    let steps_per_epoch = (set.len / BATCH).max(1);
    let config = TrainConfig {
        epochs: steps.div_ceil(steps_per_epoch),
        batch: BATCH,
        optimizer,
        schedule: LrSchedule::constant(),
        seed: 42,
        max_steps: Some(steps),
        report_every: WINDOW,
        patience: None,
    };
    let mut model = Model::new(b, spec(), init, 42, optimizer.state_count())?;
    let mut curve = Vec::new();
    // The previous report in this epoch: (steps, mean loss so far); the window's mean is the difference
    // of the running sums.
    let mut last = (0usize, 0.0f32);
    train(b, &mut model, set, None, &config, |event, _| {
        if let Event::Progress {
            epoch, step, loss, ..
        } = *event
        {
            if step < last.0 {
                last = (0, 0.0);
            }
            let sum = loss * step as f32 - last.1 * last.0 as f32;
            curve.push((
                (epoch - 1) * steps_per_epoch + step,
                sum / (step - last.0) as f32,
            ));
            last = (step, loss);
        }
    })?;
    Ok(curve)
}
