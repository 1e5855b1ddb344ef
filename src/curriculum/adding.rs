//! Why LSTM: the adding problem (Hochreiter & Schmidhuber, 1997). Each sample is a sequence of `T`
//! steps of two features, a random value in [0, 1] and a marker that is 1 at two steps (one in each
//! half) and 0 elsewhere; the target is the sum of the two marked values. Answering 1 whatever the
//! sequence scores the target's variance, 2/12 ≈ 0.167 mean squared error. A network must carry the
//! first marked value across up to `T` steps: through a tanh RNN's repeated products the gradient that
//! would teach it shrinks geometrically and the RNN stays at that baseline, while the LSTM's and the
//! GRU's additive, gated state keeps it alive and they learn the sum.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tables::{fit, table};
use crate::backend::Backend;
use crate::data::prep::Schema;
use crate::data::{Loaded, Task};
use crate::error::Result;
use crate::init::Init;
use crate::optim::{Optimizer, OptimizerKind};
use crate::recurrent::Cell;
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig};

/// The mean squared error of always answering 1, the mean target: the variance of the sum of two
/// independent U(0, 1) values.
pub const BASELINE_MSE: f64 = 2.0 / 12.0;

/// `n` sequences of `steps` steps (`[n, steps·2]`: value, marker per step) and their targets.
pub fn sequences(n: usize, steps: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * steps * 2);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let first = rng.random_range(0..steps / 2);
        let second = rng.random_range(steps / 2..steps);
        let mut sum = 0.0;
        for t in 0..steps {
            let value: f32 = rng.random_range(0.0..1.0);
            let marked = t == first || t == second;
            if marked {
                sum += value;
            }
            x.extend([value, f32::from(u8::from(marked))]);
        }
        y.push(sum);
    }
    (x, y)
}

/// One cell's run on the adding problem.
pub struct AddingRun {
    /// The cell.
    pub cell: Cell,
    /// The test set's mean squared error after each epoch.
    pub test_mse: Vec<f64>,
    /// After training, the mean over test sequences of `‖∂L/∂x_t‖` at each step `t`: how much the
    /// loss still learns from what the sequence held `T − t` steps before its end.
    pub gradient_norms: Vec<f64>,
}

impl AddingRun {
    /// The last epoch's test error.
    pub fn final_mse(&self) -> f64 {
        self.test_mse.last().copied().unwrap_or(f64::NAN)
    }
}

/// Trains `cell` with `units` units (then `dense 1`) on `train` sequences of `steps` steps for
/// `epochs` epochs (Adam, rate 0.01 on a cosine schedule, batch 50, gradients clipped to norm 1) and
/// scores it on 1 000 fresh sequences.
pub fn train_cell<B: Backend>(
    b: &B,
    cell: Cell,
    units: usize,
    steps: usize,
    train: usize,
    epochs: usize,
    seed: u64,
) -> Result<AddingRun> {
    let data = loaded(steps, train, 1000, seed)?;
    let mut optimizer = Optimizer::new(
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
        },
        0.01,
    );
    optimizer.clip_norm = Some(1.0);
    let config = TrainConfig {
        epochs,
        batch: 50,
        optimizer,
        schedule: LrSchedule::parse("cosine", 0)?,
        seed,
        max_steps: None,
        report_every: 1000,
        patience: None,
    };
    let layers = format!("{} {units} steps {steps}, dense 1", cell.name());
    let mut fitted = fit(b, &data, &layers, Init::He, &config, false)?;
    // The loss is half the squared error, in the targets' own units (no standardisation).
    let test_mse = fitted
        .history
        .iter()
        .map(|e| 2.0 * f64::from(e.test_loss.unwrap_or(f32::NAN)))
        .collect();
    let test = DeviceSplit::from_dataset(b, data.test.clone(), &fitted.prep)?;
    let gradient_norms = step_gradients(b, &mut fitted.model, &test, steps)?;
    Ok(AddingRun {
        cell,
        test_mse,
        gradient_norms,
    })
}

/// The adding problem as a loaded table: `train` and `test` sequences of `steps` steps.
fn loaded(steps: usize, train: usize, test: usize, seed: u64) -> Result<Loaded> {
    let part = |n, seed| {
        let (x, y) = sequences(n, steps, seed);
        table(x, steps * 2, y, &["sum"])
    };
    Ok(Loaded {
        train: part(train, seed)?,
        test: part(test, seed + 1)?,
        schema: Schema::Array,
        task: Task::Regress,
        test_from: "generated".into(),
    })
}

/// The mean over `set`'s first 500 sequences of `‖∂L/∂x_t‖` at every step.
fn step_gradients<B: Backend>(
    b: &B,
    model: &mut crate::model::Model<B>,
    set: &DeviceSplit<B>,
    steps: usize,
) -> Result<Vec<f64>> {
    let rows = set.len.min(500);
    let mut batch = crate::train::Batch::new(b, set, rows)?;
    let order = b.indices(&(0..rows as u32).collect::<Vec<_>>())?;
    batch.gather(b, set, &order, 0)?;
    let mut ws = model.workspace(b, rows)?;
    model.forward_train(b, &batch.x, &mut ws, 0, 1)?;
    let mut dx = b.zeros(rows, steps * 2)?;
    let truth = batch.truth(model.task)?;
    model.backward_to_input(b, &batch.x, truth, &mut ws, &mut dx)?;
    let dx = b.read(&dx)?;
    let mut norms = vec![0.0f64; steps];
    for sample in dx.chunks_exact(steps * 2) {
        for (t, pair) in sample.chunks_exact(2).enumerate() {
            norms[t] += f64::from(pair[0]).hypot(f64::from(pair[1]));
        }
    }
    // The loss is the batch's mean, so each row of dx is 1/rows of its sequence's own gradient: the
    // sums are the means of those.
    Ok(norms)
}

/// Whether a run learnt the sum: its test error is under a tenth of the baseline's.
pub fn learnt(run: &AddingRun) -> bool {
    run.final_mse() < BASELINE_MSE / 10.0
}
