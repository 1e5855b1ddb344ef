//! Weight initialisation: weights drawn from N(0, σ²) with σ fixed or set by the layer's fan-in.

use rand::Rng;

/// How a dense layer's weights are drawn (biases start at zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, σ²) with the given σ (the curriculum's first nets use σ = 0.01).
    Normal(f32),
    /// Xavier/Glorot: σ = √(1/fan_in), suited to sigmoid and tanh.
    Xavier,
    /// He/Kaiming: σ = √(2/fan_in), suited to ReLU.
    He,
}

impl Init {
    /// The standard deviation for a layer with `fan_in` inputs.
    pub fn std(self, fan_in: usize) -> f32 {
        match self {
            Init::Normal(s) => s,
            Init::Xavier => (1.0 / fan_in as f32).sqrt(),
            Init::He => (2.0 / fan_in as f32).sqrt(),
        }
    }

    /// `n` weights for a layer with `fan_in` inputs.
    pub fn sample(self, rng: &mut impl Rng, fan_in: usize, n: usize) -> Vec<f32> {
        let std = self.std(fan_in);
        (0..n).map(|_| std * standard_normal(rng)).collect()
    }
}

/// One draw from N(0, 1) by the Box–Muller transform.
pub fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1], so ln is finite
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
