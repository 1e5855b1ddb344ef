//! Optimizers: hyper-parameters and the per-step constants their update kernels take.
//!
//! The update rules (`g` the gradient, `p` the parameter, `wd` the weight decay):
//! - L2 weight decay (every optimizer but AdamW) first adds `wd·p` to `g`;
//! - SGD: `p -= lr·g`;
//! - momentum: `b = μ·b + g`, `p -= lr·b` (Nesterov: `p -= lr·(g + μ·b)`);
//! - AdaGrad: `h += g²`, `p -= lr·g / (√h + ε)`;
//! - RMSprop: `h = ρ·h + (1-ρ)·g²`, `p -= lr·g / (√h + ε)`;
//! - Adam: `m = β₁m + (1-β₁)g`, `v = β₂v + (1-β₂)g²`, `p -= lr·m̂ / (√v̂ + ε)` with the bias corrections
//!   `m̂ = m / (1-β₁ᵗ)`, `v̂ = v / (1-β₂ᵗ)`;
//! - AdamW: Adam on the raw gradient, plus the decoupled decay `p -= lr·wd·p`.

use crate::error::{Error, Result};

/// Which update rule, with its rule-specific constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// Plain stochastic gradient descent.
    Sgd,
    /// Heavy-ball momentum μ, optionally Nesterov's look-ahead form.
    Momentum {
        /// The momentum coefficient μ (typically 0.9).
        momentum: f32,
        /// Use Nesterov's accelerated gradient.
        nesterov: bool,
    },
    /// AdaGrad: per-parameter step sizes from the sum of squared gradients.
    AdaGrad,
    /// RMSprop: AdaGrad with an exponentially decaying average (decay ρ).
    RmsProp {
        /// The decay ρ of the squared-gradient average (typically 0.99).
        decay: f32,
    },
    /// Adam with moment decays β₁, β₂.
    Adam {
        /// First-moment decay (typically 0.9).
        beta1: f32,
        /// Second-moment decay (typically 0.999).
        beta2: f32,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// First-moment decay (typically 0.9).
        beta1: f32,
        /// Second-moment decay (typically 0.999).
        beta2: f32,
    },
}

/// An optimizer: the rule plus learning rate, ε and weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub lr: f32,
    /// ε in the adaptive rules' denominators.
    pub eps: f32,
    /// Weight decay (L2 for all but AdamW, where it is decoupled).
    pub weight_decay: f32,
    /// Clip the gradients by their global norm to at most this before each update (`--clip-norm`),
    /// as Keras's `clipnorm` or PyTorch's `clip_grad_norm_`.
    pub clip_norm: Option<f32>,
}

impl Optimizer {
    /// An optimizer of `kind` with learning rate `lr`, ε = 1e-8 and no weight decay.
    pub fn new(kind: OptimizerKind, lr: f32) -> Self {
        Optimizer {
            kind,
            lr,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: None,
        }
    }

    /// Plain SGD at learning rate `lr`.
    pub fn sgd(lr: f32) -> Self {
        Self::new(OptimizerKind::Sgd, lr)
    }

    /// Adam with the usual β₁ = 0.9, β₂ = 0.999.
    pub fn adam(lr: f32) -> Self {
        Self::new(
            OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            lr,
        )
    }

    /// How many state tensors of the parameter's size the rule keeps (0, 1 or 2).
    pub fn state_count(&self) -> usize {
        match self.kind {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Momentum { .. }
            | OptimizerKind::AdaGrad
            | OptimizerKind::RmsProp { .. } => 1,
            OptimizerKind::Adam { .. } | OptimizerKind::AdamW { .. } => 2,
        }
    }

    /// Checks the hyper-parameters are finite and in range; the error names the first one that is not
    /// (as the CLI spells it), its valid range and the value given.
    pub fn validate(&self) -> Result<()> {
        let positive = |x: f32| x.is_finite() && x > 0.0;
        let non_negative = |x: f32| x.is_finite() && x >= 0.0;
        let in_unit = |x: f32| (0.0..1.0).contains(&x);
        let mut checks = vec![
            (
                "learning rate (--lr)",
                self.lr,
                positive(self.lr),
                "finite and > 0",
            ),
            ("ε", self.eps, non_negative(self.eps), "finite and ≥ 0"),
            (
                "weight decay (--weight-decay)",
                self.weight_decay,
                non_negative(self.weight_decay),
                "finite and ≥ 0",
            ),
        ];
        if let Some(clip) = self.clip_norm {
            checks.push((
                "gradient clip (--clip-norm)",
                clip,
                positive(clip),
                "finite and > 0",
            ));
        }
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::AdaGrad => {}
            OptimizerKind::Momentum { momentum, .. } => {
                checks.push(("momentum", momentum, in_unit(momentum), "in [0, 1)"));
            }
            OptimizerKind::RmsProp { decay } => {
                checks.push(("RMSprop decay", decay, in_unit(decay), "in [0, 1)"));
            }
            OptimizerKind::Adam { beta1, beta2 } | OptimizerKind::AdamW { beta1, beta2 } => {
                checks.push(("β₁", beta1, in_unit(beta1), "in [0, 1)"));
                checks.push(("β₂", beta2, in_unit(beta2), "in [0, 1)"));
            }
        }
        match checks.into_iter().find(|check| !check.2) {
            None => Ok(()),
            Some((name, value, _, range)) => Err(Error::Invalid(format!(
                "{name} is {value}; it must be {range}"
            ))),
        }
    }

    /// The constants of update number `t` (counted from 1), as the kernels take them.
    pub fn step(&self, t: u64) -> OptimStep {
        let (code, h1, h2, nesterov) = match self.kind {
            OptimizerKind::Sgd => (0, 0.0, 0.0, false),
            OptimizerKind::Momentum { momentum, nesterov } => (1, momentum, 0.0, nesterov),
            OptimizerKind::AdaGrad => (2, 0.0, 0.0, false),
            OptimizerKind::RmsProp { decay } => (3, decay, 0.0, false),
            OptimizerKind::Adam { beta1, beta2 } => (4, beta1, beta2, false),
            OptimizerKind::AdamW { beta1, beta2 } => (5, beta1, beta2, false),
        };
        let t = t.max(1) as i32;
        let correction = |beta: f32| {
            if beta > 0.0 {
                1.0 / (1.0 - (beta as f64).powi(t)) as f32
            } else {
                1.0
            }
        };
        OptimStep {
            code,
            nesterov,
            lr: self.lr,
            h1,
            h2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            c1: correction(h1),
            c2: correction(h2),
            clip_norm: self.clip_norm,
        }
    }
}

/// One update's constants: what [`crate::Backend::optimizer_step`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimStep {
    /// Rule code: 0 SGD, 1 momentum, 2 AdaGrad, 3 RMSprop, 4 Adam, 5 AdamW (as in `optim.wgsl`).
    pub code: u32,
    /// Nesterov's form of momentum.
    pub nesterov: bool,
    /// Learning rate.
    pub lr: f32,
    /// μ, ρ or β₁.
    pub h1: f32,
    /// β₂.
    pub h2: f32,
    /// ε.
    pub eps: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// Adam's first-moment bias correction `1 / (1 - β₁ᵗ)`.
    pub c1: f32,
    /// Adam's second-moment bias correction `1 / (1 - β₂ᵗ)`.
    pub c2: f32,
    /// The global norm the gradients are clipped to first, if any ([`clip_factor`]).
    pub clip_norm: Option<f32>,
}

impl OptimStep {
    /// Applies the update to one parameter `p` with gradient `g` and state `s1`, `s2` (the CPU reference).
    #[inline(always)]
    pub fn apply(&self, p: &mut f32, g: f32, s1: &mut f32, s2: &mut f32) {
        let decoupled = self.code == 5;
        let g = if decoupled {
            g
        } else {
            g + self.weight_decay * *p
        };
        match self.code {
            0 => *p -= self.lr * g,
            1 => {
                *s1 = self.h1 * *s1 + g;
                let d = if self.nesterov {
                    g + self.h1 * *s1
                } else {
                    *s1
                };
                *p -= self.lr * d;
            }
            2 => {
                *s1 += g * g;
                *p -= self.lr * g / (s1.sqrt() + self.eps);
            }
            3 => {
                *s1 = self.h1 * *s1 + (1.0 - self.h1) * g * g;
                *p -= self.lr * g / (s1.sqrt() + self.eps);
            }
            _ => {
                if decoupled {
                    *p -= self.lr * self.weight_decay * *p;
                }
                *s1 = self.h1 * *s1 + (1.0 - self.h1) * g;
                *s2 = self.h2 * *s2 + (1.0 - self.h2) * g * g;
                *p -= self.lr * (*s1 * self.c1) / ((*s2 * self.c2).sqrt() + self.eps);
            }
        }
    }
}

/// The factor clipping by global norm multiplies every gradient by: `min(1, max_norm/‖g‖)` with
/// `‖g‖ = √squares`, the norm over every parameter's gradient (NaN stays NaN, for the trainer to catch).
pub fn clip_factor(max_norm: f32, squares: f32) -> f32 {
    let norm = squares.sqrt();
    if norm > max_norm {
        max_norm / norm
    } else {
        1.0
    }
}
