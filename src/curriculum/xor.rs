//! XOR learned by backprop: a 2-H-1 network (hidden activation tanh or sigmoid, a sigmoid output with
//! binary cross-entropy) trained by full-batch gradient descent on the four rows of the truth table.
//!
//! Every layer's forward and backward is spelled out with the backend's ops, in order:
//!
//! ```text
//! forward    z₁ = X·W₁ + b₁    h = f(z₁)    z₂ = h·W₂ + b₂    loss = BCE(σ(z₂), t)
//! backward   dz₂ = (σ(z₂) - t)/4
//!            dW₂ = hᵀ·dz₂   db₂ = Σ dz₂   dh = dz₂·W₂ᵀ   dz₁ = dh ⊙ f'(z₁)
//!            dW₁ = Xᵀ·dz₁   db₁ = Σ dz₁
//! update     θ ← θ - lr·dθ
//! ```

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue};
use crate::curriculum::perceptron::{INPUTS, XOR_TABLE};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::optim::Optimizer;

/// How to train.
#[derive(Clone, Copy, Debug)]
pub struct XorConfig {
    /// Hidden units.
    pub hidden: usize,
    /// Hidden activation (tanh or sigmoid make the lesson's point; any works).
    pub activation: Activation,
    /// Learning rate of plain gradient descent.
    pub lr: f32,
    /// Gradient-descent steps.
    pub steps: usize,
    /// Seeds the Xavier initialisation.
    pub seed: u64,
    /// Record the loss every this many steps.
    pub report_every: usize,
}

impl Default for XorConfig {
    /// 2-4-1 tanh, lr 0.5, 2000 steps.
    fn default() -> Self {
        XorConfig {
            hidden: 4,
            activation: Activation::Tanh,
            lr: 0.5,
            steps: 2000,
            seed: 1,
            report_every: 200,
        }
    }
}

/// What training produced.
#[derive(Clone, Debug)]
pub struct XorRun {
    /// `(step, loss)` every `report_every` steps, and after the last step.
    pub losses: Vec<(usize, f32)>,
    /// The trained network's outputs σ(z₂) for [`INPUTS`].
    pub outputs: [f32; 4],
}

impl XorRun {
    /// The outputs rounded to 0 or 1: the learned truth table.
    pub fn truth_table(&self) -> [f32; 4] {
        self.outputs.map(|y| if y > 0.5 { 1.0 } else { 0.0 })
    }
}

struct Param<B: Backend> {
    value: B::Tensor,
    grad: B::Tensor,
}

impl<B: Backend> Param<B> {
    fn new(b: &B, rows: usize, cols: usize, value: &[f32]) -> Result<Self> {
        Ok(Param {
            value: b.tensor(rows, cols, value)?,
            grad: b.zeros(rows, cols)?,
        })
    }
}

/// The network's parameters and the forward pass's intermediate values (kept for backprop).
struct Net<B: Backend> {
    activation: Activation,
    w1: Param<B>,
    b1: Param<B>,
    w2: Param<B>,
    b2: Param<B>,
    z1: B::Tensor,
    h: B::Tensor,
    z2: B::Tensor,
}

impl<B: Backend> Net<B> {
    /// `z₁ = X·W₁ + b₁`, `h = f(z₁)`, `z₂ = h·W₂ + b₂`.
    fn forward(&mut self, b: &B, x: &B::Tensor) -> Result<()> {
        let (w1, b1) = (&self.w1.value, &self.b1.value);
        b.matmul(x, false, w1, false, Epilogue::bias(b1), &mut self.z1)?;
        b.activation_forward(self.activation, &self.z1, &mut self.h)?;
        let (w2, b2) = (&self.w2.value, &self.b2.value);
        b.matmul(&self.h, false, w2, false, Epilogue::bias(b2), &mut self.z2)
    }
}

/// Trains the network on `b` as `config` says.
pub fn train<B: Backend>(b: &B, config: &XorConfig) -> Result<XorRun> {
    let h = config.hidden;
    if h == 0 || config.steps == 0 {
        return Err(Error::Invalid("XOR needs hidden units and steps".into()));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let x = b.tensor(4, 2, INPUTS.as_flattened())?;
    let t = b.tensor(4, 1, &XOR_TABLE)?;
    let mut net = Net {
        activation: config.activation,
        w1: Param::new(b, 2, h, &Init::Xavier.sample(&mut rng, 2, 2 * h))?,
        b1: Param::new(b, 1, h, &vec![0.0; h])?,
        w2: Param::new(b, h, 1, &Init::Xavier.sample(&mut rng, h, h))?,
        b2: Param::new(b, 1, 1, &[0.0])?,
        z1: b.zeros(4, h)?,
        h: b.zeros(4, h)?,
        z2: b.zeros(4, 1)?,
    };
    let (mut dz2, mut dh, mut dz1) = (b.zeros(4, 1)?, b.zeros(4, h)?, b.zeros(4, h)?);
    let mut loss = b.zeros(1, 1)?;
    let (mut unused1, mut unused2) = (b.zeros(1, 1)?, b.zeros(1, 1)?);
    let sgd = Optimizer::sgd(config.lr);
    let mut losses = Vec::new();
    for step in 1..=config.steps {
        net.forward(b, &x)?;
        b.sigmoid_binary_cross_entropy(&net.z2, &t, &mut dz2, &mut loss)?;

        let n = &mut net;
        b.matmul(&n.h, true, &dz2, false, Epilogue::none(), &mut n.w2.grad)?;
        b.bias_grad(&dz2, &mut n.b2.grad)?;
        b.matmul(&dz2, false, &n.w2.value, true, Epilogue::none(), &mut dh)?;
        b.activation_backward(n.activation, &n.z1, &dh, &mut dz1)?;
        b.matmul(&x, true, &dz1, false, Epilogue::none(), &mut n.w1.grad)?;
        b.bias_grad(&dz1, &mut n.b1.grad)?;

        let update = sgd.step(step as u64);
        for p in [&mut n.w1, &mut n.b1, &mut n.w2, &mut n.b2] {
            b.optimizer_step(&update, &mut p.value, &p.grad, &mut unused1, &mut unused2)?;
        }
        b.submit();
        if step % config.report_every.max(1) == 0 || step == config.steps {
            losses.push((step, b.read(&loss)?[0]));
        }
    }
    net.forward(b, &x)?;
    let mut y = b.zeros(4, 1)?;
    b.activation_forward(Activation::Sigmoid, &net.z2, &mut y)?;
    let y = b.read(&y)?;
    Ok(XorRun {
        losses,
        outputs: [y[0], y[1], y[2], y[3]],
    })
}
