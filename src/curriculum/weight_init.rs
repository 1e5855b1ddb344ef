//! Lesson 12, weight initialisation: how the spread of the first weights shapes the activations deep in a
//! network. A thousand random inputs (each feature N(0, 1)) pass through five layers of 100 units
//! without biases, `a = f(x·W)`, and the histogram of each layer's activations shows:
//!
//! - N(0, 1) weights with sigmoid: the sums are large, so activations pile up at 0 and 1, where σ' ≈ 0
//!   and gradients vanish;
//! - N(0, 0.01²) with sigmoid: the sums are tiny, so every activation sits near ½ and the units all say
//!   the same thing (the layer's width is wasted);
//! - Xavier (σ = √(1/n)) with sigmoid: the activations stay spread out, layer after layer;
//! - He (σ = √(2/n)) with ReLU: half of the activations are 0 and the rest keep their spread.
//!
//! Each layer runs as one product with the activation in its epilogue, on whichever backend is given.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue};
use crate::error::Result;
use crate::init::Init;

/// Units per layer.
pub const WIDTH: usize = 100;
/// Layers.
pub const LAYERS: usize = 5;
/// Random inputs.
pub const SAMPLES: usize = 1000;

/// A way to initialise the network, with the activation it is paired with.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// How the lesson names it.
    pub name: &'static str,
    /// How the weights are drawn.
    pub init: Init,
    /// Every layer's activation.
    pub activation: Activation,
}

/// The four settings of the lesson.
pub const SETTINGS: [Setting; 4] = [
    Setting {
        name: "N(0, 1), sigmoid",
        init: Init::Normal(1.0),
        activation: Activation::Sigmoid,
    },
    Setting {
        name: "N(0, 0.01²), sigmoid",
        init: Init::Normal(0.01),
        activation: Activation::Sigmoid,
    },
    Setting {
        name: "Xavier, sigmoid",
        init: Init::Xavier,
        activation: Activation::Sigmoid,
    },
    Setting {
        name: "He, ReLU",
        init: Init::He,
        activation: Activation::Relu,
    },
];

/// Every layer's activations (`SAMPLES·WIDTH` values each, first layer first) for `setting`, from the
/// same seeded inputs.
pub fn activations<B: Backend>(b: &B, setting: Setting, seed: u64) -> Result<Vec<Vec<f32>>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let input = Init::Normal(1.0).sample(&mut rng, WIDTH, SAMPLES * WIDTH);
    let mut x = b.tensor(SAMPLES, WIDTH, &input)?;
    let mut layers = Vec::with_capacity(LAYERS);
    for _ in 0..LAYERS {
        let w = b.tensor(
            WIDTH,
            WIDTH,
            &setting.init.sample(&mut rng, WIDTH, WIDTH * WIDTH),
        )?;
        let mut a = b.zeros(SAMPLES, WIDTH)?;
        b.matmul(
            &x,
            false,
            &w,
            false,
            Epilogue::forward(None, setting.activation),
            &mut a,
        )?;
        layers.push(b.read(&a)?);
        x = a;
    }
    Ok(layers)
}

/// Counts of `values` in `bins` equal bins over `[low, high]` (values outside are clamped into the
/// end bins).
pub fn histogram(values: &[f32], bins: usize, low: f32, high: f32) -> Vec<usize> {
    let mut counts = vec![0; bins];
    for &v in values {
        let at = ((v - low) / (high - low) * bins as f32).floor();
        counts[(at.max(0.0) as usize).min(bins - 1)] += 1;
    }
    counts
}

/// The share of `values` within `margin` of 0 or of 1: sigmoid units whose gradient has all but vanished.
pub fn saturated(values: &[f32], margin: f32) -> f32 {
    let n = values
        .iter()
        .filter(|&&v| v < margin || v > 1.0 - margin)
        .count();
    n as f32 / values.len().max(1) as f32
}

/// The standard deviation of `values`.
pub fn spread(values: &[f32]) -> f32 {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() as f32
}
