//! Batch normalisation: the GPU kernels against the CPU reference, and the backward pass against
//! central differences, on both backends.
//!
//! Tolerances (u = 2⁻²⁴). The CPU sums in f64, the GPU in f32 by a per-invocation stride then a tree, so
//! the GPU's sums err by at most M·u times the sum of magnitudes (M values per channel), and the
//! quantities built from them inherit that:
//! - mean: `u·Σ|x|`; variance: relative `2·M·u·(mean|x|/σ)²` (the centred squares are summed from
//!   values that carry the mean's error);
//! - `y = γ·x̂ + β` errs by `|γ|·(r·δμ + |x̂|·δr/r)` plus a few ulp of its terms;
//! - `dβ`, `dγ`: `M·u·Σ|dy|`, `M·u·Σ|dy·x̂|`; `dx` by `|γ|·r·(δdβ + |x̂|·δdγ)/M` plus a few ulp of its terms.
//!
//! - `r = 1/√(σ² + ε)` is a square root and a division, which Vulkan lets a device compute to about 7 ulp
//!   together (√ inherits 1/inversesqrt: 2 ulp plus a 2.5-ulp division; then 2.5 ulp more), so every
//!   quantity holding a freshly computed `r` carries a further relative `ROOT = 16u` (lavapipe is exact
//!   to rounding; real GPUs use the allowance). The backward pass reads `r` from `saved` instead.
//!
//! Each bound is doubled for margin; none is loose enough to hide a wrong formula (those err by O(1)).

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::numerical::gradient;
use nabla::{Backend, CpuBackend, GpuBackend};

const U: f64 = 5.960_464_5e-8;
/// Relative error Vulkan allows a device for `1/√v` (see the header).
const ROOT: f64 = 16.0 * U;

/// (rows, channels, spatial): one to many values per channel, channel counts off the workgroup size,
/// more values than a workgroup's invocations (the strided loop), and image-like channels.
const SHAPES: [(usize, usize, usize); 6] = [
    (2, 1, 1),
    (7, 3, 1),
    (100, 257, 1),
    (5, 3, 13),
    (33, 4, 49),
    (300, 2, 1),
];

struct Case {
    rows: usize,
    channels: usize,
    spatial: usize,
    x: Vec<f32>,
    affine: Vec<f32>,
    running: Vec<f32>,
    dy: Vec<f32>,
}

fn case((rows, channels, spatial): (usize, usize, usize), seed: u64) -> Case {
    let mut r = rng(seed);
    let n = rows * channels * spatial;
    // Off-centre values, so the two-pass variance matters.
    let x = uniform(&mut r, n, 2.0).iter().map(|v| v + 3.0).collect();
    let mut affine = uniform(&mut r, 2 * channels, 1.5);
    affine[..channels].iter_mut().for_each(|g| *g += 0.5);
    let mut running = uniform(&mut r, 2 * channels, 1.0);
    running[channels..]
        .iter_mut()
        .for_each(|v| *v = v.abs() + 0.5);
    let dy = uniform(&mut r, n, 1.0);
    Case {
        rows,
        channels,
        spatial,
        x,
        affine,
        running,
        dy,
    }
}

impl Case {
    fn cols(&self) -> usize {
        self.channels * self.spatial
    }

    fn m(&self) -> usize {
        self.rows * self.spatial
    }

    /// Channel `c`'s element offsets.
    fn channel(&self, c: usize) -> Vec<usize> {
        (0..self.rows)
            .flat_map(|n| {
                let start = (n * self.channels + c) * self.spatial;
                start..start + self.spatial
            })
            .collect()
    }

    /// The channel of element `i`.
    fn channel_of(&self, i: usize) -> usize {
        (i / self.spatial) % self.channels
    }
}

/// What one backend computes for a case: (y, saved, running after, dy→ daffine, dx, eval y).
struct Outputs {
    y: Vec<f32>,
    saved: Vec<f32>,
    running: Vec<f32>,
    daffine: Vec<f32>,
    dx: Vec<f32>,
    eval: Vec<f32>,
}

/// Runs the three ops; the backward pass starts from `saved` (the CPU's, so both sides differentiate
/// at the same statistics).
fn run<B: Backend>(b: &B, c: &Case, saved_for_backward: Option<&[f32]>) -> Outputs {
    let (rows, cols, ch) = (c.rows, c.cols(), c.channels);
    let x = b.tensor(rows, cols, &c.x).unwrap();
    let affine = b.tensor(2, ch, &c.affine).unwrap();
    let mut saved = b.zeros(2, ch).unwrap();
    let mut running = b.tensor(2, ch, &c.running).unwrap();
    let mut y = b.zeros(rows, cols).unwrap();
    b.batch_norm_train(&x, &affine, 1e-5, 0.1, &mut saved, &mut running, &mut y)
        .unwrap();
    let saved_values = read(b, &saved);
    let saved_in = b
        .tensor(2, ch, saved_for_backward.unwrap_or(&saved_values))
        .unwrap();
    let mut daffine = b.zeros(2, ch).unwrap();
    let mut dx = b.zeros(rows, cols).unwrap();
    let dy = b.tensor(rows, cols, &c.dy).unwrap();
    b.batch_norm_backward(&x, &dy, &affine, &saved_in, &mut daffine, &mut dx)
        .unwrap();
    let stats = b.tensor(2, ch, &c.running).unwrap();
    let mut eval = b.zeros(rows, cols).unwrap();
    b.batch_norm_eval(&x, &affine, &stats, 1e-5, &mut eval)
        .unwrap();
    Outputs {
        y: read(b, &y),
        saved: saved_values,
        running: read(b, &running),
        daffine: read(b, &daffine),
        dx: read(b, &dx),
        eval: read(b, &eval),
    }
}

#[track_caller]
fn within(what: &str, got: &[f32], want: &[f32], tol: &[f64]) {
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        let diff = (f64::from(g) - f64::from(w)).abs();
        assert!(
            g.is_finite() && diff <= 2.0 * t,
            "{what}[{i}]: got {g}, want {w} (|diff| {diff:e} > tol {:e})",
            2.0 * t
        );
    }
}

fn check_parity(gpu: &GpuBackend, c: &Case) {
    let want = run(&cpu(), c, None);
    let got = run(gpu, c, Some(&want.saved));
    let (ch, m) = (c.channels, c.m() as f64);
    let abs = |v: &[f32], idx: &[usize]| idx.iter().map(|&i| f64::from(v[i]).abs()).sum::<f64>();
    let mut tol_saved = vec![0.0; 2 * ch];
    let mut tol_y = vec![0.0; c.x.len()];
    let mut tol_daffine = vec![0.0; 2 * ch];
    let mut tol_dx = vec![0.0; c.x.len()];
    for k in 0..ch {
        let idx = c.channel(k);
        let (mean, r) = (f64::from(want.saved[k]), f64::from(want.saved[ch + k]));
        let sigma = 1.0 / r;
        let gamma = f64::from(c.affine[k]).abs();
        let d_mean = U * abs(&c.x, &idx);
        let rel_var = 2.0 * m * U * (abs(&c.x, &idx) / m / sigma).powi(2);
        tol_saved[k] = d_mean + 4.0 * U * mean.abs();
        tol_saved[ch + k] = r * (rel_var / 2.0 + ROOT);
        let x_hat = |i: usize| (f64::from(c.x[i]) - mean) * r;
        let dy_hat: Vec<f32> = idx.iter().map(|&i| c.dy[i] * x_hat(i) as f32).collect();
        let all: Vec<usize> = (0..idx.len()).collect();
        let d_dbeta = m * U * abs(&c.dy, &idx);
        let d_dgamma = m * U * abs(&dy_hat, &all);
        tol_daffine[k] = d_dgamma + 4.0 * U * f64::from(want.daffine[k]).abs();
        tol_daffine[ch + k] = d_dbeta + 4.0 * U * f64::from(want.daffine[ch + k]).abs();
        let (dbeta, dgamma) = (f64::from(want.daffine[ch + k]), f64::from(want.daffine[k]));
        for &i in &idx {
            let xh = x_hat(i).abs();
            tol_y[i] = gamma * (r * d_mean + xh * rel_var / 2.0)
                + gamma * xh * ROOT
                + 8.0 * U * (gamma * xh + f64::from(c.affine[ch + k]).abs())
                + 1e-7;
            let terms = f64::from(c.dy[i]).abs() + dbeta.abs() / m + xh * dgamma.abs() / m;
            tol_dx[i] = gamma * r * ((d_dbeta + xh * d_dgamma) / m + 8.0 * U * terms) + 1e-7;
        }
    }
    let shape = format!("{}×{}×{}", c.rows, c.channels, c.spatial);
    within(
        &format!("saved {shape}"),
        &got.saved,
        &want.saved,
        &tol_saved,
    );
    within(&format!("y {shape}"), &got.y, &want.y, &tol_y);
    // running = 0.9·old + 0.1·batch statistic: the statistic's error, scaled by 0.1 (and M/(M−1)).
    let tol_running: Vec<f64> = (0..2 * ch)
        .map(|k| {
            let stat = if k < ch {
                tol_saved[k]
            } else {
                // σ² = 1/r², so δσ²/σ² = 2·δr/r.
                let var = (1.0 / f64::from(want.saved[k])).powi(2);
                2.0 * var * tol_saved[k] / f64::from(want.saved[k]) * m / (m - 1.0)
            };
            0.1 * stat + 4.0 * U * f64::from(want.running[k]).abs()
        })
        .collect();
    within(
        &format!("running {shape}"),
        &got.running,
        &want.running,
        &tol_running,
    );
    within(
        &format!("daffine {shape}"),
        &got.daffine,
        &want.daffine,
        &tol_daffine,
    );
    within(&format!("dx {shape}"), &got.dx, &want.dx, &tol_dx);
    // Evaluation is element-wise: a few ulp of each term, and the root's allowance.
    let tol_eval: Vec<f64> = (0..c.x.len())
        .map(|i| {
            let k = c.channel_of(i);
            let r = 1.0 / (f64::from(c.running[ch + k]) + 1e-5).sqrt();
            let centred = (f64::from(c.x[i]) - f64::from(c.running[k])).abs();
            let gamma = f64::from(c.affine[k]).abs();
            gamma * centred * r * ROOT
                + 8.0
                    * U
                    * (gamma * (centred + f64::from(c.x[i]).abs()) * r
                        + f64::from(c.affine[ch + k]).abs())
                + 1e-7
        })
        .collect();
    within(&format!("eval {shape}"), &got.eval, &want.eval, &tol_eval);
}

#[test]
fn batch_norm_matches_cpu_on_odd_shapes() {
    with_gpu(|gpu| {
        for (s, shape) in SHAPES.into_iter().enumerate() {
            check_parity(gpu, &case(shape, s as u64));
        }
    });
}

#[test]
fn batch_norm_normalises_each_channel() {
    let b = cpu();
    let c = case((40, 3, 5), 9);
    let mut unit = c.affine.clone();
    unit[..3].fill(1.0);
    unit[3..].fill(0.0);
    let unit_case = Case { affine: unit, ..c };
    let out = run(&b, &unit_case, None);
    for k in 0..3 {
        let idx = unit_case.channel(k);
        let m = idx.len() as f64;
        let mean = idx.iter().map(|&i| f64::from(out.y[i])).sum::<f64>() / m;
        let var = idx
            .iter()
            .map(|&i| f64::from(out.y[i]).powi(2))
            .sum::<f64>()
            / m
            - mean * mean;
        assert!(mean.abs() < 1e-5, "channel {k} mean {mean}");
        assert!((var - 1.0).abs() < 1e-3, "channel {k} variance {var}");
    }
}

/// `L = Σ w ⊙ y` with fixed random weights `w` (= dy), so `dL/dy = w`: the backward pass's dx and
/// d(γ, β) against central differences of the training forward pass. Steps of 1e-2 on inputs of
/// order 1 keep truncation and f32 rounding under 1e-3 of the gradients' scale.
fn gradient_check<B: Backend>(b: &B) {
    let c = case((6, 3, 2), 21);
    let (rows, cols, ch) = (c.rows, c.cols(), c.channels);
    let loss = |x: &[f32], affine: &[f32]| {
        let mut saved = b.zeros(2, ch).unwrap();
        let mut running = b.zeros(2, ch).unwrap();
        let mut y = b.zeros(rows, cols).unwrap();
        b.batch_norm_train(
            &b.tensor(rows, cols, x).unwrap(),
            &b.tensor(2, ch, affine).unwrap(),
            1e-5,
            0.1,
            &mut saved,
            &mut running,
            &mut y,
        )
        .unwrap();
        read(b, &y)
            .iter()
            .zip(&c.dy)
            .map(|(&y, &w)| f64::from(y) * f64::from(w))
            .sum::<f64>()
    };
    let analytic = run(b, &c, None);
    let mut x = c.x.clone();
    let numeric_dx = gradient(|v| loss(v, &c.affine), &mut x, 1e-2);
    assert_close("dx", &analytic.dx, &numeric_dx, 2e-3, 2e-2);
    let mut affine = c.affine.clone();
    let numeric_daffine = gradient(|v| loss(&c.x, v), &mut affine, 1e-2);
    assert_close("d(γ, β)", &analytic.daffine, &numeric_daffine, 2e-3, 2e-2);
}

#[test]
fn batch_norm_backward_matches_central_differences_on_cpu() {
    gradient_check(&cpu());
}

#[test]
fn batch_norm_backward_matches_central_differences_on_gpu() {
    with_gpu(|gpu| gradient_check(gpu));
}

fn refusals<B: Backend>(b: &B) {
    let x = b.zeros(4, 6).unwrap();
    let mut y = b.zeros(4, 6).unwrap();
    let (mut saved, mut running) = (b.zeros(2, 4).unwrap(), b.zeros(2, 4).unwrap());
    // 6 features are not 4 channels.
    let affine = b.zeros(2, 4).unwrap();
    assert!(
        b.batch_norm_train(&x, &affine, 1e-5, 0.1, &mut saved, &mut running, &mut y)
            .is_err()
    );
    // One value per channel has no variance.
    let one = b.zeros(1, 4).unwrap();
    let mut y1 = b.zeros(1, 4).unwrap();
    let err = b
        .batch_norm_train(&one, &affine, 1e-5, 0.1, &mut saved, &mut running, &mut y1)
        .unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

#[test]
fn batch_norm_refuses_bad_shapes_on_both_backends() {
    refusals(&CpuBackend::new());
    with_gpu(|gpu| refusals(gpu));
}

#[test]
fn batch_norm_passes_nan_through_its_channel_only() {
    with_gpu(|gpu| {
        let mut c = case((8, 3, 1), 5);
        c.x[3] = f32::NAN; // row 1, channel 0
        let want = run(&cpu(), &c, None);
        let got = run(gpu, &c, Some(&want.saved));
        for (what, v) in [("cpu", &want.y), ("gpu", &got.y)] {
            for (i, y) in v.iter().enumerate() {
                assert_eq!(y.is_nan(), c.channel_of(i) == 0, "{what} y[{i}] = {y}");
            }
        }
    });
}
