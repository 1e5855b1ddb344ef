//! Formulas checked against values computed from their definitions in f64 inside this file (or from
//! PyTorch's documented algorithm re-implemented in f64), on the CPU backend and on the GPU backend. The
//! other tests compare the GPU with the CPU, or a backward pass with its own forward pass, so a formula
//! written wrong in both places passes them; these do not.
//!
//! Every reference takes the f32 inputs the backend got (converted exactly to f64) and computes in f64,
//! so its own error (≈ 1e-16 relative) is negligible: a difference is the backend's f32 rounding, or a
//! wrong formula. u = 2⁻²⁴ ≈ 6e-8 is f32's unit roundoff (half an ulp of 1).
//!
//! Tolerances, and why:
//! - dropout: a kept element is `x·fl(1/fl(1 − p))`, a product of f32 roundings each within ½ ulp, so it
//!   must be within 1 ulp of the f64 `x/(1 − p)` rounded to f32; a dropped element is exactly +0 or −0.
//!   The mask is re-derived here from the hash `nabla::dropout` documents ("lowbias32", written out below
//!   from its published constants, not taken from the library), so the pattern is checked bit for bit,
//!   and the dropped count must lie within 4σ of p·n (binomial).
//! - activations: `|got − want| ≤ (8 + 4|z|)·u·(|want| + c) + f32::MIN_POSITIVE`, where `z` is the
//!   argument of the exponential (or tanh) the f32 code evaluates and `c` the size of terms whose
//!   rounding survives as an absolute error (0 where there are none). Why: a few roundings of values of
//!   order `|want|` give a few ulp; an exponential's relative error grows with its argument — the
//!   rounding of `z` itself (a relative error of a few u becomes one of a few u·|z| in `e^z`), and WGSL
//!   lets `exp` err by `3 + 2|z|` ulp. Terms of size `c`: in derivatives, those that cancel (`1 − σ`
//!   where σ ≈ 1, `1 − tanh²`, swish's and GELU's sums); on the GPU only, in `f`, what WGSL allows
//!   absolutely: `tanh` as `sinh/cosh` (c = 1) and `log` with an absolute error of 2⁻²¹ near 1, which
//!   the kernels' `expm1` (ELU, SELU: c = α, λα for x < 0) and `log1p` (softplus: c = 1) divide by —
//!   lavapipe errs there by about u absolute (ELU(−1e-20) = −6e-8; softplus(−8) off by 1e-4
//!   relative), where the CPU is correct to a few ulp relative. Observed errors stay below 4·(1 + |z|/2)
//!   u relative to `|want| + c`, a margin of 2 or more. The MIN_POSITIVE allows for a GPU that flushes
//!   subnormal results to zero. A GPU may contract `a·b + c` into one FMA anywhere in these formulas;
//!   that changes one rounding, which the few ulp cover.
//! - optimizers: after step t, `|θ − θ_ref| ≤ 8·t·u·(|θ_ref| + 1)`. Each step rounds about eight
//!   operations on values of order 1 (|θ| ≤ 2, lr·|update| ≤ 1 here); an error in θ or in a state is
//!   carried into the next step but not amplified (it is multiplied by μ, ρ, β or 1 − lr·λ, all ≤ 1, and
//!   the adaptive rules' normalisation halves a relative error of the second moment), so the bound grows
//!   linearly with t. The FMA contraction a GPU may apply to `μ·s + g` and the like is one of those
//!   roundings. Observed errors stay below a fifth of the bound; the formula breaks tried miss by 1e-4
//!   or more at the first step they show.
//! - batch norm: rigorous worst-case bounds for f32 sums in any order (the GPU sums strided shares then a
//!   tree; the CPU in f64, which only does better): the mean within `(M + 1)·u·mean|x|`, σ² within
//!   `(M + 4)·u·σ² + δμ²` (the mean's error enters σ² squared), then a few roundings more for the running
//!   averages, `r = 1/√(σ² + ε)` (WGSL's `sqrt` and division err by a few ulp) and `γ·(x − μ)·r + β`;
//!   the bounds are doubled for slack. With M ≤ 600 they stay below about 5e-4 relative (the mean's
//!   bound scales with mean|x|, 3 in channel 0), under what a wrong formula changes: biased for unbiased
//!   variance changes the running variance by 1/M and r by 1/(2M) (caught 60× over in the running
//!   variance, 2× in y at M = 300); a missing ε changes r by ε/(2σ²), made large here by one channel with
//!   σ ≈ 0.006.
//!
//! Each test was shown to fail by breaking its own reference (e.g. SELU's λ off by 1e-4, biased variance
//! in the running average); the report that came with this file lists the break tried for each.

mod common;

use common::{cpu, read, rng, uniform, with_gpu};
use nabla::layers::batch_norm;
use nabla::{Activation, Backend, Optimizer, OptimizerKind};

/// f32's unit roundoff, 2⁻²⁴.
const U: f64 = 1.0 / 16_777_216.0;

/// Distance in ulps between two finite f32 of the same sign (0 for equal values).
fn ulps(a: f32, b: f32) -> u32 {
    let key = |v: f32| {
        let bits = v.to_bits() as i32;
        if bits < 0 {
            i32::MIN.wrapping_sub(bits)
        } else {
            bits
        }
    };
    key(a).wrapping_sub(key(b)).unsigned_abs()
}

// ---------------------------------------------------------------------------------------------------
// Dropout

/// The "lowbias32" integer hash (Chris Wellons' hash-prospector), from its published constants.
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// Whether element `i` is kept, as `nabla::dropout` documents it: its 24-bit draw
/// `mix(mix(i ⊕ key_lo) ⊕ key_hi) >> 8` is at least `round(p·2²⁴)`.
fn documented_keep(p: f32, key: u64, i: u32) -> bool {
    let draw = lowbias32(lowbias32(i ^ key as u32) ^ (key >> 32) as u32) >> 8;
    let threshold = (f64::from(p) * 16_777_216.0).round() as u32;
    draw >= threshold
}

fn check_dropout<B: Backend>(b: &B, side: &str) {
    let n = 100_003usize;
    // No zero inputs, so that a zero output always means "dropped".
    let x: Vec<f32> = uniform(&mut rng(5), n, 3.0)
        .into_iter()
        .map(|v| if v == 0.0 { 1.0 } else { v })
        .collect();
    let key = 0x9e37_79b9_7f4a_7c15u64;
    let tx = b.tensor(1, n, &x).unwrap();
    for p in [0.1f32, 0.5, 0.9] {
        let mut ty = b.zeros(1, n).unwrap();
        b.dropout(p, key, &tx, &mut ty).unwrap();
        let y = read(b, &ty);
        let mut dropped = 0usize;
        for (i, (&x, &y)) in x.iter().zip(&y).enumerate() {
            if documented_keep(p, key, i as u32) {
                let want = (f64::from(x) / (1.0 - f64::from(p))) as f32;
                assert!(
                    ulps(y, want) <= 1 && y.signum() == want.signum(),
                    "{side} dropout p {p} [{i}]: kept {x} became {y}, want {want}"
                );
            } else {
                dropped += 1;
                assert_eq!(y, 0.0, "{side} dropout p {p} [{i}]: dropped {x} became {y}");
            }
        }
        // Binomial count: 4σ is exceeded about once in 16 000 by a fair draw.
        let (mean, sd) = (
            f64::from(p) * n as f64,
            (f64::from(p) * (1.0 - f64::from(p)) * n as f64).sqrt(),
        );
        assert!(
            (dropped as f64 - mean).abs() < 4.0 * sd,
            "{side} dropout p {p}: {dropped} of {n} dropped, expected {mean} ± {sd}"
        );
    }
}

#[test]
fn dropout_keeps_the_documented_elements_scaled_by_one_over_one_minus_p() {
    check_dropout(&cpu(), "cpu");
    with_gpu(|gpu| check_dropout(&*gpu, "gpu"));
}

// ---------------------------------------------------------------------------------------------------
// Activations

/// PyTorch's SELU constants (`torch.nn.SELU`).
const SELU_LAMBDA: f64 = 1.050_700_987_355_480_5;
const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;
/// GELU's tanh approximation (`torch.nn.GELU(approximate="tanh")`), which `Activation::Gelu` documents.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044_715;
const LEAKY_SLOPE: f64 = 0.01;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `½(1 + tanh u)` as written where f64 can evaluate it; below u = −5, where `1 + tanh u` would lose
/// digits to cancellation even in f64, the same number as `1/(1 + e^{−2u})`.
fn half_one_plus_tanh(u: f64) -> f64 {
    if u > -5.0 {
        0.5 * (1.0 + u.tanh())
    } else {
        1.0 / (1.0 + (-2.0 * u).exp())
    }
}

fn gelu_u(x: f64) -> f64 {
    SQRT_2_OVER_PI * (x + GELU_K * x * x * x)
}

/// An activation's f64 definition, its derivative, and what its f32 evaluation's error scales with.
struct Reference {
    act: Activation,
    f: fn(f64) -> f64,
    df: fn(f64) -> f64,
    /// |argument| of the exponential or tanh the f32 code evaluates.
    z: fn(f64) -> f64,
    /// Size of the terms that cancel when f32 code evaluates `f'` (nothing cancels in any `f`).
    cancel_df: fn(f64) -> f64,
    /// Size of the absolute error WGSL lets the GPU's `f` have: its `tanh` is `sinh/cosh`, and its `log`
    /// (in `expm1` and `log1p`) errs by an absolute 2⁻²¹ near 1, not a relative amount.
    gpu_abs: fn(f64) -> f64,
}

fn references() -> Vec<Reference> {
    fn none(_: f64) -> f64 {
        0.0
    }
    fn one(_: f64) -> f64 {
        1.0
    }
    fn abs(x: f64) -> f64 {
        x.abs()
    }
    fn negative_part(x: f64) -> f64 {
        (-x).max(0.0)
    }
    vec![
        Reference {
            act: Activation::Sigmoid,
            f: sigmoid,
            // σ(x)(1 − σ(x)) = σ(x)σ(−x), which does not cancel in f64.
            df: |x| sigmoid(x) * sigmoid(-x),
            z: abs,
            // 1 − σ cancels where σ ≈ 1.
            cancel_df: sigmoid,
            gpu_abs: none,
        },
        Reference {
            act: Activation::Tanh,
            f: f64::tanh,
            // 1 − tanh² x = 1/cosh² x.
            df: |x| 1.0 / x.cosh().powi(2),
            z: |x| 2.0 * x.abs(),
            cancel_df: one,
            gpu_abs: one,
        },
        Reference {
            act: Activation::Relu,
            f: |x| x.max(0.0),
            df: |x| if x > 0.0 { 1.0 } else { 0.0 },
            z: none,
            cancel_df: none,
            gpu_abs: none,
        },
        Reference {
            act: Activation::LeakyRelu(LEAKY_SLOPE as f32),
            f: |x| if x > 0.0 { x } else { LEAKY_SLOPE * x },
            df: |x| if x > 0.0 { 1.0 } else { LEAKY_SLOPE },
            z: none,
            cancel_df: none,
            gpu_abs: none,
        },
        Reference {
            act: Activation::Elu(1.0),
            // e^x − 1, evaluated without cancellation.
            f: |x| if x > 0.0 { x } else { x.exp_m1() },
            df: |x| if x > 0.0 { 1.0 } else { x.exp() },
            z: negative_part,
            cancel_df: none,
            gpu_abs: |x| if x > 0.0 { 0.0 } else { 1.0 },
        },
        Reference {
            act: Activation::Selu,
            f: |x| SELU_LAMBDA * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            df: |x| SELU_LAMBDA * if x > 0.0 { 1.0 } else { SELU_ALPHA * x.exp() },
            z: negative_part,
            cancel_df: none,
            gpu_abs: |x| {
                if x > 0.0 {
                    0.0
                } else {
                    SELU_LAMBDA * SELU_ALPHA
                }
            },
        },
        Reference {
            act: Activation::Swish,
            f: |x| x * sigmoid(x),
            df: |x| sigmoid(x) + x * sigmoid(x) * sigmoid(-x),
            z: abs,
            // σ + xσ(1 − σ): the terms, with 1 − σ's rounding absolute where σ ≈ 1.
            cancel_df: |x| sigmoid(x) * (1.0 + x.abs()),
            gpu_abs: none,
        },
        Reference {
            act: Activation::Gelu,
            f: |x| x * half_one_plus_tanh(gelu_u(x)),
            // d/dx ½x(1 + tanh u) = ½(1 + tanh u) + ½x(1 − tanh² u)·u'.
            df: |x| {
                let u = gelu_u(x);
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K * x * x);
                half_one_plus_tanh(u) + 0.5 * x * du / u.cosh().powi(2)
            },
            z: |x| 2.0 * gelu_u(x).abs(),
            cancel_df: |x| {
                let s = half_one_plus_tanh(gelu_u(x));
                s * (1.0 + 2.0 * x.abs() * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K * x * x))
            },
            gpu_abs: none,
        },
        Reference {
            act: Activation::Softplus,
            // ln(1 + eˣ), evaluated without cancellation.
            f: |x| x.exp().ln_1p(),
            df: sigmoid,
            z: abs,
            cancel_df: none,
            gpu_abs: one,
        },
    ]
}

/// 201 points evenly spaced over [−8, 8] (0 among them), the saturated ±30, ±0 and tiny values.
fn activation_points() -> Vec<f32> {
    let mut x: Vec<f32> = (0..=200)
        .map(|i| (-8.0 + 0.08 * f64::from(i)) as f32)
        .collect();
    x.extend([30.0, -30.0, 0.0, -0.0, 1e-4, -1e-4, 1e-20, -1e-20]);
    x
}

/// Checks `f` (or, with `derivative`, `f'` as `activation_backward` with dy = 1 gives it) of every
/// reference on backend `b`, with the tolerance of the header.
fn check_activations<B: Backend>(b: &B, side: &str, gpu: bool, derivative: bool) {
    let x = activation_points();
    let n = x.len();
    let tx = b.tensor(1, n, &x).unwrap();
    let ones = b.tensor(1, n, &vec![1.0; n]).unwrap();
    let mut failures = Vec::new();
    for r in references() {
        let mut ty = b.zeros(1, n).unwrap();
        if derivative {
            b.activation_backward(r.act, &tx, &ones, &mut ty).unwrap();
        } else {
            b.activation_forward(r.act, &tx, &mut ty).unwrap();
        }
        let got = read(b, &ty);
        for (&x, &g) in x.iter().zip(&got) {
            let xd = f64::from(x);
            let (want, cancel) = if derivative {
                ((r.df)(xd), (r.cancel_df)(xd))
            } else if gpu {
                ((r.f)(xd), (r.gpu_abs)(xd))
            } else {
                ((r.f)(xd), 0.0)
            };
            let tol =
                (8.0 + 4.0 * (r.z)(xd)) * U * (want.abs() + cancel) + f64::from(f32::MIN_POSITIVE);
            let diff = (f64::from(g) - want).abs();
            if diff.is_nan() || diff > tol {
                failures.push(format!(
                    "{side} {:?} {} at x = {x:e}: got {g:e}, want {want:e} (|diff| {diff:.2e} > {tol:.2e})",
                    r.act,
                    if derivative { "f'" } else { "f" },
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} points out of tolerance, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(12)].join("\n")
    );
}

#[test]
fn activations_match_their_f64_definitions() {
    check_activations(&cpu(), "cpu", false, false);
    with_gpu(|gpu| check_activations(&*gpu, "gpu", true, false));
}

#[test]
fn activation_derivatives_match_their_f64_definitions() {
    check_activations(&cpu(), "cpu", false, true);
    with_gpu(|gpu| check_activations(&*gpu, "gpu", true, true));
}

// ---------------------------------------------------------------------------------------------------
// Optimizers

/// Parameters and state of PyTorch's update rules, in f64.
struct TorchOptim {
    theta: Vec<f64>,
    /// `momentum_buffer`, `state_sum` (AdaGrad), `square_avg` (RMSprop) or `exp_avg` (Adam).
    s1: Vec<f64>,
    /// `exp_avg_sq` (Adam).
    s2: Vec<f64>,
}

impl TorchOptim {
    /// Step `t` (from 1) of the `torch.optim` algorithm `opt` describes, as PyTorch's documentation
    /// writes it (dampening 0, lr_decay 0, not centred, no AMSGrad, not maximising), on gradient `g`.
    fn step(&mut self, opt: &Optimizer, t: i32, g: &[f32]) {
        let (lr, eps, wd) = (
            f64::from(opt.lr),
            f64::from(opt.eps),
            f64::from(opt.weight_decay),
        );
        for (i, &g) in g.iter().enumerate() {
            let theta = &mut self.theta[i];
            let (s1, s2) = (&mut self.s1[i], &mut self.s2[i]);
            let mut g = f64::from(g);
            match opt.kind {
                OptimizerKind::Sgd => {
                    // torch.optim.SGD: g ← g + λθ; θ ← θ − γg.
                    g += wd * *theta;
                    *theta -= lr * g;
                }
                OptimizerKind::Momentum { momentum, nesterov } => {
                    // torch.optim.SGD: g ← g + λθ; b ← g at t = 1, else μb + g;
                    // g ← g + μb (Nesterov) or b; θ ← θ − γg.
                    let mu = f64::from(momentum);
                    g += wd * *theta;
                    *s1 = if t == 1 { g } else { mu * *s1 + g };
                    let d = if nesterov { g + mu * *s1 } else { *s1 };
                    *theta -= lr * d;
                }
                OptimizerKind::AdaGrad => {
                    // torch.optim.Adagrad: g ← g + λθ; sum ← sum + g²; θ ← θ − γg/(√sum + ε).
                    g += wd * *theta;
                    *s1 += g * g;
                    *theta -= lr * g / (s1.sqrt() + eps);
                }
                OptimizerKind::RmsProp { decay } => {
                    // torch.optim.RMSprop: g ← g + λθ; v ← αv + (1 − α)g²; θ ← θ − γg/(√v + ε),
                    // ε outside the square root.
                    let alpha = f64::from(decay);
                    g += wd * *theta;
                    *s1 = alpha * *s1 + (1.0 - alpha) * g * g;
                    *theta -= lr * g / (s1.sqrt() + eps);
                }
                OptimizerKind::Adam { beta1, beta2 } | OptimizerKind::AdamW { beta1, beta2 } => {
                    let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                    if matches!(opt.kind, OptimizerKind::AdamW { .. }) {
                        // torch.optim.AdamW: θ ← θ − γλθ first, then Adam on the raw gradient.
                        *theta -= lr * wd * *theta;
                    } else {
                        // torch.optim.Adam: g ← g + λθ (L2, coupled).
                        g += wd * *theta;
                    }
                    *s1 = b1 * *s1 + (1.0 - b1) * g;
                    *s2 = b2 * *s2 + (1.0 - b2) * g * g;
                    let m_hat = *s1 / (1.0 - b1.powi(t));
                    let v_hat = *s2 / (1.0 - b2.powi(t));
                    *theta -= lr * m_hat / (v_hat.sqrt() + eps);
                }
            }
        }
    }
}

/// Ten steps of `opt` on an 11-element vector (a vec4 and a tail) with a new gradient each step,
/// every step's parameters against PyTorch's rule in f64.
fn check_optimizer<B: Backend>(b: &B, side: &str, opt: &Optimizer) {
    let n = 11;
    let mut theta0 = uniform(&mut rng(1), n, 1.5);
    theta0[3] = 0.0;
    let mut torch = TorchOptim {
        theta: theta0.iter().map(|&v| f64::from(v)).collect(),
        s1: vec![0.0; n],
        s2: vec![0.0; n],
    };
    let mut theta = b.tensor(1, n, &theta0).unwrap();
    let (mut s1, mut s2) = (b.zeros(1, n).unwrap(), b.zeros(1, n).unwrap());
    for t in 1..=10 {
        // Gradients of both signs, growing and shrinking with t; element 5's is always 0 (only the
        // weight decay moves it).
        let mut g = uniform(&mut rng(100 + t as u64), n, 1.0);
        g.iter_mut()
            .for_each(|v| *v *= 0.5 + (t as f32 * 0.7).sin().abs());
        g[5] = 0.0;
        b.optimizer_step(
            &opt.step(t as u64),
            &mut theta,
            &b.tensor(1, n, &g).unwrap(),
            &mut s1,
            &mut s2,
        )
        .unwrap();
        torch.step(opt, t, &g);
        let got = read(b, &theta);
        for (i, (&got, &want)) in got.iter().zip(&torch.theta).enumerate() {
            let tol = 8.0 * f64::from(t) * U * (want.abs() + 1.0);
            let diff = (f64::from(got) - want).abs();
            if diff / tol > 0.2 {
                eprintln!(
                    "DIAG {side} {:?} {} t {t} ratio {}",
                    opt.kind,
                    opt.eps,
                    diff / tol
                );
            }
            assert!(
                diff <= tol,
                "{side} {opt:?} step {t} θ[{i}]: got {got}, want {want} (|diff| {diff:.2e} > {tol:.2e})"
            );
        }
    }
}

/// nabla's rules (`src/optim.rs`) are PyTorch's documented ones, on purpose and term by term; only a
/// default differs (PyTorch's Adagrad ε is 1e-10, nabla's 1e-8), and these tests set ε themselves.
///
/// `kind` with weight decay 0.1 and learning rate 0.05, with nabla's ε = 1e-8 and, for the adaptive
/// rules, with ε = 0.1 (large enough that where ε goes, inside or outside the square root, shows).
fn check_rule(kind: OptimizerKind) {
    let adaptive = !matches!(kind, OptimizerKind::Sgd | OptimizerKind::Momentum { .. });
    let epsilons: &[f32] = if adaptive { &[1e-8, 0.1] } else { &[1e-8] };
    for &eps in epsilons {
        let mut opt = Optimizer::new(kind, 0.05);
        assert_eq!(opt.eps, 1e-8, "nabla's default ε");
        opt.eps = eps;
        opt.weight_decay = 0.1;
        check_optimizer(&cpu(), "cpu", &opt);
        with_gpu(|gpu| check_optimizer(&*gpu, "gpu", &opt));
    }
}

#[test]
fn sgd_with_l2_weight_decay_matches_pytorch() {
    check_rule(OptimizerKind::Sgd);
}

#[test]
fn momentum_matches_pytorch() {
    check_rule(OptimizerKind::Momentum {
        momentum: 0.9,
        nesterov: false,
    });
}

#[test]
fn nesterov_momentum_matches_pytorch() {
    check_rule(OptimizerKind::Momentum {
        momentum: 0.9,
        nesterov: true,
    });
}

#[test]
fn adagrad_matches_pytorch() {
    check_rule(OptimizerKind::AdaGrad);
}

#[test]
fn rmsprop_matches_pytorch() {
    check_rule(OptimizerKind::RmsProp { decay: 0.99 });
}

#[test]
fn adam_with_coupled_l2_decay_matches_pytorch() {
    check_rule(OptimizerKind::Adam {
        beta1: 0.9,
        beta2: 0.999,
    });
}

#[test]
fn adamw_with_decoupled_decay_matches_pytorch() {
    check_rule(OptimizerKind::AdamW {
        beta1: 0.9,
        beta2: 0.999,
    });
}

// ---------------------------------------------------------------------------------------------------
// Batch normalisation

/// PyTorch's defaults (`torch.nn.BatchNorm1d`/`2d`): the newest batch's weight in the running averages,
/// and ε.
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;
/// Per channel: offset, spread, γ, β, initial running mean and variance. Channel 1's spread is small
/// enough (σ² ≈ 3e-5) that ε changes its normalisation by 15%.
const CHANNELS: [[f64; 6]; 3] = [
    [3.0, 1.0, 1.5, 0.2, 0.5, 2.0],
    [-1.0, 0.01, -0.7, 0.0, -0.25, 0.5],
    [0.0, 2.0, 0.3, -1.1, 1.0, 0.75],
];

/// A batch of `n` samples of 3 channels of `s` values each, `[n, 3·s]`.
fn batch(n: usize, s: usize, seed: u64) -> Vec<f32> {
    let noise = uniform(&mut rng(seed), n * 3 * s, 1.0);
    (0..n * 3 * s)
        .map(|k| {
            let [offset, spread, ..] = CHANNELS[(k / s) % 3];
            (offset + spread * f64::from(noise[k])) as f32
        })
        .collect()
}

/// Channel `c`'s values in a `[n, 3·s]` batch.
fn channel(x: &[f32], s: usize, c: usize) -> Vec<f64> {
    x.chunks(3 * s)
        .flat_map(|row| &row[c * s..(c + 1) * s])
        .map(|&v| f64::from(v))
        .collect()
}

/// A channel's batch statistics in f64, with the header's bounds on an f32 computation of them.
struct Stats {
    m: f64,
    mean: f64,
    /// Biased: Σ(x − μ)²/M.
    var: f64,
    /// Bound on the error of the mean.
    mean_err: f64,
    /// Bound on the relative error of the biased variance.
    var_rel: f64,
}

fn stats(v: &[f64]) -> Stats {
    let m = v.len() as f64;
    let mean = v.iter().sum::<f64>() / m;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m;
    let mean_err = (m + 1.0) * U * v.iter().map(|x| x.abs()).sum::<f64>() / m;
    let var_rel = (m + 4.0) * U + mean_err * mean_err / var;
    Stats {
        m,
        mean,
        var,
        mean_err,
        var_rel,
    }
}

/// (samples, positions per channel): dense features (S = 1), M = 2 included, and images (S = H·W).
const BN_SHAPES: [(usize, usize); 4] = [(300, 1), (2, 1), (4, 150), (3, 4)];

fn affine<B: Backend>(b: &B) -> B::Tensor {
    let row = |k: usize| CHANNELS.map(|ch| ch[k] as f32);
    b.tensor(2, 3, &[row(2), row(3)].concat()).unwrap()
}

/// Two training passes on two batches: after each, the running (mean, variance) against
/// `(1 − 0.1)·running + 0.1·(μ, σ²·M/(M − 1))` in f64.
fn check_running_averages<B: Backend>(b: &B, side: &str) {
    for (n, s) in BN_SHAPES {
        let affine = affine(b);
        let mut want: Vec<f64> = [4, 5]
            .iter()
            .flat_map(|&k| CHANNELS.map(|ch| ch[k]))
            .collect();
        let mut tol = [0.0f64; 6];
        let start: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        let mut running = b.tensor(2, 3, &start).unwrap();
        let (mut saved, mut y) = (b.zeros(2, 3).unwrap(), b.zeros(n, 3 * s).unwrap());
        for pass in 0..2 {
            let x = batch(n, s, 40 + pass);
            b.batch_norm_train(
                &b.tensor(n, 3 * s, &x).unwrap(),
                &affine,
                batch_norm::EPS,
                batch_norm::MOMENTUM,
                &mut saved,
                &mut running,
                &mut y,
            )
            .unwrap();
            for c in 0..3 {
                let st = stats(&channel(&x, s, c));
                let unbiased = st.var * st.m / (st.m - 1.0);
                want[c] = (1.0 - BN_MOMENTUM) * want[c] + BN_MOMENTUM * st.mean;
                want[3 + c] = (1.0 - BN_MOMENTUM) * want[3 + c] + BN_MOMENTUM * unbiased;
                // The previous error carried at weight 0.9, the batch's at 0.1, three roundings, ×2.
                tol[c] = 0.9 * tol[c] + 2.0 * (3.0 * U * want[c].abs() + 0.1 * st.mean_err);
                tol[3 + c] = 0.9 * tol[3 + c]
                    + 2.0 * (3.0 * U * want[3 + c] + 0.1 * unbiased * (st.var_rel + 3.0 * U));
            }
            let got = read(b, &running);
            for k in 0..6 {
                let diff = (f64::from(got[k]) - want[k]).abs();
                assert!(
                    diff <= tol[k],
                    "{side} N {n} S {s} pass {pass}: running {} of channel {}: got {}, want {} \
                     (|diff| {diff:.2e} > {:.2e})",
                    ["mean", "variance"][k / 3],
                    k % 3,
                    got[k],
                    want[k],
                    tol[k]
                );
            }
        }
    }
}

/// One training pass: `y = γ·(x − μ)/√(σ² + ε) + β` with the biased σ², and the saved `(μ, 1/√(σ² + ε))`,
/// against f64.
fn check_normalisation<B: Backend>(b: &B, side: &str) {
    for (n, s) in BN_SHAPES {
        let x = batch(n, s, 50);
        let (mut saved, mut running) = (b.zeros(2, 3).unwrap(), b.zeros(2, 3).unwrap());
        let mut ty = b.zeros(n, 3 * s).unwrap();
        b.batch_norm_train(
            &b.tensor(n, 3 * s, &x).unwrap(),
            &affine(b),
            batch_norm::EPS,
            batch_norm::MOMENTUM,
            &mut saved,
            &mut running,
            &mut ty,
        )
        .unwrap();
        let (y, saved) = (read(b, &ty), read(b, &saved));
        for (c, ch) in CHANNELS.iter().enumerate() {
            let (gamma, beta) = (ch[2], ch[3]);
            let st = stats(&channel(&x, s, c));
            let r = 1.0 / (st.var + BN_EPS).sqrt();
            let r_rel = 0.5 * st.var_rel * st.var / (st.var + BN_EPS) + 4.0 * U;
            let checks = [
                ("μ", f64::from(saved[c]), st.mean, 2.0 * st.mean_err),
                ("r", f64::from(saved[3 + c]), r, 2.0 * r_rel * r),
            ];
            for (what, got, want, tol) in checks {
                assert!(
                    (got - want).abs() <= tol,
                    "{side} N {n} S {s} channel {c}: saved {what} {got}, want {want} (tol {tol:.2e})"
                );
            }
            let values = channel(&x, s, c);
            let outputs = channel(&y, s, c);
            for (i, (&x, &got)) in values.iter().zip(&outputs).enumerate() {
                let x_hat = (x - st.mean) * r;
                let want = gamma * x_hat + beta;
                let tol = 2.0
                    * (gamma.abs() * r * (st.mean_err + U * (x - st.mean).abs())
                        + (gamma * x_hat).abs() * (r_rel + 3.0 * U)
                        + 2.0 * U * (want.abs() + beta.abs()));
                let diff = (got - want).abs();
                assert!(
                    diff <= tol,
                    "{side} N {n} S {s} channel {c} value {i}: y = {got}, want {want} \
                     (|diff| {diff:.2e} > {tol:.2e})"
                );
            }
        }
    }
}

#[test]
fn batch_norm_running_averages_use_momentum_0_1_and_the_unbiased_variance() {
    check_running_averages(&cpu(), "cpu");
    with_gpu(|gpu| check_running_averages(&*gpu, "gpu"));
}

#[test]
fn batch_norm_normalises_with_the_biased_batch_variance() {
    check_normalisation(&cpu(), "cpu");
    with_gpu(|gpu| check_normalisation(&*gpu, "gpu"));
}
