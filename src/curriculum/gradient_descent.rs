//! Numerical differentiation and gradient descent on the lesson's functions.
//!
//! - `f(x) = 0.01x² + 0.1x` has `f'(x) = 0.02x + 0.1`: 0.2 at 5 and 0.3 at 10. The central difference
//!   with h = 1e-4 recovers both to about 1e-9 (in f64).
//! - `f(x₀, x₁) = x₀² + x₁²` has gradient `(2x₀, 2x₁)`, pointing away from its minimum at the origin.
//!   Gradient descent `x ← x - lr·∇f(x)` from (-3, 4) with lr 0.1 multiplies x by 0.8 every step, so
//!   after 100 steps x is 0.8¹⁰⁰ ≈ 2e-10 of its starting distance from the minimum: (≈ -6e-10, ≈ 8e-10). With lr 10 every step
//!   multiplies x by -19 until x is so large that x ± h rounds to x, the numerical gradient
//!   becomes 0 and x stays stranded far away (about 1e13); with lr 1e-10 it stays where it started.

use crate::numerical::derivative;

/// The step h the lesson uses for central differences.
pub const H: f64 = 1e-4;

/// `0.01x² + 0.1x`.
pub fn f1(x: f64) -> f64 {
    0.01 * x * x + 0.1 * x
}

/// `x₀² + x₁²`.
pub fn f2(x: [f64; 2]) -> f64 {
    x[0] * x[0] + x[1] * x[1]
}

/// `f1'(x)` by central difference with step [`H`].
pub fn numerical_slope(x: f64) -> f64 {
    derivative(f1, x, H)
}

/// The numerical gradient of [`f2`] at `x`: one central difference per coordinate.
pub fn numerical_gradient(x: [f64; 2]) -> [f64; 2] {
    [
        derivative(|v| f2([v, x[1]]), x[0], H),
        derivative(|v| f2([x[0], v]), x[1], H),
    ]
}

/// Gradient descent on [`f2`] from `start` with learning rate `lr` for `steps` steps, each gradient
/// taken numerically; returns every point visited, `start` first.
pub fn descend(start: [f64; 2], lr: f64, steps: usize) -> Vec<[f64; 2]> {
    let mut path = vec![start];
    let mut x = start;
    for _ in 0..steps {
        let g = numerical_gradient(x);
        x = [x[0] - lr * g[0], x[1] - lr * g[1]];
        path.push(x);
    }
    path
}
