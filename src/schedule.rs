//! Learning-rate schedules: the factor the base learning rate is multiplied by at each step.
//!
//! Every schedule may begin with a linear warm-up: over the first `warmup` steps the factor also rises
//! as `t / warmup`, so that the large early gradients of a fresh network meet a small rate.

use std::f64::consts::PI;

use crate::error::{Error, Result};

/// How the learning rate changes over a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `decayᵉ⁻¹` in epoch e (from 1); a decay of 1 keeps the rate constant.
    Exponential {
        /// Factor per epoch, in (0, 1].
        decay: f32,
    },
    /// `factor^⌊(e - 1)/every⌋`: the rate is multiplied by `factor` every `every` epochs.
    Step {
        /// Epochs between drops, at least 1.
        every: usize,
        /// Factor per drop, in (0, 1].
        factor: f32,
    },
    /// Cosine annealing over the whole run, `floor + (1 - floor)·½(1 + cos(π·(t - 1)/T))` at step t
    /// (from 1) of T: from 1 at the first step down towards `floor` at the last.
    Cosine {
        /// The factor the rate anneals towards, in [0, 1).
        floor: f32,
    },
}

/// A schedule with its warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// The shape of the schedule.
    pub schedule: Schedule,
    /// Steps of linear warm-up (0 for none).
    pub warmup: usize,
}

impl LrSchedule {
    /// A constant rate, no warm-up.
    pub fn constant() -> Self {
        LrSchedule {
            schedule: Schedule::Exponential { decay: 1.0 },
            warmup: 0,
        }
    }

    /// Reads `constant`, `exp:DECAY`, `step:EVERY:FACTOR` or `cosine[:FLOOR]` (the CLI's `--schedule`).
    pub fn parse(text: &str, warmup: usize) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "schedule `{text}`: expected constant, exp:DECAY, step:EVERY:FACTOR or cosine[:FLOOR]"
            ))
        };
        let parts: Vec<&str> = text.split(':').collect();
        let number = |s: &str| s.parse::<f32>().map_err(|_| bad());
        let schedule = match parts[..] {
            ["constant"] => Schedule::Exponential { decay: 1.0 },
            ["exp", decay] => Schedule::Exponential {
                decay: number(decay)?,
            },
            ["step", every, factor] => Schedule::Step {
                every: every.parse().map_err(|_| bad())?,
                factor: number(factor)?,
            },
            ["cosine"] => Schedule::Cosine { floor: 0.0 },
            ["cosine", floor] => Schedule::Cosine {
                floor: number(floor)?,
            },
            _ => return Err(bad()),
        };
        let parsed = LrSchedule { schedule, warmup };
        parsed.validate()?;
        Ok(parsed)
    }

    /// Checks the schedule's parameters, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let unit = |x: f32| x > 0.0 && x <= 1.0;
        let problem = match self.schedule {
            Schedule::Exponential { decay } if !unit(decay) => {
                Some(format!("decay {decay} must be in (0, 1]"))
            }
            Schedule::Step { every: 0, .. } => {
                Some("a step schedule's interval must be at least 1 epoch".into())
            }
            Schedule::Step { factor, .. } if !unit(factor) => {
                Some(format!("step factor {factor} must be in (0, 1]"))
            }
            Schedule::Cosine { floor } if !(0.0..1.0).contains(&floor) => {
                Some(format!("cosine floor {floor} must be in [0, 1)"))
            }
            _ => None,
        };
        match problem {
            Some(p) => Err(Error::Invalid(format!("learning-rate schedule: {p}"))),
            None => Ok(()),
        }
    }

    /// The factor at step `t` (from 1) of `total`, in epoch `epoch` (from 1).
    pub fn factor(&self, t: usize, total: usize, epoch: usize) -> f32 {
        let shape = match self.schedule {
            Schedule::Exponential { decay } => decay.powi(epoch as i32 - 1),
            Schedule::Step { every, factor } => factor.powi(((epoch - 1) / every) as i32),
            Schedule::Cosine { floor } => {
                let progress = (t - 1) as f64 / total.max(1) as f64;
                let cosine = 0.5 * (1.0 + (PI * progress).cos());
                (f64::from(floor) + (1.0 - f64::from(floor)) * cosine) as f32
            }
        };
        if t < self.warmup {
            shape * t as f32 / self.warmup as f32
        } else {
            shape
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schedule_gives_its_factors() {
        let exp = LrSchedule::parse("exp:0.5", 0).unwrap();
        assert_eq!([1, 2, 3].map(|e| exp.factor(1, 10, e)), [1.0, 0.5, 0.25]);
        let step = LrSchedule::parse("step:2:0.1", 0).unwrap();
        let by_epoch = [1, 2, 3, 4, 5].map(|e| step.factor(1, 10, e));
        assert_eq!(by_epoch, [1.0, 1.0, 0.1, 0.1, 0.1f32.powi(2)]);
        let cosine = LrSchedule::parse("cosine:0.1", 0).unwrap();
        assert_eq!(cosine.factor(1, 100, 1), 1.0);
        assert!((cosine.factor(51, 100, 1) - 0.55).abs() < 1e-6);
        assert!((cosine.factor(100, 100, 1) - 0.1).abs() < 1e-3);
        assert_eq!(LrSchedule::constant().factor(77, 100, 9), 1.0);
    }

    #[test]
    fn warm_up_rises_linearly_then_hands_over() {
        let s = LrSchedule::parse("constant", 4).unwrap();
        assert_eq!(
            [1, 2, 3, 4, 5].map(|t| s.factor(t, 100, 1)),
            [0.25, 0.5, 0.75, 1.0, 1.0]
        );
    }

    #[test]
    fn bad_schedules_are_refused_by_name() {
        for bad in [
            "exp:0",
            "exp:1.5",
            "step:0:0.5",
            "step:2:2",
            "cosine:1",
            "cosine:-0.1",
            "linear",
            "exp",
            "exp:x",
        ] {
            assert!(LrSchedule::parse(bad, 0).is_err(), "{bad}");
        }
        let err = LrSchedule::parse("exp:1.5", 0).unwrap_err().to_string();
        assert!(err.contains("decay 1.5"), "{err}");
    }
}
