//! Restricted Boltzmann machines with Bernoulli visible and hidden units, and deep belief networks
//! built from them.
//!
//! An RBM over visible units `v ∈ {0,1}^V` and hidden units `h ∈ {0,1}^H` has the energy
//! `E(v, h) = −bᵀv − cᵀh − hᵀW v`, with `W` `[H, V]`, visible bias `b` and hidden bias `c`, and gives
//! `p(v, h) ∝ e^{−E(v, h)}`. With no connections inside a layer, each layer's units are independent
//! given the other's:
//!
//! - `p(h_j = 1 | v) = σ(c_j + W_j·v)` ([`Rbm::hidden_probs`], one product with the bias and the
//!   sigmoid fused into its epilogue);
//! - `p(v_i = 1 | h) = σ(b_i + Σ_j W_ji h_j)` ([`Rbm::visible_probs`]);
//! - the free energy `F(v) = −bᵀv − Σ_j softplus(c_j + W_j·v)`, with `p(v) ∝ e^{−F(v)}`
//!   ([`RbmValues::free_energy`]).
//!
//! Units are switched on by [`crate::Backend::sample_bernoulli`], whose counter-based draws make every
//! backend take the same samples. Training is in [`train`], stacking in [`stack`], files in [`file`].

pub mod file;
pub mod stack;
pub mod train;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::error::{Error, Result};
use crate::init::standard_normal;

/// A restricted Boltzmann machine's parameters, on a backend.
pub struct Rbm<B: Backend> {
    /// `W` `[H, V]`: row `j` is hidden unit `j`'s filter over the visible units.
    pub weight: B::Tensor,
    /// `b` `[1, V]`.
    pub visible_bias: B::Tensor,
    /// `c` `[1, H]`.
    pub hidden_bias: B::Tensor,
}

/// An RBM's parameters on the host: what files, pictures and the f64 references use.
#[derive(Clone, Debug, PartialEq)]
pub struct RbmValues {
    /// Visible units `V`.
    pub visible: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// `W`, `[H, V]` row-major.
    pub weight: Vec<f32>,
    /// `b`, `V` values.
    pub visible_bias: Vec<f32>,
    /// `c`, `H` values.
    pub hidden_bias: Vec<f32>,
}

impl<B: Backend> Rbm<B> {
    /// [`RbmValues::initial`], uploaded.
    pub fn new(b: &B, visible: usize, hidden: usize, seed: u64) -> Result<Self> {
        Self::from_values(b, &RbmValues::initial(visible, hidden, seed)?)
    }

    /// The RBM `values` describe, uploaded.
    pub fn from_values(b: &B, values: &RbmValues) -> Result<Self> {
        values.check()?;
        Ok(Rbm {
            weight: b.tensor(values.hidden, values.visible, &values.weight)?,
            visible_bias: b.tensor(1, values.visible, &values.visible_bias)?,
            hidden_bias: b.tensor(1, values.hidden, &values.hidden_bias)?,
        })
    }

    /// Visible units `V`.
    pub fn visible(&self) -> usize {
        self.weight.cols()
    }

    /// Hidden units `H`.
    pub fn hidden(&self) -> usize {
        self.weight.rows()
    }

    /// `ph = σ(v·Wᵀ + c)`: `v` `[N, V]`, `ph` `[N, H]`.
    pub fn hidden_probs(&self, b: &B, v: &B::Tensor, ph: &mut B::Tensor) -> Result<()> {
        let sigmoid = Epilogue::forward(Some(&self.hidden_bias), Activation::Sigmoid);
        b.matmul(v, false, &self.weight, true, sigmoid, ph)
    }

    /// `z = v·Wᵀ + c`, the hidden units' total inputs (what the free energy needs).
    pub fn hidden_inputs(&self, b: &B, v: &B::Tensor, z: &mut B::Tensor) -> Result<()> {
        b.matmul(
            v,
            false,
            &self.weight,
            true,
            Epilogue::bias(&self.hidden_bias),
            z,
        )
    }

    /// `pv = σ(h·W + b)`: `h` `[N, H]`, `pv` `[N, V]`.
    pub fn visible_probs(&self, b: &B, h: &B::Tensor, pv: &mut B::Tensor) -> Result<()> {
        let sigmoid = Epilogue::forward(Some(&self.visible_bias), Activation::Sigmoid);
        b.matmul(h, false, &self.weight, false, sigmoid, pv)
    }

    /// The parameters, copied to the host.
    pub fn read(&self, b: &B) -> Result<RbmValues> {
        Ok(RbmValues {
            visible: self.visible(),
            hidden: self.hidden(),
            weight: b.read(&self.weight)?,
            visible_bias: b.read(&self.visible_bias)?,
            hidden_bias: b.read(&self.hidden_bias)?,
        })
    }

    /// Runs a Gibbs chain from the visible vectors `start` (`[N, V]`): each step samples `h ~ p(h | v)`,
    /// then `v ~ p(v | h)`; returns the visible probabilities `p(v | h)` after each step count in
    /// `snapshots` (increasing, each at least 1), each `N·V` values. Draws come from `seed`.
    pub fn gibbs_chain(
        &self,
        b: &B,
        start: &B::Tensor,
        snapshots: &[usize],
        seed: u64,
    ) -> Result<Vec<Vec<f32>>> {
        if snapshots.contains(&0) {
            return Err(Error::Invalid(
                "a Gibbs chain's snapshots come after at least one step".into(),
            ));
        }
        let n = start.rows();
        let (mut v, mut pv) = (b.zeros(n, self.visible())?, b.zeros(n, self.visible())?);
        let (mut ph, mut h) = (b.zeros(n, self.hidden())?, b.zeros(n, self.hidden())?);
        b.copy(start, &mut v)?;
        let mut out = Vec::with_capacity(snapshots.len());
        let last = snapshots.iter().copied().max().unwrap_or(0);
        for step in 1..=last {
            self.hidden_probs(b, &v, &mut ph)?;
            b.sample_bernoulli(crate::dropout::key(seed, 0, 2 * step as u64), &ph, &mut h)?;
            self.visible_probs(b, &h, &mut pv)?;
            b.sample_bernoulli(crate::dropout::key(seed, 1, 2 * step as u64), &pv, &mut v)?;
            if snapshots.contains(&step) {
                out.push(b.read(&pv)?);
            }
        }
        Ok(out)
    }
}

/// The weight count `visible·hidden`, refused when a unit count is 0 or the product overflows.
fn weight_count(visible: usize, hidden: usize) -> Result<usize> {
    if visible == 0 || hidden == 0 {
        return Err(Error::Invalid(format!(
            "an RBM needs at least one visible and one hidden unit (got {visible}–{hidden})"
        )));
    }
    visible
        .checked_mul(hidden)
        .ok_or_else(|| Error::Invalid(format!("an RBM of {visible}×{hidden} weights is too large")))
}

impl RbmValues {
    /// A `visible`–`hidden` RBM as Hinton's practical guide starts one: weights from N(0, 0.01²) drawn
    /// with `seed`, zero biases (see [`RbmValues::set_visible_bias_from_means`] for the visible ones).
    pub fn initial(visible: usize, hidden: usize, seed: u64) -> Result<Self> {
        let count = weight_count(visible, hidden)?;
        let mut rng = StdRng::seed_from_u64(seed);
        Ok(RbmValues {
            visible,
            hidden,
            weight: (0..count)
                .map(|_| 0.01 * standard_normal(&mut rng))
                .collect(),
            visible_bias: vec![0.0; visible],
            hidden_bias: vec![0.0; hidden],
        })
    }

    /// Refuses values whose lengths do not match their sizes.
    pub fn check(&self) -> Result<()> {
        let (v, h) = (self.visible, self.hidden);
        if self.weight.len() != weight_count(v, h)?
            || self.visible_bias.len() != v
            || self.hidden_bias.len() != h
        {
            return Err(Error::shape(format!(
                "an RBM of {v} visible and {h} hidden units needs a weight of {h}×{v}, a visible bias \
                 of {v} and a hidden bias of {h} values; got {}, {} and {}",
                self.weight.len(),
                self.visible_bias.len(),
                self.hidden_bias.len()
            )));
        }
        Ok(())
    }

    /// The free energy of one visible vector, in f64: `F(v) = −bᵀv − Σ_j softplus(c_j + W_j·v)`.
    pub fn free_energy(&self, v: &[f32]) -> f64 {
        let inputs: Vec<f64> = self
            .weight
            .chunks_exact(self.visible)
            .zip(&self.hidden_bias)
            .map(|(row, &c)| f64::from(c) + dot(row, v))
            .collect();
        self.free_energy_given(v, &inputs)
    }

    /// [`RbmValues::free_energy`] from the hidden units' total inputs `z = vWᵀ + c`, already computed.
    pub fn free_energy_given(&self, v: &[f32], z: &[impl Into<f64> + Copy]) -> f64 {
        -dot(&self.visible_bias, v) - z.iter().map(|&z| softplus(z.into())).sum::<f64>()
    }

    /// Sets the visible biases to `log(p/(1 − p))` of each unit's mean activity `p` over the training
    /// data (clamped to [0.001, 0.999]), the guide's start: the model begins with the data's marginals.
    pub fn set_visible_bias_from_means(&mut self, means: &[f32]) -> Result<()> {
        if means.len() != self.visible {
            return Err(Error::shape(format!(
                "{} means for {} visible units",
                means.len(),
                self.visible
            )));
        }
        for (b, &p) in self.visible_bias.iter_mut().zip(means) {
            let p = p.clamp(0.001, 0.999);
            *b = (p / (1.0 - p)).ln();
        }
        Ok(())
    }
}

/// `Σ aᵢbᵢ` in f64.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// `log(1 + eᶻ)`, without overflow for large `z`.
pub fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}
