//! Lesson 10, logistic regression: the course's first model. One sigmoid neuron, `ŷ = σ(x·w + b)`, tells
//! one digit from all the others. Its cost is the mean binary cross-entropy
//! `J = -(1/m) Σ [t log ŷ + (1 - t) log(1 - ŷ)]`, whose gradients are `dJ/dw = Xᵀ(ŷ - t)/m` and
//! `dJ/db = Σ(ŷ - t)/m`; full-batch gradient descent takes `w -= α·dJ/dw`, `b -= α·dJ/db` over the
//! whole training matrix at once, vectorised: one product forward, one back, per step.
//!
//! It trains on the first [`TRAIN_IMAGES`] training images (the whole matrix in one tensor, which keeps
//! it inside every adapter's binding limit) and is tested on all 10 000 test images, where a
//! prediction is positive when `ŷ > ½`, that is `x·w + b > 0`.

use crate::backend::{Backend, Epilogue};
use crate::error::Result;
use crate::mnist::{Mnist, PIXELS, Split};

/// Training images in the design matrix.
pub const TRAIN_IMAGES: usize = 10_000;

/// What a run of the lesson found.
#[derive(Clone, Debug)]
pub struct Run {
    /// `(step, cost)` at the first step (ln 2, from zero weights), every `report_every` steps and at the
    /// last.
    pub costs: Vec<(usize, f32)>,
    /// Accuracy on the training images.
    pub train_accuracy: f32,
    /// Accuracy on the 10 000 test images.
    pub test_accuracy: f32,
    /// The share of test images that are not the digit: what always answering "no" scores.
    pub test_base_rate: f32,
}

/// Images as a `[rows, 784]` matrix in [0, 1], and targets `t = [label = digit]` as `[rows, 1]`.
fn design<B: Backend>(b: &B, split: &Split, digit: u8) -> Result<(B::Tensor, B::Tensor)> {
    let x: Vec<f32> = split.images.iter().map(|&p| f32::from(p) / 255.0).collect();
    let t: Vec<f32> = split
        .labels
        .iter()
        .map(|&l| f32::from(l == digit))
        .collect();
    Ok((
        b.tensor(split.len(), PIXELS, &x)?,
        b.tensor(split.len(), 1, &t)?,
    ))
}

/// Share of rows where `z > 0` agrees with `t = 1`.
fn accuracy<B: Backend>(
    b: &B,
    x: &B::Tensor,
    t: &B::Tensor,
    w: &B::Tensor,
    bias: &B::Tensor,
) -> Result<f32> {
    let targets = b.read(t)?;
    let mut z = b.zeros(targets.len(), 1)?;
    b.matmul(x, false, w, false, Epilogue::bias(bias), &mut z)?;
    let right = b
        .read(&z)?
        .iter()
        .zip(&targets)
        .filter(|(z, t)| (**z > 0.0) == (**t > 0.5))
        .count();
    Ok(right as f32 / targets.len().max(1) as f32)
}

/// Trains the neuron to tell `digit` from the rest by `steps` steps of full-batch gradient descent at
/// rate `lr`, from zero weights, recording the cost every `report_every` steps.
pub fn train<B: Backend>(
    b: &B,
    mnist: &Mnist,
    digit: u8,
    steps: usize,
    lr: f32,
    report_every: usize,
) -> Result<Run> {
    let (x, t) = design(b, &mnist.train.clone().truncated(TRAIN_IMAGES), digit)?;
    let rows = TRAIN_IMAGES.min(mnist.train.len());
    let (mut w, mut bias) = (b.zeros(PIXELS, 1)?, b.zeros(1, 1)?);
    let (mut dw, mut db) = (b.zeros(PIXELS, 1)?, b.zeros(1, 1)?);
    let (mut z, mut dz, mut cost) = (b.zeros(rows, 1)?, b.zeros(rows, 1)?, b.zeros(1, 1)?);
    let mut costs = Vec::new();
    for step in 1..=steps {
        // Forward: z = X·w + b; the loss op gives J and dJ/dz = (σ(z) - t)/m.
        b.matmul(&x, false, &w, false, Epilogue::bias(&bias), &mut z)?;
        b.sigmoid_binary_cross_entropy(&z, &t, &mut dz, &mut cost)?;
        // Backward: dJ/dw = Xᵀ·dz, dJ/db = Σ dz; then the descent step.
        b.matmul(&x, true, &dz, false, Epilogue::none(), &mut dw)?;
        b.bias_grad(&dz, &mut db)?;
        b.axpy(-lr, &dw, &mut w)?;
        b.axpy(-lr, &db, &mut bias)?;
        b.submit();
        if step == 1 || step % report_every.max(1) == 0 || step == steps {
            costs.push((step, b.read(&cost)?[0]));
        }
    }
    let (test_x, test_t) = design(b, &mnist.test, digit)?;
    let negatives = mnist.test.labels.iter().filter(|&&l| l != digit).count();
    Ok(Run {
        costs,
        train_accuracy: accuracy(b, &x, &t, &w, &bias)?,
        test_accuracy: accuracy(b, &test_x, &test_t, &w, &bias)?,
        test_base_rate: negatives as f32 / mnist.test.len().max(1) as f32,
    })
}
