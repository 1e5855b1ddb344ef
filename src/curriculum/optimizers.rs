//! Lesson 11, optimizers: four update rules on one hard function, f(x, y) = x²/20 + y², from (−7, 2).
//! Its valley is twenty times flatter along x than along y, so plain gradient descent zig-zags across
//! the steep direction while crawling along the flat one; momentum, AdaGrad and Adam each cope in their
//! own way. The rates are the reference lesson's: SGD 0.95, momentum 0.1 (μ = 0.9), AdaGrad 1.5,
//! Adam 0.3 (β₁ = 0.9, β₂ = 0.999).
//!
//! Every step runs the backend's own optimizer kernel on the two parameters (x, y), with the exact
//! gradient `∇f = (x/10, 2y)` computed on the host: the same updates that train the networks.

use crate::backend::Backend;
use crate::error::Result;
use crate::optim::{Optimizer, OptimizerKind};

/// The starting point.
pub const START: [f32; 2] = [-7.0, 2.0];
/// Steps taken by each optimizer.
pub const STEPS: usize = 30;

/// f(x, y) = x²/20 + y².
pub fn f(p: [f32; 2]) -> f32 {
    p[0] * p[0] / 20.0 + p[1] * p[1]
}

/// ∇f = (x/10, 2y).
pub fn gradient(p: [f32; 2]) -> [f32; 2] {
    [p[0] / 10.0, 2.0 * p[1]]
}

/// The four optimizers with the lesson's rates, by name.
pub fn optimizers() -> [(&'static str, Optimizer); 4] {
    [
        ("SGD", Optimizer::sgd(0.95)),
        (
            "Momentum",
            Optimizer::new(
                OptimizerKind::Momentum {
                    momentum: 0.9,
                    nesterov: false,
                },
                0.1,
            ),
        ),
        ("AdaGrad", Optimizer::new(OptimizerKind::AdaGrad, 1.5)),
        ("Adam", Optimizer::adam(0.3)),
    ]
}

/// The path of `optimizer` from [`START`]: the start and the point after each of `steps` updates.
pub fn path<B: Backend>(b: &B, optimizer: Optimizer, steps: usize) -> Result<Vec<[f32; 2]>> {
    optimizer.validate()?;
    let mut p = b.tensor(1, 2, &START)?;
    let mut g = b.zeros(1, 2)?;
    let (mut s1, mut s2) = (b.zeros(1, 2)?, b.zeros(1, 2)?);
    let mut points = vec![START];
    for t in 1..=steps as u64 {
        let here = *points.last().expect("starts with START");
        b.write(&mut g, &gradient(here))?;
        b.optimizer_step(&optimizer.step(t), &mut p, &g, &mut s1, &mut s2)?;
        let next = b.read(&p)?;
        points.push([next[0], next[1]]);
    }
    Ok(points)
}
