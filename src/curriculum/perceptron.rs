//! Perceptrons: `y = step(w·x + b)`, run as a 4×2 by 2×1 matmul whose epilogue adds the bias and applies
//! the step function, on whichever backend is given.
//!
//! AND, NAND and OR are single perceptrons with hand-set weights. XOR is not linearly separable, so no
//! single perceptron computes it (shown two ways below), but two layers do: `XOR = AND(NAND, OR)`.

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue};
use crate::error::Result;

/// The four inputs of a two-input truth table, in the order 00, 10, 01, 11.
pub const INPUTS: [[f32; 2]; 4] = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];

/// XOR's truth table, in the order of [`INPUTS`].
pub const XOR_TABLE: [f32; 4] = [0.0, 1.0, 1.0, 0.0];

/// A two-input perceptron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perceptron {
    /// The weights w₁, w₂.
    pub weights: [f32; 2],
    /// The bias b (minus the firing threshold).
    pub bias: f32,
}

/// AND: fires only when both inputs do (0.5·1 + 0.5·1 - 0.7 > 0).
pub const AND: Perceptron = Perceptron {
    weights: [0.5, 0.5],
    bias: -0.7,
};

/// NAND: AND with every sign flipped.
pub const NAND: Perceptron = Perceptron {
    weights: [-0.5, -0.5],
    bias: 0.7,
};

/// OR: fires when either input does.
pub const OR: Perceptron = Perceptron {
    weights: [0.5, 0.5],
    bias: -0.2,
};

impl Perceptron {
    /// The output for one input, computed on the host (for the learning rule).
    pub fn fire(&self, x: [f32; 2]) -> f32 {
        let z = self.weights[0] * x[0] + self.weights[1] * x[1] + self.bias;
        if z > 0.0 { 1.0 } else { 0.0 }
    }

    /// The truth table over [`INPUTS`], computed on `b` by one fused matmul + bias + step.
    pub fn truth_table<B: Backend>(&self, b: &B) -> Result<[f32; 4]> {
        layer(b, &inputs(b)?, &[*self]).map(|t| [t[0], t[1], t[2], t[3]])
    }
}

fn inputs<B: Backend>(b: &B) -> Result<B::Tensor> {
    b.tensor(4, 2, INPUTS.as_flattened())
}

/// Runs perceptrons side by side on the rows of `x` (`[rows, 2]`): output column j is perceptron j.
fn layer<B: Backend>(b: &B, x: &B::Tensor, units: &[Perceptron]) -> Result<Vec<f32>> {
    let n = units.len();
    let mut w = vec![0.0; 2 * n];
    for (j, u) in units.iter().enumerate() {
        w[j] = u.weights[0];
        w[n + j] = u.weights[1];
    }
    let bias: Vec<f32> = units.iter().map(|u| u.bias).collect();
    let (w, bias) = (b.tensor(2, n, &w)?, b.tensor(1, n, &bias)?);
    let mut y = b.zeros(4, n)?;
    let epilogue = Epilogue::forward(Some(&bias), Activation::Step);
    b.matmul(x, false, &w, false, epilogue, &mut y)?;
    b.read(&y)
}

/// XOR as a two-layer perceptron: layer 1 computes NAND and OR side by side, layer 2 ANDs them.
pub fn xor<B: Backend>(b: &B) -> Result<[f32; 4]> {
    let hidden = layer(b, &inputs(b)?, &[NAND, OR])?;
    let out = layer(b, &b.tensor(4, 2, &hidden)?, &[AND])?;
    Ok([out[0], out[1], out[2], out[3]])
}

/// The perceptron learning rule (Rosenblatt): for every sample, `w += lr·(t - y)·x` and `b += lr·(t - y)`,
/// for `epochs` passes from zero weights. Returns the perceptron and the errors of its last pass.
pub fn learn(targets: [f32; 4], epochs: usize, lr: f32) -> (Perceptron, usize) {
    let mut p = Perceptron {
        weights: [0.0; 2],
        bias: 0.0,
    };
    let mut errors = 0;
    for _ in 0..epochs {
        errors = 0;
        for (x, t) in INPUTS.iter().zip(targets) {
            let err = t - p.fire(*x);
            if err != 0.0 {
                errors += 1;
                p.weights[0] += lr * err * x[0];
                p.weights[1] += lr * err * x[1];
                p.bias += lr * err;
            }
        }
    }
    (p, errors)
}

/// Tries every perceptron with w₁, w₂, b on the grid `{k/divisions : −divisions ≤ k ≤ divisions}` over
/// [-1, 1] and returns how many compute `targets` exactly, and how many were tried. The grid is built
/// from integers and each perceptron fires when `k₁·x₁ + k₂·x₂ + k_b > 0`, exactly (the inputs are 0
/// or 1), so no rounding decides a perceptron on the boundary. For XOR the first is 0 at any grid: no
/// line separates (1,0) and (0,1) from (0,0) and (1,1).
pub fn count_separating(targets: [f32; 4], divisions: i32) -> (usize, usize) {
    let grid = || -divisions..=divisions;
    let mut count = 0;
    for k1 in grid() {
        for k2 in grid() {
            for kb in grid() {
                let computes = INPUTS.iter().zip(targets).all(|(x, t)| {
                    let z = k1 * x[0] as i32 + k2 * x[1] as i32 + kb;
                    f32::from(u8::from(z > 0)) == t
                });
                count += usize::from(computes);
            }
        }
    }
    let side = (2 * divisions + 1) as usize;
    (count, side * side * side)
}
