//! Training an RBM by contrastive divergence (CD-k) or persistent contrastive divergence (PCD-k), with
//! momentum and weight decay, and the figures that watch it: reconstruction error and free energy.
//!
//! One step on a mini-batch `v₀` of `N` rows (all products on the backend):
//!
//! - positive phase: `ph₀ = σ(v₀Wᵀ + c)`;
//! - negative phase, `k` Gibbs steps from `h ~ ph₀` (CD) or from the persistent chain's `h` (PCD):
//!   `pv = σ(hW + b)`, `v⁻ = pv` (CD: probabilities, the guide's choice against sampling noise) or
//!   `v⁻ ~ pv` (PCD: the chain must sample to be a Markov chain of the model), `ph⁻ = σ(v⁻Wᵀ + c)`,
//!   and `h ~ ph⁻` before the next step (PCD keeps the last `h` as its chain);
//! - the estimate of the mean negative log-likelihood's gradient, which the update descends:
//!   `∂W = (ph⁻ᵀv⁻ − ph₀ᵀv₀)/N`, `∂b = Σ(v⁻ − v₀)/N`, `∂c = Σ(ph⁻ − ph₀)/N`;
//! - the update, momentum μ and weight cost λ on `W` only: `Δ = μΔ + ∂ + λW`, `θ −= ε·Δ`
//!   ([`crate::optim`]'s momentum rule), μ = 0.5 for the first epochs, then 0.9.

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::Rbm;
use crate::backend::{Backend, Shaped};
use crate::dropout;
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerKind};
use crate::train::{Batch, DeviceSplit, check_batch};

/// How to train one RBM; [`RbmConfig::default`] is Hinton's practical guide for MNIST.
#[derive(Clone, Debug, PartialEq)]
pub struct RbmConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Mini-batch size (rows per step).
    pub batch: usize,
    /// Gibbs steps per update (the `k` of CD-k).
    pub k: usize,
    /// Persistent chains (PCD-k) instead of chains restarted at the data (CD-k).
    pub persistent: bool,
    /// Learning rate ε.
    pub lr: f32,
    /// Momentum for the first `momentum_switch` epochs, then `final_momentum`.
    pub initial_momentum: f32,
    /// Momentum after the switch.
    pub final_momentum: f32,
    /// Epochs run at the initial momentum.
    pub momentum_switch: usize,
    /// Weight cost λ (L2, on the weights only).
    pub weight_cost: f32,
    /// Seeds the shuffles and the Gibbs samples.
    pub seed: u64,
    /// Samples of each set the end-of-epoch figures are measured on (at most).
    pub monitor: usize,
}

impl Default for RbmConfig {
    fn default() -> Self {
        RbmConfig {
            epochs: 15,
            batch: 100,
            k: 1,
            persistent: false,
            lr: 0.1,
            initial_momentum: 0.5,
            final_momentum: 0.9,
            momentum_switch: 5,
            weight_cost: 2e-4,
            seed: 1,
            monitor: 10_000,
        }
    }
}

impl RbmConfig {
    /// Refuses settings that cannot train.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(what));
        if self.epochs == 0 || self.k == 0 {
            return bad(format!(
                "an RBM needs at least one epoch and one Gibbs step (got {} epochs, k = {})",
                self.epochs, self.k
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("the RBM learning rate {} must be above 0", self.lr));
        }
        for (name, m) in [
            ("initial momentum", self.initial_momentum),
            ("final momentum", self.final_momentum),
        ] {
            if !(0.0..1.0).contains(&m) {
                return bad(format!("the {name} {m} must be in [0, 1)"));
            }
        }
        if !(self.weight_cost.is_finite() && self.weight_cost >= 0.0) {
            return bad(format!(
                "the weight cost {} must be 0 or more",
                self.weight_cost
            ));
        }
        if self.monitor == 0 {
            return bad("an RBM is measured on at least 1 sample an epoch".into());
        }
        Ok(())
    }

    /// A one-line summary: `CD-1, lr 0.1, momentum 0.5→0.9 after 5 epochs, weight cost 0.0002, batch 100`.
    pub fn describe(&self) -> String {
        format!(
            "{}-{}, lr {}, momentum {}→{} after {} epochs, weight cost {}, batch {}",
            if self.persistent { "PCD" } else { "CD" },
            self.k,
            self.lr,
            self.initial_momentum,
            self.final_momentum,
            self.momentum_switch,
            self.weight_cost,
            self.batch
        )
    }
}

/// The gradient estimate of one step, as [`Cd::gradient`] leaves it.
pub struct RbmGrads<B: Backend> {
    /// `∂W` `[H, V]`.
    pub weight: B::Tensor,
    /// `∂b` `[1, V]`.
    pub visible_bias: B::Tensor,
    /// `∂c` `[1, H]`.
    pub hidden_bias: B::Tensor,
}

/// The buffers of CD-k / PCD-k for one RBM and a batch size: the chain, the gradient and the momentum.
pub struct Cd<B: Backend> {
    k: usize,
    persistent: bool,
    ph0: B::Tensor,
    h: B::Tensor,
    pv: B::Tensor,
    v_sample: B::Tensor,
    ph: B::Tensor,
    positive: B::Tensor,
    dv: B::Tensor,
    dh: B::Tensor,
    chain_started: bool,
    /// The last gradient estimate.
    pub grads: RbmGrads<B>,
    velocity: [B::Tensor; 3],
    unused: B::Tensor,
}

impl<B: Backend> Cd<B> {
    /// Buffers for `rbm` and batches of `n` rows, `k` Gibbs steps, persistent chains or not.
    pub fn new(b: &B, rbm: &Rbm<B>, n: usize, k: usize, persistent: bool) -> Result<Self> {
        if k == 0 {
            return Err(Error::Invalid("CD-k needs at least one Gibbs step".into()));
        }
        let (v, h) = (rbm.visible(), rbm.hidden());
        Ok(Cd {
            k,
            persistent,
            ph0: b.zeros(n, h)?,
            h: b.zeros(n, h)?,
            pv: b.zeros(n, v)?,
            v_sample: b.zeros(n, v)?,
            ph: b.zeros(n, h)?,
            positive: b.zeros(h, v)?,
            dv: b.zeros(n, v)?,
            dh: b.zeros(n, h)?,
            chain_started: false,
            grads: RbmGrads {
                weight: b.zeros(h, v)?,
                visible_bias: b.zeros(1, v)?,
                hidden_bias: b.zeros(1, h)?,
            },
            velocity: [b.zeros(h, v)?, b.zeros(1, v)?, b.zeros(1, h)?],
            unused: b.zeros(1, 1)?,
        })
    }

    /// Computes the gradient estimate for the batch `v0` into [`Cd::grads`] (see the module notes),
    /// drawing its samples under keys made from `key` (one per draw, by [`dropout::key`]).
    pub fn gradient(&mut self, b: &B, rbm: &Rbm<B>, v0: &B::Tensor, key: u64) -> Result<()> {
        let n = v0.rows();
        rbm.hidden_probs(b, v0, &mut self.ph0)?;
        if !self.persistent || !self.chain_started {
            b.sample_bernoulli(dropout::key(key, 0, 0), &self.ph0, &mut self.h)?;
            self.chain_started = true;
        }
        for step in 0..self.k {
            let draw = |which: usize| dropout::key(key, which, step as u64 + 1);
            rbm.visible_probs(b, &self.h, &mut self.pv)?;
            let negative = if self.persistent {
                b.sample_bernoulli(draw(1), &self.pv, &mut self.v_sample)?;
                &self.v_sample
            } else {
                &self.pv
            };
            rbm.hidden_probs(b, negative, &mut self.ph)?;
            if self.persistent || step + 1 < self.k {
                b.sample_bernoulli(draw(2), &self.ph, &mut self.h)?;
            }
        }
        let negative = if self.persistent {
            &self.v_sample
        } else {
            &self.pv
        };
        let scale = 1.0 / n as f32;
        let g = &mut self.grads;
        // ∂W = (ph⁻ᵀv⁻ − ph₀ᵀv₀)/N.
        b.matmul(
            &self.ph0,
            true,
            v0,
            false,
            crate::Epilogue::none(),
            &mut self.positive,
        )?;
        b.matmul(
            &self.ph,
            true,
            negative,
            false,
            crate::Epilogue::none(),
            &mut g.weight,
        )?;
        b.axpy(-1.0, &self.positive, &mut g.weight)?;
        b.scale(scale, &mut g.weight)?;
        // ∂b = Σ(v⁻ − v₀)/N and ∂c = Σ(ph⁻ − ph₀)/N.
        b.copy(negative, &mut self.dv)?;
        b.axpy(-1.0, v0, &mut self.dv)?;
        b.bias_grad(&self.dv, &mut g.visible_bias)?;
        b.scale(scale, &mut g.visible_bias)?;
        b.copy(&self.ph, &mut self.dh)?;
        b.axpy(-1.0, &self.ph0, &mut self.dh)?;
        b.bias_grad(&self.dh, &mut g.hidden_bias)?;
        b.scale(scale, &mut g.hidden_bias)
    }

    /// Applies the last gradient to `rbm`: momentum `momentum`, learning rate `lr`, weight cost
    /// `weight_cost` on the weights.
    pub fn update(
        &mut self,
        b: &B,
        rbm: &mut Rbm<B>,
        lr: f32,
        momentum: f32,
        weight_cost: f32,
    ) -> Result<()> {
        let kind = OptimizerKind::Momentum {
            momentum,
            nesterov: false,
        };
        let mut rule = Optimizer::new(kind, lr);
        rule.weight_decay = weight_cost;
        let with_decay = rule.step(1);
        rule.weight_decay = 0.0;
        let plain = rule.step(1);
        let [vw, vb, vc] = &mut self.velocity;
        let g = &self.grads;
        b.optimizer_step(
            &with_decay,
            &mut rbm.weight,
            &g.weight,
            vw,
            &mut self.unused,
        )?;
        b.optimizer_step(
            &plain,
            &mut rbm.visible_bias,
            &g.visible_bias,
            vb,
            &mut self.unused,
        )?;
        b.optimizer_step(
            &plain,
            &mut rbm.hidden_bias,
            &g.hidden_bias,
            vc,
            &mut self.unused,
        )
    }
}

/// Feeds data up a stack: the hidden probabilities of each RBM in `lower` become the next one's
/// visible units (a deep belief network's input to its layer `lower.len()`).
pub struct Feed<'a, B: Backend> {
    lower: &'a [Rbm<B>],
    buffers: Vec<B::Tensor>,
}

impl<'a, B: Backend> Feed<'a, B> {
    /// Buffers for batches of `n` rows through `lower`.
    pub fn new(b: &B, lower: &'a [Rbm<B>], n: usize) -> Result<Self> {
        let buffers = lower
            .iter()
            .map(|r| b.zeros(n, r.hidden()))
            .collect::<Result<_>>()?;
        Ok(Feed { lower, buffers })
    }

    /// `x` carried up through every lower RBM (`x` itself when there is none).
    pub fn up<'s>(&'s mut self, b: &B, x: &'s B::Tensor) -> Result<&'s B::Tensor> {
        for i in 0..self.lower.len() {
            let (done, rest) = self.buffers.split_at_mut(i);
            let input = done.last().unwrap_or(x);
            self.lower[i].hidden_probs(b, input, &mut rest[0])?;
        }
        Ok(self.buffers.last().unwrap_or(x))
    }
}

/// What one set looks like to an RBM at the end of an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Monitor {
    /// Mean over the samples of `Σᵢ (vᵢ − v̂ᵢ)²`, `v̂ = σ(σ(vWᵀ + c)W + b)` the mean-field reconstruction.
    pub reconstruction_error: f64,
    /// Mean free energy `F(v)` over the samples.
    pub free_energy: f64,
}

/// One epoch's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbmEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Seconds spent training (monitoring excluded).
    pub seconds: f64,
    /// On (at most [`RbmConfig::monitor`] of) the training samples.
    pub train: Monitor,
    /// On the held-out samples, if given.
    pub held_out: Option<Monitor>,
}

impl RbmEpoch {
    /// The free-energy gap, held-out minus training: it grows as the RBM overfits (the guide, §6).
    pub fn free_energy_gap(&self) -> Option<f64> {
        self.held_out
            .map(|h| h.free_energy - self.train.free_energy)
    }
}

/// Trains `rbm` on `train` fed up through `lower` (empty for the first layer) as `config` says, calling
/// `observe` after each epoch with its figures (on `held_out` too, if given) and the RBM as it stands;
/// returns every epoch's figures.
/// A reconstruction error that is not finite stops training with [`Error::Diverged`].
pub fn train_rbm<B: Backend>(
    b: &B,
    rbm: &mut Rbm<B>,
    lower: &[Rbm<B>],
    train: &DeviceSplit<B>,
    held_out: Option<&DeviceSplit<B>>,
    config: &RbmConfig,
    mut observe: impl FnMut(&RbmEpoch, &Rbm<B>),
) -> Result<Vec<RbmEpoch>> {
    config.validate()?;
    check_batch(config.batch, train.len)?;
    let input_width = lower.first().map_or(train.width, |r| r.visible());
    if input_width != train.width
        || lower.last().map_or(train.width, |r| r.hidden()) != rbm.visible()
    {
        return Err(Error::shape(format!(
            "an RBM of {} visible units cannot read samples of {} features through {} lower layers",
            rbm.visible(),
            train.width,
            lower.len()
        )));
    }
    let mut batch = Batch::new(b, train, config.batch)?;
    let mut feed = Feed::new(b, lower, config.batch)?;
    let mut cd = Cd::new(b, rbm, config.batch, config.k, config.persistent)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<u32> = (0..train.len as u32).collect();
    let steps = train.len / config.batch;
    let mut history = Vec::with_capacity(config.epochs);
    let mut t = 0u64;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        order.shuffle(&mut rng);
        let device_order = b.indices(&order)?;
        let momentum = if epoch <= config.momentum_switch {
            config.initial_momentum
        } else {
            config.final_momentum
        };
        for step in 0..steps {
            batch.gather(b, train, &device_order, step * config.batch)?;
            let v0 = feed.up(b, &batch.x)?;
            t += 1;
            cd.gradient(b, rbm, v0, dropout::key(config.seed, lower.len(), t))?;
            cd.update(b, rbm, config.lr, momentum, config.weight_cost)?;
            b.submit();
        }
        b.synchronize()?;
        let seconds = started.elapsed().as_secs_f64();
        let figures = RbmEpoch {
            epoch,
            seconds,
            train: monitor(b, rbm, lower, train, config.monitor)?,
            held_out: held_out
                .map(|h| monitor(b, rbm, lower, h, config.monitor))
                .transpose()?,
        };
        let error = figures.train.reconstruction_error;
        if !error.is_finite() {
            return Err(Error::Diverged {
                loss: error as f32,
                epoch,
                step: steps,
            });
        }
        observe(&figures, rbm);
        history.push(figures);
    }
    Ok(history)
}

/// Carries the first `count` samples of `set` (at most its length) up through `lower`, in order and in
/// chunks of up to 1000 rows, the last one shorter: `visit` gets each chunk's inputs to the RBM above
/// `lower` (`[rows, width]`).
pub fn feed_chunks<B: Backend>(
    b: &B,
    lower: &[Rbm<B>],
    set: &DeviceSplit<B>,
    count: usize,
    mut visit: impl FnMut(&B::Tensor) -> Result<()>,
) -> Result<()> {
    let count = count.min(set.len);
    let order = b.indices(&(0..count as u32).collect::<Vec<_>>())?;
    let chunk = count.clamp(1, 1000);
    let mut offset = 0;
    while offset < count {
        let rows = chunk.min(count - offset);
        let mut batch = Batch::new(b, set, rows)?;
        let mut feed = Feed::new(b, lower, rows)?;
        while offset + rows <= count {
            batch.gather(b, set, &order, offset)?;
            visit(feed.up(b, &batch.x)?)?;
            offset += rows;
        }
    }
    Ok(())
}

/// The reconstruction error and mean free energy of the first `count` samples of `set` (fed up through
/// `lower`); the sums in f64 on the host.
pub fn monitor<B: Backend>(
    b: &B,
    rbm: &Rbm<B>,
    lower: &[Rbm<B>],
    set: &DeviceSplit<B>,
    count: usize,
) -> Result<Monitor> {
    let count = count.min(set.len);
    if count == 0 {
        return Err(Error::Invalid("no samples to measure an RBM on".into()));
    }
    let values = rbm.read(b)?;
    let (mut error, mut energy) = (0.0f64, 0.0f64);
    feed_chunks(b, lower, set, count, |v| {
        let rows = v.rows();
        let (mut z, mut ph) = (b.zeros(rows, rbm.hidden())?, b.zeros(rows, rbm.hidden())?);
        let mut pv = b.zeros(rows, rbm.visible())?;
        rbm.hidden_inputs(b, v, &mut z)?;
        b.activation_forward(crate::Activation::Sigmoid, &z, &mut ph)?;
        rbm.visible_probs(b, &ph, &mut pv)?;
        let (v, z, pv) = (b.read(v)?, b.read(&z)?, b.read(&pv)?);
        let samples = v.chunks(values.visible).zip(pv.chunks(values.visible));
        for ((v, pv), z) in samples.zip(z.chunks(values.hidden)) {
            error += v
                .iter()
                .zip(pv)
                .map(|(&a, &r)| (f64::from(a) - f64::from(r)).powi(2))
                .sum::<f64>();
            energy += values.free_energy_given(v, z);
        }
        Ok(())
    })?;
    Ok(Monitor {
        reconstruction_error: error / count as f64,
        free_energy: energy / count as f64,
    })
}
