//! GPU kernels against the CPU reference, op by op, on seeded random inputs: shapes that are not
//! multiples of any tile or workgroup, edge values, and NaN/Inf checks.
//!
//! Tolerances (f32, unit roundoff u = 2⁻²⁴ ≈ 6e-8):
//! - matmul: each result is a K-term dot product; both backends' errors are bounded by K·u·Σ|aₖbₖ| (the
//!   standard bound for any summation order), so they may differ by 2·K·u·Σ|aₖbₖ|, computed per element.
//! - element-wise transcendental ops: 2e-5 relative plus 1e-6 absolute. Vulkan lets `exp` err by a few
//!   ulp and `tanh` by more; 1e-6 absolute covers results that cancel to near zero. Derivatives get
//!   2e-6 absolute: GELU's and swish's sum two terms of opposite sign and size up to ~1, so the
//!   transcendentals' few-ulp errors survive the cancellation (seen: 1.02e-6 on GELU' near x = -3).
//! - reductions over B rows (losses, bias gradient): summation order differs (a tree on the GPU, f64 on
//!   the CPU), so rows·u relative to the sum of magnitudes.
//! - gather: `byte·scale + shift` is either the rounded product plus shift or one fused multiply-add
//!   (WGSL lets a device contract it); each element must equal one of the two exactly.
//! - tally (loss and correct-count totals): exact; counts and quarter steps are exact in f32.
//! - fused activation gradient in the matmul epilogue: the product's bound times |f'| ≤ λ_SELU < 1.1.

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::backend::{SampleFeatures, Samples};
use nabla::{
    Activation, Backend, Epilogue, GpuBackend, MatmulKernel, Optimizer, OptimizerKind, Shaped,
};

const U: f32 = 5.960_464_5e-8;

/// Odd sizes that straddle every tile (64), subgroup block (32) and workgroup (64, 256) edge.
const SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (7, 33, 5),
    (20, 9, 3),
    (33, 127, 65),
    (127, 785, 33),
    (65, 1, 130),
    (64, 64, 64),
    (128, 784, 128),
];

/// Runs `f` with every matmul kernel this adapter can run, each forced in turn, and the rule-based
/// choice; then restores the kernel that was set (other checks in the same test use the same backend).
fn for_each_matmul_kernel(gpu: &mut GpuBackend, mut f: impl FnMut(&GpuBackend)) {
    let before = gpu.matmul_kernel();
    let subgroups = gpu.context().subgroups_of(8);
    let kernels = MatmulKernel::ALL
        .into_iter()
        .filter(|&k| k != MatmulKernel::Subgroup8 || subgroups);
    for kernel in kernels {
        gpu.set_matmul_kernel(kernel).unwrap();
        f(gpu);
    }
    gpu.set_matmul_kernel(before).unwrap();
}

/// What a parity case puts in the product's epilogue.
#[derive(Clone, Copy, Debug)]
enum Epi {
    /// A bias (or not) and an activation.
    Forward(bool, Activation),
    /// The product times f'(z) computed from a random forward output y = f(z).
    Grad(Activation),
}

impl Epi {
    /// The backend epilogue, with `bias` and the forward output `y` as its operands.
    fn on<'a, T>(self, bias: &'a T, y: &'a T) -> Epilogue<'a, T> {
        match self {
            Epi::Forward(has_bias, act) => Epilogue::forward(has_bias.then_some(bias), act),
            Epi::Grad(act) => Epilogue::activation_grad(act, y),
        }
    }
}

const PLAIN: Epi = Epi::Forward(false, Activation::Identity);

/// op(A)·op(B) through both backends, with the per-element tolerance 2·K·u·Σ|a||b|·slope + 1e-6.
fn check_matmul(
    gpu: &GpuBackend,
    (m, k, n): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
    epi: Epi,
    seed: u64,
) {
    let cpu = cpu();
    let mut r = rng(seed);
    let a = uniform(&mut r, m * k, 1.0);
    let b = uniform(&mut r, k * n, 1.0);
    let bias_v = uniform(&mut r, n, 1.0);
    let grad_act = match epi {
        Epi::Grad(act) => act,
        Epi::Forward(..) => Activation::Identity,
    };
    let y: Vec<f32> = uniform(&mut r, m * n, 3.0)
        .into_iter()
        .map(|z| grad_act.forward(z))
        .collect();
    let (ar, ac) = if trans_a { (k, m) } else { (m, k) };
    let (br, bc) = if trans_b { (n, k) } else { (k, n) };

    let ca = cpu.tensor(ar, ac, &a).unwrap();
    let cb = cpu.tensor(br, bc, &b).unwrap();
    let cbias = cpu.tensor(1, n, &bias_v).unwrap();
    let cy = cpu.tensor(m, n, &y).unwrap();
    let mut cc = cpu.zeros(m, n).unwrap();
    cpu.matmul(&ca, trans_a, &cb, trans_b, epi.on(&cbias, &cy), &mut cc)
        .unwrap();
    // Σ|a||b| per element, for the error bound.
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let aa = cpu.tensor(ar, ac, &abs(&a)).unwrap();
    let ab = cpu.tensor(br, bc, &abs(&b)).unwrap();
    let mut mag = cpu.zeros(m, n).unwrap();
    cpu.matmul(&aa, trans_a, &ab, trans_b, Epilogue::none(), &mut mag)
        .unwrap();

    let ga = gpu.tensor(ar, ac, &a).unwrap();
    let gb = gpu.tensor(br, bc, &b).unwrap();
    let gbias = gpu.tensor(1, n, &bias_v).unwrap();
    let gy = gpu.tensor(m, n, &y).unwrap();
    let mut gc = gpu.zeros(m, n).unwrap();
    gpu.matmul(&ga, trans_a, &gb, trans_b, epi.on(&gbias, &gy), &mut gc)
        .unwrap();
    let got = read(gpu, &gc);
    let want = cc.data();
    let label = format!(
        "matmul {:?} {m}×{k}×{n} ta={trans_a} tb={trans_b} {epi:?}",
        gpu.matmul_kernel()
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 2.0 * k as f32 * U * (mag.data()[i] + 1.0) * 1.1 + 1e-6 + 2e-5 * w.abs();
        assert!(g.is_finite(), "{label}[{i}] = {g}");
        assert!(
            (g - w).abs() <= tol,
            "{label}[{i}]: got {g}, want {w}, tol {tol}"
        );
    }
}

#[test]
fn matmul_matches_cpu_for_every_transpose_and_odd_shapes() {
    with_gpu(|gpu| {
        for_each_matmul_kernel(gpu, |gpu| {
            for (s, &shape) in SHAPES.iter().enumerate() {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    check_matmul(gpu, shape, ta, tb, PLAIN, s as u64);
                }
            }
        });
    });
}

#[test]
fn matmul_epilogue_fuses_bias_and_activation() {
    with_gpu(|gpu| {
        for_each_matmul_kernel(gpu, |gpu| {
            for act in [
                Activation::Relu,
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Gelu,
            ] {
                check_matmul(gpu, (33, 70, 45), false, false, Epi::Forward(true, act), 11);
                // Long K over few tiles: the shape the rules split.
                check_matmul(
                    gpu,
                    (70, 600, 33),
                    false,
                    false,
                    Epi::Forward(true, act),
                    13,
                );
            }
            let identity_bias = Epi::Forward(true, Activation::Identity);
            check_matmul(gpu, (100, 10, 7), true, false, identity_bias, 12);
        });
    });
}

#[test]
fn matmul_epilogue_fuses_the_activation_gradient() {
    with_gpu(|gpu| {
        for_each_matmul_kernel(gpu, |gpu| {
            for act in Activation::ALL
                .into_iter()
                .filter(|a| a.has_output_derivative())
            {
                // dX = dY·Wᵀ ⊙ f', as backprop computes it, at an odd shape and a split one.
                check_matmul(gpu, (37, 70, 45), false, true, Epi::Grad(act), 21);
                check_matmul(gpu, (65, 530, 20), false, true, Epi::Grad(act), 22);
            }
        });
    });
}

/// The tiled kernel's rules split a long K over few output tiles (two launches: partials, then their
/// reduction) and leave a short one whole (one launch); forced, split-K splits both.
#[test]
fn the_tiled_kernels_rules_split_long_products_with_few_tiles() {
    with_gpu(|gpu| {
        let before = gpu.matmul_kernel();
        let launches = |gpu: &GpuBackend, (m, k, n): (usize, usize, usize)| {
            let (a, b) = (gpu.zeros(m, k).unwrap(), gpu.zeros(k, n).unwrap());
            let mut c = gpu.zeros(m, n).unwrap();
            let start = gpu.kernel_launches();
            gpu.matmul(&a, false, &b, false, Epilogue::none(), &mut c)
                .unwrap();
            gpu.kernel_launches() - start
        };
        gpu.set_matmul_kernel(MatmulKernel::Tiled).unwrap();
        assert_eq!(launches(gpu, (70, 600, 33)), 2);
        assert_eq!(launches(gpu, (33, 70, 45)), 1);
        gpu.set_matmul_kernel(MatmulKernel::SplitK).unwrap();
        assert_eq!(launches(gpu, (33, 70, 45)), 2);
        gpu.set_matmul_kernel(MatmulKernel::Unsplit).unwrap();
        assert_eq!(launches(gpu, (70, 600, 33)), 1);
        gpu.set_matmul_kernel(before).unwrap();
    });
}

#[test]
fn an_activation_without_an_output_derivative_is_refused_in_the_epilogue() {
    with_gpu(|gpu| {
        let cpu = cpu();
        let err = |e: nabla::Error| e.to_string();
        let (a, y) = (gpu.zeros(4, 4).unwrap(), gpu.zeros(4, 4).unwrap());
        let mut c = gpu.zeros(4, 4).unwrap();
        let epi = Epilogue::activation_grad(Activation::Gelu, &y);
        let gpu_err = gpu.matmul(&a, false, &a, false, epi, &mut c).map_err(err);
        let (a, y) = (cpu.zeros(4, 4).unwrap(), cpu.zeros(4, 4).unwrap());
        let mut c = cpu.zeros(4, 4).unwrap();
        let epi = Epilogue::activation_grad(Activation::Gelu, &y);
        let cpu_err = cpu.matmul(&a, false, &a, false, epi, &mut c).map_err(err);
        assert!(
            gpu_err.as_ref().unwrap_err().contains("derivative"),
            "{gpu_err:?}"
        );
        assert_eq!(gpu_err, cpu_err);
    });
}

#[test]
fn matmul_is_deterministic() {
    with_gpu(|gpu| {
        let mut r = rng(3);
        let a = gpu
            .tensor(65, 600, &uniform(&mut r, 65 * 600, 1.0))
            .unwrap();
        let b = gpu
            .tensor(600, 70, &uniform(&mut r, 600 * 70, 1.0))
            .unwrap();
        // Same kernel, same inputs: bit for bit, the split-K reduction included.
        for_each_matmul_kernel(gpu, |gpu| {
            let mut c = gpu.zeros(65, 70).unwrap();
            gpu.matmul(&a, false, &b, false, Epilogue::none(), &mut c)
                .unwrap();
            let first = read(gpu, &c);
            gpu.matmul(&a, false, &b, false, Epilogue::none(), &mut c)
                .unwrap();
            assert_eq!(first, read(gpu, &c), "{:?}", gpu.matmul_kernel());
        });
    });
}

/// Random normals ×3 plus the edges every activation must survive.
fn activation_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut v = uniform(&mut rng(seed), n, 4.0);
    v.extend([
        0.0, -0.0, 1e-4, -1e-4, 1e-30, -1e-30, 0.5, -0.5, 9.0, -9.0, 20.0, -20.0, 88.0, -88.0,
        1000.0, -1000.0,
    ]);
    v
}

/// Dropout draws its mask from integers alone, so both backends drop the same elements and scale the
/// kept ones by the same rounded factor: exact, NaN included where kept.
#[test]
fn dropout_drops_the_same_elements_on_both_backends() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (s, n) in [1usize, 7, 63, 65, 1000, 70_001].into_iter().enumerate() {
            let mut x = uniform(&mut rng(s as u64), n, 3.0);
            x[n / 2] = f32::NAN;
            for p in [0.0, 0.3, 0.9] {
                let key = 0x1234_5678_9abc_def0 ^ s as u64;
                let mut cy = cpu.zeros(1, n).unwrap();
                let mut gy = gpu.zeros(1, n).unwrap();
                cpu.dropout(p, key, &cpu.tensor(1, n, &x).unwrap(), &mut cy)
                    .unwrap();
                gpu.dropout(p, key, &gpu.tensor(1, n, &x).unwrap(), &mut gy)
                    .unwrap();
                let got = read(gpu, &gy);
                for (i, (&g, &w)) in got.iter().zip(cy.data()).enumerate() {
                    assert!(
                        g == w || (g.is_nan() && w.is_nan()),
                        "dropout p {p} n {n} [{i}]: got {g}, want {w}"
                    );
                }
                if n == 70_001 {
                    let dropped = got.iter().filter(|&&v| v == 0.0).count() as f64;
                    let (expected, sd) = (f64::from(p) * n as f64, (n as f64 * 0.25).sqrt());
                    assert!(
                        (dropped - expected).abs() < 5.0 * sd,
                        "p {p}: {dropped} dropped"
                    );
                }
                if p == 0.0 {
                    let same = got
                        .iter()
                        .zip(&x)
                        .all(|(g, x)| g == x || (g.is_nan() && x.is_nan()));
                    assert!(same, "p = 0 copies");
                }
            }
        }
        let (x, mut y) = (gpu.zeros(2, 2).unwrap(), gpu.zeros(2, 2).unwrap());
        assert!(gpu.dropout(1.0, 0, &x, &mut y).is_err());
        assert!(gpu.dropout(f32::NAN, 0, &x, &mut y).is_err());
    });
}

#[test]
fn activations_forward_and_backward_match_cpu() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (s, n) in [1usize, 7, 63, 65, 1000, 70_001].into_iter().enumerate() {
            let x = activation_inputs(n, s as u64);
            let dy = uniform(&mut rng(100 + s as u64), x.len(), 1.0);
            let len = x.len();
            let (cx, cdy) = (
                cpu.tensor(1, len, &x).unwrap(),
                cpu.tensor(1, len, &dy).unwrap(),
            );
            let (gx, gdy) = (
                gpu.tensor(1, len, &x).unwrap(),
                gpu.tensor(1, len, &dy).unwrap(),
            );
            for act in Activation::ALL {
                let mut cy = cpu.zeros(1, len).unwrap();
                let mut gy = gpu.zeros(1, len).unwrap();
                cpu.activation_forward(act, &cx, &mut cy).unwrap();
                gpu.activation_forward(act, &gx, &mut gy).unwrap();
                assert_close(
                    &format!("{act:?} forward"),
                    &read(gpu, &gy),
                    cy.data(),
                    1e-6,
                    2e-5,
                );
                cpu.activation_backward(act, &cx, &cdy, &mut cy).unwrap();
                gpu.activation_backward(act, &gx, &gdy, &mut gy).unwrap();
                assert_close(
                    &format!("{act:?} backward"),
                    &read(gpu, &gy),
                    cy.data(),
                    2e-6,
                    2e-5,
                );
            }
        }
    });
}

#[test]
fn softmax_matches_cpu_and_survives_huge_logits() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (rows, cols) in [(1, 1), (3, 7), (70, 10), (5, 33), (2, 1000)] {
            let mut x = uniform(&mut rng(cols as u64), rows * cols, 5.0);
            x[0] = 1000.0;
            if x.len() > 1 {
                x[1] = -1000.0;
            }
            let cx = cpu.tensor(rows, cols, &x).unwrap();
            let gx = gpu.tensor(rows, cols, &x).unwrap();
            let mut cy = cpu.zeros(rows, cols).unwrap();
            let mut gy = gpu.zeros(rows, cols).unwrap();
            cpu.softmax(&cx, &mut cy).unwrap();
            gpu.softmax(&gx, &mut gy).unwrap();
            assert_close("softmax", &read(gpu, &gy), cy.data(), 1e-7, 1e-5);
        }
    });
}

fn scalar<B: Backend>(b: &B, t: &B::Tensor) -> f32 {
    read(b, t)[0]
}

#[test]
fn softmax_cross_entropy_matches_cpu() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (rows, cols) in [(1, 1), (1, 10), (7, 10), (257, 10), (300, 33)] {
            let mut r = rng(rows as u64);
            let mut z = uniform(&mut r, rows * cols, 6.0);
            z[0] = 1000.0; // a saturated row must give a finite loss
            let labels: Vec<u32> = (0..rows).map(|i| ((i * 7 + 3) % cols) as u32).collect();
            let (cz, cl) = (
                cpu.tensor(rows, cols, &z).unwrap(),
                cpu.indices(&labels).unwrap(),
            );
            let (gz, gl) = (
                gpu.tensor(rows, cols, &z).unwrap(),
                gpu.indices(&labels).unwrap(),
            );
            let (mut cd, mut cl1) = (cpu.zeros(rows, cols).unwrap(), cpu.zeros(1, 1).unwrap());
            let (mut gd, mut gl1) = (gpu.zeros(rows, cols).unwrap(), gpu.zeros(1, 1).unwrap());
            cpu.softmax_cross_entropy(&cz, &cl, &mut cd, &mut cl1)
                .unwrap();
            gpu.softmax_cross_entropy(&gz, &gl, &mut gd, &mut gl1)
                .unwrap();
            let want = scalar(&cpu, &cl1);
            assert!(want.is_finite());
            assert_close(
                "xent loss",
                &[scalar(gpu, &gl1)],
                &[want],
                1e-6,
                rows as f32 * U + 1e-5,
            );
            // dz = (p - onehot)/B: Vulkan lets exp err by (3 + 2|x|) ulp, ≤ 15 ulp ≈ 1e-6 relative for
            // logits in ±6, about doubled by the normalisation, so p may move 2e-6 (4e-6 with margin)
            // and dz that over B, however small dz itself is.
            let grad_atol = (4e-6 / rows as f32).max(1e-7);
            assert_close("xent grad", &read(gpu, &gd), cd.data(), grad_atol, 1e-5);
        }
    });
}

#[test]
fn out_of_range_label_gives_nan_loss_on_both() {
    with_gpu(|gpu| {
        let cpu = cpu();
        let z = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let labels = [1u32, 3];
        let (mut cd, mut cl) = (cpu.zeros(2, 3).unwrap(), cpu.zeros(1, 1).unwrap());
        let (mut gd, mut gl) = (gpu.zeros(2, 3).unwrap(), gpu.zeros(1, 1).unwrap());
        let (cz, ci) = (cpu.tensor(2, 3, &z).unwrap(), cpu.indices(&labels).unwrap());
        let (gz, gi) = (gpu.tensor(2, 3, &z).unwrap(), gpu.indices(&labels).unwrap());
        cpu.softmax_cross_entropy(&cz, &ci, &mut cd, &mut cl)
            .unwrap();
        gpu.softmax_cross_entropy(&gz, &gi, &mut gd, &mut gl)
            .unwrap();
        assert!(scalar(&cpu, &cl).is_nan());
        assert!(scalar(gpu, &gl).is_nan());
    });
}

#[test]
fn binary_cross_entropy_and_squared_error_match_cpu() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (rows, cols) in [(1, 1), (7, 3), (300, 5)] {
            let mut r = rng(rows as u64 + 50);
            let mut z = uniform(&mut r, rows * cols, 8.0);
            z[0] = -1000.0;
            let t: Vec<f32> = uniform(&mut r, rows * cols, 0.5)
                .iter()
                .map(|v| v + 0.5)
                .collect();
            let (cz, ct) = (
                cpu.tensor(rows, cols, &z).unwrap(),
                cpu.tensor(rows, cols, &t).unwrap(),
            );
            let (gz, gt) = (
                gpu.tensor(rows, cols, &z).unwrap(),
                gpu.tensor(rows, cols, &t).unwrap(),
            );
            let n = (rows * cols) as f32;
            for bce in [true, false] {
                let (mut cd, mut cl) = (cpu.zeros(rows, cols).unwrap(), cpu.zeros(1, 1).unwrap());
                let (mut gd, mut gl) = (gpu.zeros(rows, cols).unwrap(), gpu.zeros(1, 1).unwrap());
                if bce {
                    cpu.sigmoid_binary_cross_entropy(&cz, &ct, &mut cd, &mut cl)
                        .unwrap();
                    gpu.sigmoid_binary_cross_entropy(&gz, &gt, &mut gd, &mut gl)
                        .unwrap();
                } else {
                    cpu.mean_squared_error(&cz, &ct, &mut cd, &mut cl).unwrap();
                    gpu.mean_squared_error(&gz, &gt, &mut gd, &mut gl).unwrap();
                }
                let what = if bce { "bce" } else { "mse" };
                let want = scalar(&cpu, &cl);
                assert_close(what, &[scalar(gpu, &gl)], &[want], 1e-6, n * U + 2e-5);
                // BCE's σ(z) carries exp's error, (3 + 2|z|) ulp ≤ 19 ulp ≈ 1.2e-6 relative for |z| ≤ 8
                // (2e-6 with margin), divided by B.
                let grad_atol = (2e-6 / rows as f32).max(1e-7);
                assert_close(what, &read(gpu, &gd), cd.data(), grad_atol, 1e-5);
            }
        }
    });
}

#[test]
fn tally_counts_match_exactly() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for rows in [1usize, 9, 257, 1000] {
            let mut z = uniform(&mut rng(rows as u64), rows * 10, 1.0);
            // A tie between columns 2 and 7 of row 0: the first maximum counts.
            z[2] = 5.0;
            z[7] = 5.0;
            let labels: Vec<u32> = (0..rows)
                .map(|i| (i % 10) as u32 + u32::from(i == 0) * 2)
                .collect();
            let hits = z
                .chunks(10)
                .zip(&labels)
                .filter(|(row, t)| nabla::cpu::argmax(row) == **t as usize)
                .count() as f32;
            assert!(hits >= 1.0, "row 0 is a hit");
            // The totals add the loss and the count on top of what they hold, step after step.
            let (cz, gz) = (
                cpu.tensor(rows, 10, &z).unwrap(),
                gpu.tensor(rows, 10, &z).unwrap(),
            );
            let gl = gpu.indices(&labels).unwrap();
            let (closs, gloss) = (
                cpu.tensor(1, 1, &[0.25]).unwrap(),
                gpu.tensor(1, 1, &[0.25]).unwrap(),
            );
            let mut ct = cpu.tensor(1, 2, &[1.5, 3.0]).unwrap();
            let mut gt = gpu.tensor(1, 2, &[1.5, 3.0]).unwrap();
            for _ in 0..3 {
                cpu.tally(&cz, &labels, &closs, &mut ct).unwrap();
                gpu.tally(&gz, &gl, &gloss, &mut gt).unwrap();
            }
            assert_eq!(ct.data(), [1.5 + 3.0 * 0.25, 3.0 + 3.0 * hits]);
            assert_eq!(read(gpu, &gt), ct.data());
            let mut wrong = gpu.zeros(1, 1).unwrap();
            assert!(gpu.tally(&gz, &gl, &gloss, &mut wrong).is_err());
        }
    });
}

#[test]
fn bias_grad_axpy_and_scale_match_cpu() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (rows, cols) in [(1, 1), (7, 65), (300, 10), (300, 233)] {
            let dy = uniform(&mut rng(cols as u64), rows * cols, 1.0);
            let mut cdb = cpu.zeros(1, cols).unwrap();
            cpu.bias_grad(&cpu.tensor(rows, cols, &dy).unwrap(), &mut cdb)
                .unwrap();
            // Every layout of the column sums: whole columns, and slices summed by trees of each depth.
            let default_phases = gpu.bias_grad_phases();
            for phases in [1, 2, 4, 8, 16] {
                gpu.set_bias_grad_phases(phases).unwrap();
                let mut gdb = gpu.zeros(1, cols).unwrap();
                gpu.bias_grad(&gpu.tensor(rows, cols, &dy).unwrap(), &mut gdb)
                    .unwrap();
                assert_close(
                    &format!("bias grad, {phases} phases"),
                    &read(gpu, &gdb),
                    cdb.data(),
                    rows as f32 * U * 2.0,
                    0.0,
                );
            }
            assert!(gpu.set_bias_grad_phases(3).is_err());
            gpu.set_bias_grad_phases(default_phases).unwrap();

            let x = uniform(&mut rng(7), rows * cols, 2.0);
            let (cx, gx) = (
                cpu.tensor(rows, cols, &x).unwrap(),
                gpu.tensor(rows, cols, &x).unwrap(),
            );
            let (mut cy, mut gy) = (
                cpu.tensor(rows, cols, &dy).unwrap(),
                gpu.tensor(rows, cols, &dy).unwrap(),
            );
            cpu.axpy(-0.3, &cx, &mut cy).unwrap();
            gpu.axpy(-0.3, &gx, &mut gy).unwrap();
            cpu.scale(1.7, &mut cy).unwrap();
            gpu.scale(1.7, &mut gy).unwrap();
            assert_close("axpy+scale", &read(gpu, &gy), cy.data(), 1e-7, 1e-6);
        }
    });
}

#[test]
fn every_optimizer_matches_cpu_over_several_steps() {
    let kinds = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        OptimizerKind::AdaGrad,
        OptimizerKind::RmsProp { decay: 0.99 },
        OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
        },
        OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
        },
    ];
    with_gpu(|gpu| {
        let cpu = cpu();
        // 70 001 parameters span many workgroups and split the CPU's loop across threads; states a
        // rule does not use are stored 1×1, as the model stores them.
        for n in [130, 70_001] {
            for kind in kinds {
                let mut opt = Optimizer::new(kind, 0.01);
                opt.weight_decay = 0.01;
                let state_len = |i| if opt.state_count() > i { n } else { 1 };
                let p0 = uniform(&mut rng(1), n, 1.0);
                let (mut cp, mut gp) = (
                    cpu.tensor(1, n, &p0).unwrap(),
                    gpu.tensor(1, n, &p0).unwrap(),
                );
                let (mut c1, mut c2) = (
                    cpu.zeros(1, state_len(0)).unwrap(),
                    cpu.zeros(1, state_len(1)).unwrap(),
                );
                let (mut g1, mut g2) = (
                    gpu.zeros(1, state_len(0)).unwrap(),
                    gpu.zeros(1, state_len(1)).unwrap(),
                );
                for t in 1..=5 {
                    let g = uniform(&mut rng(10 + t), n, 1.0);
                    let step = opt.step(t);
                    cpu.optimizer_step(
                        &step,
                        &mut cp,
                        &cpu.tensor(1, n, &g).unwrap(),
                        &mut c1,
                        &mut c2,
                    )
                    .unwrap();
                    gpu.optimizer_step(
                        &step,
                        &mut gp,
                        &gpu.tensor(1, n, &g).unwrap(),
                        &mut g1,
                        &mut g2,
                    )
                    .unwrap();
                }
                assert_close(&format!("{kind:?}"), &read(gpu, &gp), cp.data(), 1e-6, 1e-5);
                assert_close(
                    &format!("{kind:?} state"),
                    &read(gpu, &g1),
                    c1.data(),
                    1e-6,
                    1e-5,
                );
                assert_close(
                    &format!("{kind:?} second state"),
                    &read(gpu, &g2),
                    c2.data(),
                    1e-6,
                    1e-5,
                );
            }
        }
    });
}

#[test]
fn gather_builds_the_same_batch() {
    with_gpu(|gpu| {
        let cpu = cpu();
        // 13 bytes per sample straddle u32 words (the general path); 784 takes whole words (the
        // vec4 path) and spans several workgroups.
        for features in [13, 784] {
            let samples = 37;
            let pixels: Vec<u8> = (0..samples * features)
                .map(|i| (i * 31 % 256) as u8)
                .collect();
            let labels: Vec<u32> = (0..samples).map(|i| (i % 10) as u32).collect();
            let set = Samples::bytes(&pixels, features, &labels, 1.0 / 255.0, -0.5);
            let cset = cpu.dataset(&set).unwrap();
            let gset = gpu.dataset(&set).unwrap();
            let rows = 9;
            // Reversed, then in order: the CPU reads consecutive samples in place.
            let reversed: Vec<u32> = (0..samples as u32).rev().collect();
            let in_order: Vec<u32> = (0..samples as u32).collect();
            for (order, offset) in [&reversed, &in_order]
                .into_iter()
                .flat_map(|o| [0, 5, samples - rows].map(|offset| (o, offset)))
            {
                let (co, go) = (cpu.indices(order).unwrap(), gpu.indices(order).unwrap());
                let (mut cx, mut cy) = (
                    cpu.zeros(rows, features).unwrap(),
                    cpu.indices(&[0; 9]).unwrap(),
                );
                let (mut gx, mut gy) = (
                    gpu.zeros(rows, features).unwrap(),
                    gpu.indices(&[0; 9]).unwrap(),
                );
                cpu.gather(&cset, &co, offset, &mut cx, &mut cy).unwrap();
                gpu.gather(&gset, &go, offset, &mut gx, &mut gy).unwrap();
                let got = read(gpu, &gx);
                for (i, (&g, &w)) in got.iter().zip(cx.data()).enumerate() {
                    let (row, col) = (i / features, i % features);
                    let byte = f32::from(pixels[order[offset + row] as usize * features + col]);
                    let fused = byte.mul_add(1.0 / 255.0, -0.5);
                    assert_eq!(w, byte * (1.0 / 255.0) - 0.5, "the CPU's gather[{i}]");
                    assert!(
                        g == w || g == fused,
                        "gather[{i}]: got {g}, want {w} (or {fused} fused)"
                    );
                }
                assert_eq!(gpu.read_indices(&gy).unwrap(), cy);
            }
            let mut gx = gpu.zeros(rows, features).unwrap();
            let mut gy = gpu.indices(&[0; 9]).unwrap();
            let go = gpu.indices(&reversed).unwrap();
            assert!(
                gpu.gather(&gset, &go, samples - rows + 1, &mut gx, &mut gy)
                    .is_err()
            );
        }
    });
}

/// An order entry past the set (a caller's bug the GPU cannot report without a readback) gives a zero
/// row and the label 0xFFFFFFFF, which the losses turn into NaN, on both GPU gather kernels; the CPU
/// reference reports it as an error.
#[test]
fn gather_past_the_set_gives_zeros_and_a_poisoned_label() {
    with_gpu(|gpu| {
        for features in [13, 784] {
            let samples = 5;
            let pixels = vec![200u8; samples * features];
            let labels = vec![3u32; samples];
            let order = [0u32, 99, 4];
            let set = Samples::bytes(&pixels, features, &labels, 1.0, 0.0);
            let gset = gpu.dataset(&set).unwrap();
            let mut x = gpu.zeros(3, features).unwrap();
            let mut y = gpu.indices(&[0; 3]).unwrap();
            gpu.gather(&gset, &gpu.indices(&order).unwrap(), 0, &mut x, &mut y)
                .unwrap();
            let x = read(gpu, &x);
            assert!(x[..features].iter().all(|&v| v == 200.0));
            assert!(x[features..2 * features].iter().all(|&v| v == 0.0));
            assert!(x[2 * features..].iter().all(|&v| v == 200.0));
            assert_eq!(gpu.read_indices(&y).unwrap(), [3, u32::MAX, 3]);

            let cpu = cpu();
            let cset = cpu.dataset(&set).unwrap();
            let mut cx = cpu.zeros(3, features).unwrap();
            let mut cy = cpu.indices(&[0; 3]).unwrap();
            let err = cpu
                .gather(&cset, &cpu.indices(&order).unwrap(), 0, &mut cx, &mut cy)
                .unwrap_err();
            assert!(err.to_string().contains("past the set"), "{err}");
        }
    });
}

/// Float features and float targets are copied, not computed, so the GPU's batch must equal the CPU's
/// bit for bit, at widths that are not multiples of 4 or of the workgroup, with NaN and ±∞ passing
/// through; indices past the set give zero rows and the label 0xFFFFFFFF on the GPU.
#[test]
fn gather_of_floats_and_targets_copies_rows_exactly() {
    with_gpu(|gpu| {
        let cpu = cpu();
        for (features, targets) in [(1, 1), (11, 3), (67, 2)] {
            let samples = 41;
            let mut values: Vec<f32> = (0..samples * features)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            values[3] = f32::NAN;
            values[features + 1 - 1] = f32::INFINITY;
            let labels: Vec<u32> = (0..samples).map(|i| (i % 4) as u32).collect();
            let t: Vec<f32> = (0..samples * targets)
                .map(|i| i as f32 * 0.25 - 3.0)
                .collect();
            let set = Samples {
                width: features,
                features: SampleFeatures::Floats(&values),
                labels: &labels,
                target_width: targets,
                targets: &t,
            };
            let (cset, gset) = (cpu.dataset(&set).unwrap(), gpu.dataset(&set).unwrap());
            let order: Vec<u32> = (0..samples as u32)
                .map(|i| (i * 7) % samples as u32)
                .collect();
            let (co, go) = (cpu.indices(&order).unwrap(), gpu.indices(&order).unwrap());
            let rows = 13;
            for offset in [0, 9, samples - rows] {
                let mut cx = cpu.zeros(rows, features).unwrap();
                let mut cy = cpu.indices(&vec![0; rows]).unwrap();
                let mut ct = cpu.zeros(rows, targets).unwrap();
                let mut gx = gpu.zeros(rows, features).unwrap();
                let mut gy = gpu.indices(&vec![0; rows]).unwrap();
                let mut gt = gpu.zeros(rows, targets).unwrap();
                cpu.gather(&cset, &co, offset, &mut cx, &mut cy).unwrap();
                cpu.gather_targets(&cset, &co, offset, &mut ct).unwrap();
                gpu.gather(&gset, &go, offset, &mut gx, &mut gy).unwrap();
                gpu.gather_targets(&gset, &go, offset, &mut gt).unwrap();
                for (r, &s) in order[offset..offset + rows].iter().enumerate() {
                    let s = s as usize;
                    let want = &values[s * features..(s + 1) * features];
                    let row = &cx.data()[r * features..(r + 1) * features];
                    assert!(
                        row.iter()
                            .zip(want)
                            .all(|(a, b)| a.to_bits() == b.to_bits())
                    );
                    assert_eq!(cy[r], labels[s]);
                    assert_eq!(
                        &ct.data()[r * targets..(r + 1) * targets],
                        &t[s * targets..(s + 1) * targets]
                    );
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&read(gpu, &gx)),
                    bits(cx.data()),
                    "features {features}"
                );
                assert_eq!(gpu.read_indices(&gy).unwrap(), cy);
                assert_eq!(bits(&read(gpu, &gt)), bits(ct.data()), "targets {targets}");
            }
            let past = gpu.indices(&[0, 999]).unwrap();
            let mut gx = gpu.zeros(2, features).unwrap();
            let mut gy = gpu.indices(&[7, 7]).unwrap();
            let mut gt = gpu.zeros(2, targets).unwrap();
            gpu.gather(&gset, &past, 0, &mut gx, &mut gy).unwrap();
            gpu.gather_targets(&gset, &past, 0, &mut gt).unwrap();
            assert!(read(gpu, &gx)[features..].iter().all(|&v| v == 0.0));
            assert_eq!(gpu.read_indices(&gy).unwrap(), [labels[0], u32::MAX]);
            assert!(read(gpu, &gt)[targets..].iter().all(|&v| v == 0.0));
            // A set without float targets has none to gather, on either backend.
            let no_targets = Samples {
                target_width: 0,
                targets: &[],
                ..set
            };
            let mut ct = cpu.zeros(2, 1).unwrap();
            let c = cpu.dataset(&no_targets).unwrap();
            assert!(
                cpu.gather_targets(&c, &cpu.indices(&[0, 1]).unwrap(), 0, &mut ct)
                    .is_err()
            );
            let g = gpu.dataset(&no_targets).unwrap();
            assert!(gpu.gather_targets(&g, &past, 0, &mut gt).is_err());
        }
    });
}

/// One logit is a binary classifier: the tally counts `[z > 0] = label` on both backends, with z = 0
/// and NaN counted as class 0. Counts are integers, so the two must agree exactly.
#[test]
fn tally_of_one_logit_thresholds_at_zero() {
    let logits = [0.5f32, -0.5, 0.0, f32::NAN, 3.0, -2.0, 1e-30];
    let labels = [1u32, 0, 0, 0, 0, 1, 1];
    // Right: 0.5→1 ✓, −0.5→0 ✓, 0→0 ✓, NaN→0 ✓, 3→1 ✗, −2→0 ✗, 1e-30→1 ✓.
    let expected = 5.0;
    fn tally_totals<B: Backend>(b: &B, logits: &[f32], labels: &[u32]) -> Vec<f32> {
        let z = b.tensor(logits.len(), 1, logits).unwrap();
        let t = b.indices(labels).unwrap();
        let loss = b.tensor(1, 1, &[0.25]).unwrap();
        let mut totals = b.zeros(1, 2).unwrap();
        b.tally(&z, &t, &loss, &mut totals).unwrap();
        b.read(&totals).unwrap()
    }
    assert_eq!(tally_totals(&cpu(), &logits, &labels), [0.25, expected]);
    with_gpu(|gpu| assert_eq!(tally_totals(gpu, &logits, &labels), [0.25, expected]));
}

#[test]
fn shape_mismatches_are_errors_not_panics() {
    with_gpu(|gpu| {
        let a = gpu.zeros(3, 4).unwrap();
        let b = gpu.zeros(5, 6).unwrap();
        let mut c = gpu.zeros(3, 6).unwrap();
        let err = gpu
            .matmul(&a, false, &b, false, Epilogue::none(), &mut c)
            .unwrap_err();
        assert!(err.to_string().contains("inner dimensions"), "{err}");
        assert!(gpu.tensor(2, 2, &[1.0; 3]).is_err());
        let big = gpu.context().limits.max_storage_buffer_binding_size as usize / 4 + 1;
        let err = gpu.zeros(big, 1).err().expect("over the binding limit");
        assert!(err.to_string().contains("limit"), "{err}");
        let mut y = gpu.zeros(3, 5).unwrap();
        assert!(
            gpu.activation_forward(Activation::Relu, &a, &mut y)
                .is_err()
        );
        assert_eq!(y.rows(), 3);
    });
}

/// The tolerance helper itself: an infinite reference accepts only the same infinity (a finite value,
/// however large, and the other infinity fail), NaN only NaN, and a finite one its tolerance.
#[test]
fn assert_close_holds_non_finite_references_exactly() {
    let fails = |got: f32, want: f32| {
        std::panic::catch_unwind(|| assert_close("x", &[got], &[want], 1e-3, 1e-3)).is_err()
    };
    assert!(fails(f32::MAX, f32::INFINITY));
    assert!(fails(0.0, f32::INFINITY));
    assert!(fails(f32::NEG_INFINITY, f32::INFINITY));
    assert!(fails(f32::MIN, f32::NEG_INFINITY));
    assert!(fails(1.0, f32::NAN));
    assert!(fails(f32::NAN, 1.0));
    assert!(fails(1.01, 1.0));
    assert!(!fails(f32::INFINITY, f32::INFINITY));
    assert!(!fails(f32::NAN, f32::NAN));
    assert!(!fails(1.0015, 1.0));
}
