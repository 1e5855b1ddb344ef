//! Convolution and pooling: the CPU ops against direct loops and worked examples, the GPU against the
//! CPU at sizes that are not multiples of the workgroup, NaN and infinities, and whole CNNs against
//! central differences on both backends.
//!
//! Tolerances. im2col, the layout changes, max pooling and its winners only move values, so the GPU
//! must match the CPU exactly. The other ops add at most `KH·KW` (col2im: the windows that overlap a
//! position; pooling: one window) terms of magnitude ≤ 1 in an order that may differ from the CPU's,
//! then multiply by at most one activation derivative: the rounding is below `KH·KW·2⁻²⁴·Σ|terms|`,
//! about 1e-6 here, so the bound is 1e-5 absolute plus 1e-5 relative. Activations in an epilogue may
//! differ from Rust's by a few ulps (as in `tests/parity.rs`): the same bound covers them. The
//! convolution against direct f64 loops sums `C·KH·KW ≤ 81` products of magnitude ≤ 1 in sgemm's order:
//! 1e-5 absolute plus 1e-4 relative.

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::curriculum::gradcheck::check;
use nabla::init::Init;
use nabla::layers::Layer;
use nabla::layers::Shape;
use nabla::layers::conv::Conv;
use nabla::model::Truth;
use nabla::model::{Model, ModelSpec};
use nabla::numerical::gradient;
use nabla::window::Window;
use nabla::{Activation, Backend, ConvGrads, CpuBackend, Epilogue, MatmulKernel};

/// The unit roundoff of f32, 2⁻²⁴.
const U: f64 = 5.960_464_477_539_063e-8;

/// Windows at odd sizes: rectangular kernels, strides, padding, a single channel, a 28×28 image, and
/// windows that tile their image.
fn windows() -> Vec<(usize, Window)> {
    let w = |n, c, h, wd, kh, kw, s, p| {
        (
            n,
            Window::new(Shape::image(c, h, wd), kh, kw, s, p).expect("valid window"),
        )
    };
    vec![
        w(3, 2, 7, 9, 3, 2, 2, 1),
        w(5, 3, 13, 11, 5, 5, 1, 0),
        w(2, 1, 28, 28, 5, 5, 1, 2),
        w(4, 4, 6, 5, 2, 2, 2, 0),
        w(1, 2, 5, 5, 3, 3, 2, 2),
        // Windows that tile the image exactly (max pooling's backward pass takes a faster path).
        w(3, 3, 6, 8, 2, 2, 2, 0),
        w(2, 2, 9, 6, 3, 3, 3, 0),
        // DeepConvNet's 3×3 windows with padding 1 and 2 (with 8 channels or more, the GPU's input
        // gradient is a convolution).
        w(2, 3, 8, 7, 3, 3, 1, 1),
        w(2, 9, 8, 7, 3, 3, 1, 1),
        w(2, 8, 6, 6, 3, 3, 1, 2),
    ]
}

/// `y[n, o, oh, ow] = b[o] + Σ_{c,i,j} W[o, c, i, j]·x[n, c, oh·s + i − p, ow·s + j − p]`, in f64.
fn direct_conv(
    w: &Window,
    n: usize,
    x: &[f32],
    filters: usize,
    weight: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let (c_in, h, wd) = (w.input.channels, w.input.height, w.input.width);
    let (oh_n, ow_n) = (w.out_height(), w.out_width());
    let mut y = Vec::new();
    for s in 0..n {
        for o in 0..filters {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let mut sum = f64::from(bias[o]);
                    for c in 0..c_in {
                        for i in 0..w.kernel_h {
                            for j in 0..w.kernel_w {
                                let r = (oh * w.stride + i) as isize - w.padding as isize;
                                let q = (ow * w.stride + j) as isize - w.padding as isize;
                                if r < 0 || q < 0 || r >= h as isize || q >= wd as isize {
                                    continue;
                                }
                                let xv = x[((s * c_in + c) * h + r as usize) * wd + q as usize];
                                let wv = weight[((o * c_in + c) * w.kernel_h + i) * w.kernel_w + j];
                                sum += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    y.push(sum as f32);
                }
            }
        }
    }
    y
}

/// The CPU's implicit GEMM, the conv layer's forward pass in inference and training.
#[test]
fn cpu_convolution_matches_direct_loops() {
    let b = cpu();
    for (k, (n, w)) in windows().into_iter().enumerate() {
        let filters = 3;
        let x = uniform(&mut rng(k as u64), n * w.input.len(), 1.0);
        let weight = uniform(&mut rng(100 + k as u64), filters * w.patch(), 1.0);
        let bias = uniform(&mut rng(200 + k as u64), filters, 1.0);
        let mut conv = Conv::new(&b, w, filters, &weight, 0).unwrap();
        b.write(&mut conv.bias.value, &bias).unwrap();
        let xt = b.tensor(n, w.input.len(), &x).unwrap();
        let mut y = b.zeros(n, w.output(filters).len()).unwrap();
        let want = direct_conv(&w, n, &x, filters, &weight, &bias);
        conv.forward(&b, &xt, &mut y, Activation::Identity).unwrap();
        assert_close(&format!("implicit conv {w:?}"), y.data(), &want, 1e-5, 1e-4);
    }
}

/// The implicit GEMM on the GPU, with each product kernel this adapter runs (both carry it), against
/// the CPU's: 3 and 37 filters (one and two column blocks of either kernel), with and without a bias
/// and tanh, on inputs with zeros, infinities and a NaN. Each output sums `C·KH·KW ≤ 81` products of
/// magnitude ≤ 1 in an order that differs between the backends (and may fuse multiply-adds): the
/// rounding is about `√81·2⁻²⁴·81 ≈ 4.3e-5` at worst in practice, so 1e-4 absolute plus 1e-4 relative.
/// Non-finite outputs must match exactly (a NaN or an infinity does not depend on the order).
#[test]
fn gpu_implicit_convolution_matches_the_cpu() {
    with_gpu(|gpu| {
        let before = gpu.matmul_kernel();
        let kernels = [MatmulKernel::Tiled, MatmulKernel::Subgroup8];
        let mut ran = Vec::new();
        for kernel in kernels {
            // The subgroup kernel needs subgroups of 8; the tiled kernel runs on every adapter.
            if gpu.set_matmul_kernel(kernel).is_err() {
                assert_ne!(kernel, MatmulKernel::Tiled, "the tiled kernel was refused");
                continue;
            }
            ran.push(kernel);
            let c = cpu();
            for (k, (n, w)) in windows().into_iter().enumerate() {
                for filters in [3, 37] {
                    let image = w.input.len();
                    let seed = 1000 + 10 * k as u64 + filters as u64;
                    let x = with_edge_values(uniform(&mut rng(seed), n * image, 1.0), image);
                    let weight = uniform(&mut rng(seed + 1), filters * w.patch(), 1.0);
                    let bias = uniform(&mut rng(seed + 2), filters, 1.0);
                    let out = w.output(filters).len();
                    let on = |b: &dyn ConvOn| {
                        [
                            (None, Activation::Identity),
                            (Some(&bias[..]), Activation::Tanh),
                        ]
                        .map(|(bias, f)| b.convolve(&w, n, &x, &weight, bias, f, out))
                    };
                    let want = on(&c);
                    let got = on(&*gpu);
                    for (g, c) in got.iter().zip(&want) {
                        assert_close(
                            &format!("{kernel:?} {filters} filters {w:?}"),
                            g,
                            c,
                            1e-4,
                            1e-4,
                        );
                    }
                }
            }
        }
        gpu.set_matmul_kernel(before).unwrap();
        eprintln!("implicit convolution checked with {ran:?}");
        assert!(ran.contains(&MatmulKernel::Tiled));
    });
}

/// Runs [`Backend::convolution`] on host data, whatever the backend.
trait ConvOn {
    #[allow(clippy::too_many_arguments)]
    fn convolve(
        &self,
        w: &Window,
        n: usize,
        x: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        f: Activation,
        out: usize,
    ) -> Vec<f32>;
}

impl<B: Backend> ConvOn for B {
    fn convolve(
        &self,
        w: &Window,
        n: usize,
        x: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        f: Activation,
        out: usize,
    ) -> Vec<f32> {
        let x = self.tensor(n, w.input.len(), x).unwrap();
        let weight = self
            .tensor(weight.len() / w.patch(), w.patch(), weight)
            .unwrap();
        let bias = bias.map(|b| self.tensor(1, b.len(), b).unwrap());
        let mut y = self.zeros(n, out).unwrap();
        self.convolution(w, &x, &weight, Epilogue::forward(bias.as_ref(), f), &mut y)
            .unwrap();
        read(self, &y)
    }
}

/// A convolution's gradients by direct loops in f64: `(dW, db, dx)` and, for each entry, the sum of the
/// absolute values of its terms (the scale of its rounding error). `dx` is multiplied by `tanh'` from
/// `x` itself when `tanh` is set (`x` is then read as the output of a tanh).
#[allow(clippy::type_complexity)]
fn direct_conv_backward(
    w: &Window,
    n: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    tanh: bool,
) -> [(Vec<f32>, Vec<f64>); 3] {
    let filters = weight.len() / w.patch();
    let (c_in, h, wd) = (w.input.channels, w.input.height, w.input.width);
    let mut dw = vec![(0.0f64, 0.0f64); weight.len()];
    let mut db = vec![(0.0, 0.0); filters];
    let mut dx = vec![(0.0, 0.0); x.len()];
    let add = |acc: &mut (f64, f64), v: f64| {
        acc.0 += v;
        acc.1 += v.abs();
    };
    let mut g_at = 0;
    for s in 0..n {
        for (o, db_o) in db.iter_mut().enumerate() {
            for oh in 0..w.out_height() {
                for ow in 0..w.out_width() {
                    let g = f64::from(dy[g_at]);
                    g_at += 1;
                    add(db_o, g);
                    for c in 0..c_in {
                        for i in 0..w.kernel_h {
                            for j in 0..w.kernel_w {
                                let r = (oh * w.stride + i) as isize - w.padding as isize;
                                let q = (ow * w.stride + j) as isize - w.padding as isize;
                                if r < 0 || q < 0 || r >= h as isize || q >= wd as isize {
                                    continue;
                                }
                                let xi = ((s * c_in + c) * h + r as usize) * wd + q as usize;
                                let wi = ((o * c_in + c) * w.kernel_h + i) * w.kernel_w + j;
                                add(&mut dw[wi], g * f64::from(x[xi]));
                                add(&mut dx[xi], g * f64::from(weight[wi]));
                            }
                        }
                    }
                }
            }
        }
    }
    if tanh {
        for (d, &y) in dx.iter_mut().zip(x) {
            let f = 1.0 - f64::from(y) * f64::from(y);
            *d = (d.0 * f, d.1 * f.abs());
        }
    }
    [dw, db, dx].map(|v| v.into_iter().map(|(sum, abs)| (sum as f32, abs)).unzip())
}

/// [`Backend::convolution_backward`] on both backends (the CPU one image at a time; the GPU over the
/// whole batch, its input gradient a convolution where the window allows, with each product kernel)
/// against direct loops, with and without the input's gradient and through a tanh. An entry sums up
/// to `terms` products (`N·P = 1568` at most here) in an order that differs from the loops' (sgemm's
/// blocks, per-thread partial sums, fused multiply-adds): the worst-case rounding of such a sum is
/// `terms·2⁻²⁴·Σ|terms|`, the bound used (plus 1e-6 for the f32 rounding of `tanh'` near zero).
#[test]
fn convolution_backward_matches_direct_loops() {
    fn on<B: Backend>(b: &B, w: &Window, n: usize, data: [&[f32]; 3], tanh: bool) -> [Vec<f32>; 3] {
        let [x, weight, dy] = data;
        let filters = weight.len() / w.patch();
        let x = b.tensor(n, w.input.len(), x).unwrap();
        let weight = b.tensor(filters, w.patch(), weight).unwrap();
        let dy = b.tensor(n, w.output(filters).len(), dy).unwrap();
        let mut dw = b.zeros(filters, w.patch()).unwrap();
        let mut db = b.zeros(1, filters).unwrap();
        let mut dx = b.zeros(n, w.input.len()).unwrap();
        let before = || {
            if tanh {
                Epilogue::through(Activation::Tanh, &x)
            } else {
                Epilogue::none()
            }
        };
        let mut scratch = B::ConvScratch::default();
        // Twice: the second call reuses the scratch buffers of the first.
        for _ in 0..2 {
            let grads = ConvGrads {
                weight: &mut dw,
                bias: &mut db,
                input: Some(&mut dx),
                before: before(),
            };
            b.convolution_backward(w, &x, &dy, &weight, grads, &mut scratch)
                .unwrap();
        }
        // Without the input's gradient, dW and db are the same.
        let mut dw_only = b.zeros(filters, w.patch()).unwrap();
        let grads = ConvGrads {
            weight: &mut dw_only,
            bias: &mut db,
            input: None,
            before: Epilogue::none(),
        };
        b.convolution_backward(w, &x, &dy, &weight, grads, &mut scratch)
            .unwrap();
        assert_eq!(read(b, &dw_only), read(b, &dw), "dW without dx {w:?}");
        [read(b, &dw), read(b, &db), read(b, &dx)]
    }
    fn check(what: &str, got: &[f32], want: &(Vec<f32>, Vec<f64>), terms: usize) {
        assert_eq!(got.len(), want.0.len(), "{what}");
        for (i, (&g, (&v, &abs))) in got.iter().zip(want.0.iter().zip(&want.1)).enumerate() {
            let tol = terms as f64 * U * abs + 1e-6;
            let diff = (f64::from(g) - f64::from(v)).abs();
            assert!(
                diff <= tol,
                "{what}[{i}]: got {g}, want {v} (|diff| {diff} > {tol})"
            );
        }
    }
    let c = cpu();
    for (k, (n, w)) in windows().into_iter().enumerate() {
        // 4 filters for the window with 9 channels: on the GPU its input gradient is a product of
        // K = 36 (whole vec4s) and N = 9 columns (one lane's columns past N).
        let filters = [3, 37, 4][k % 3];
        let seed = 3000 + 10 * k as u64;
        let x: Vec<f32> = uniform(&mut rng(seed), n * w.input.len(), 1.0)
            .iter()
            .map(|v| v.tanh())
            .collect();
        let weight = uniform(&mut rng(seed + 1), filters * w.patch(), 1.0);
        let dy = uniform(&mut rng(seed + 2), n * w.output(filters).len(), 1.0);
        for tanh in [false, true] {
            let want = direct_conv_backward(&w, n, &x, &weight, &dy, tanh);
            let data = [&x[..], &weight[..], &dy[..]];
            let mut got = vec![("cpu".to_string(), on(&c, &w, n, data, tanh))];
            with_gpu(|gpu| {
                let before = gpu.matmul_kernel();
                for kernel in [MatmulKernel::Tiled, MatmulKernel::Subgroup8] {
                    if gpu.set_matmul_kernel(kernel).is_ok() {
                        got.push((format!("gpu {kernel:?}"), on(&*gpu, &w, n, data, tanh)));
                    }
                }
                gpu.set_matmul_kernel(before).unwrap();
            });
            for (backend, got) in got {
                // The most terms an entry sums: N·P for dW and db, O·KH·KW for dx.
                let terms = [n * w.positions(), n * w.positions(), filters * w.area()];
                let named = ["dW", "db", "dx"].iter().zip(terms);
                for ((name, terms), (g, want)) in named.zip(got.iter().zip(&want)) {
                    check(
                        &format!("{backend} {name} tanh {tanh} {w:?}"),
                        g,
                        want,
                        terms,
                    );
                }
            }
        }
    }
}

/// CPU max pooling on a batch large enough to be split across threads, with padding that makes the
/// output larger than the input (each thread's share of winners must follow its share of outputs),
/// against direct loops: values and winners exactly, and the backward pass's scatter. The inputs are
/// distinct, so every window has one winner.
#[test]
fn cpu_max_pool_splits_large_batches_by_sample() {
    use rand::seq::SliceRandom;
    let b = cpu();
    let (n, w) = (
        64,
        Window::new(Shape::image(4, 16, 16), 2, 2, 1, 1).unwrap(),
    );
    let (image, out) = (w.input.len(), w.output(4).len());
    let mut x: Vec<f32> = (0..n * image).map(|i| i as f32 / 1024.0).collect();
    x.shuffle(&mut rng(5));
    let dy = uniform(&mut rng(6), n * out, 1.0);
    let (mut want_y, mut want_k) = (Vec::new(), Vec::new());
    let mut want_dx = vec![0.0f32; n * image];
    let mut g = dy.iter();
    for plane in 0..n * 4 {
        for oh in 0..w.out_height() {
            for ow in 0..w.out_width() {
                let mut best: Option<(f32, usize, usize)> = None;
                for i in 0..2 {
                    for j in 0..2 {
                        let (Some(r), Some(c)) = (w.source(oh, i, 16), w.source(ow, j, 16)) else {
                            continue;
                        };
                        let at = plane * 256 + r * 16 + c;
                        if best.is_none_or(|(v, _, _)| x[at] > v) {
                            best = Some((x[at], i * 2 + j, at));
                        }
                    }
                }
                let (v, k, at) = best.unwrap();
                want_y.push(v);
                want_k.push(k as u32);
                want_dx[at] += g.next().unwrap();
            }
        }
    }
    let xt = b.tensor(n, image, &x).unwrap();
    let mut y = b.zeros(n, out).unwrap();
    let mut argmax = b.indices(&vec![0; n * out]).unwrap();
    b.max_pool(&w, &xt, Activation::Identity, &mut y, &mut argmax)
        .unwrap();
    assert_eq!(read(&b, &y), want_y, "max pool values");
    assert_eq!(argmax, want_k, "max pool winners");
    let dyt = b.tensor(n, out, &dy).unwrap();
    let mut dx = b.zeros(n, image).unwrap();
    b.max_pool_backward(&w, &dyt, &argmax, Epilogue::none(), &mut dx)
        .unwrap();
    // The same additions in the same (output) order: exact.
    assert_eq!(read(&b, &dx), want_dx, "max pool backward");
}

/// col2im is im2col's adjoint: `⟨im2col(x), g⟩ = ⟨x, col2im(g)⟩` for every x and g.
#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let b = cpu();
    for (k, (n, w)) in windows().into_iter().enumerate() {
        let x = uniform(&mut rng(k as u64), n * w.input.len(), 1.0);
        let g = uniform(&mut rng(50 + k as u64), n * w.positions() * w.patch(), 1.0);
        let xt = b.tensor(n, w.input.len(), &x).unwrap();
        let gt = b.tensor(n * w.positions(), w.patch(), &g).unwrap();
        let mut cols = b.zeros(n * w.positions(), w.patch()).unwrap();
        let mut dx = b.zeros(n, w.input.len()).unwrap();
        b.im2col(&w, &xt, &mut cols).unwrap();
        b.col2im(&w, &gt, Epilogue::none(), &mut dx).unwrap();
        let dot = |a: &[f32], c: &[f32]| -> f64 {
            a.iter()
                .zip(c)
                .map(|(&p, &q)| f64::from(p) * f64::from(q))
                .sum()
        };
        let (lhs, rhs) = (dot(cols.data(), &g), dot(&x, dx.data()));
        assert!(
            (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
            "{w:?}: ⟨im2col x, g⟩ = {lhs}, ⟨x, col2im g⟩ = {rhs}"
        );
    }
}

/// A worked example small enough to check by hand: 2×2 max and average pooling of one 4×5 image (the
/// last column falls outside every window), with a NaN that wins its window and a tie that goes to
/// the first maximum.
#[test]
fn pooling_worked_example() {
    let b = cpu();
    #[rustfmt::skip]
    let x = [
        1.0, 2.0,      5.0, 5.0,  9.0,
        3.0, 4.0,      0.0, -1.0, 9.0,
        -1.0, -2.0,    f32::NAN, 7.0, 9.0,
        -3.0, -4.0,    8.0, 6.0,  9.0,
    ];
    let w = Window::new(Shape::image(1, 4, 5), 2, 2, 2, 0).unwrap();
    let xt = b.tensor(1, 20, &x).unwrap();
    let mut y = b.zeros(1, 4).unwrap();
    let mut argmax = vec![9; 4];
    b.max_pool(&w, &xt, Activation::Identity, &mut y, &mut argmax)
        .unwrap();
    assert_eq!(y.data()[..2], [4.0, 5.0]);
    assert!(y.data()[2] == -1.0 && y.data()[3].is_nan());
    assert_eq!(argmax, [3, 0, 0, 0]);
    let dy = b.tensor(1, 4, &[10.0, 20.0, 30.0, 40.0]).unwrap();
    let mut dx = b.zeros(1, 20).unwrap();
    b.max_pool_backward(&w, &dy, &argmax, Epilogue::none(), &mut dx)
        .unwrap();
    #[rustfmt::skip]
    let routed = [
        0.0, 0.0,   20.0, 0.0, 0.0,
        0.0, 10.0,  0.0, 0.0, 0.0,
        30.0, 0.0,  40.0, 0.0, 0.0,
        0.0, 0.0,   0.0, 0.0, 0.0,
    ];
    assert_eq!(dx.data(), routed);
    b.avg_pool(&w, &xt, Activation::Identity, &mut y).unwrap();
    assert_eq!(y.data()[..3], [2.5, 2.25, -2.5]);
    assert!(y.data()[3].is_nan());
    b.avg_pool_backward(&w, &dy, Epilogue::none(), &mut dx)
        .unwrap();
    assert_eq!(dx.data()[..5], [2.5, 2.5, 5.0, 5.0, 0.0]);
    assert_eq!(dx.data()[15..], [7.5, 7.5, 10.0, 10.0, 0.0]);
}

/// Inputs with the edge values a network meets: zeros, ±∞ in one sample, NaN in another.
fn with_edge_values(mut x: Vec<f32>, per_sample: usize) -> Vec<f32> {
    x[1] = 0.0;
    x[2] = f32::INFINITY;
    x[3] = f32::NEG_INFINITY;
    if x.len() > per_sample {
        x[per_sample + 4] = f32::NAN;
    }
    x
}

fn tensors<B: Backend>(b: &B, shapes: &[(usize, usize, &[f32])]) -> Vec<B::Tensor> {
    shapes
        .iter()
        .map(|&(r, c, v)| b.tensor(r, c, v).unwrap())
        .collect()
}

/// Every op on `b` for window `w`: the outputs in a fixed order, for comparison across backends.
fn run_ops<B: Backend>(b: &B, n: usize, w: &Window, seed: u64) -> Vec<(String, Vec<f32>)> {
    let (image, positions, patch, c) = (w.input.len(), w.positions(), w.patch(), w.input.channels);
    let x = with_edge_values(uniform(&mut rng(seed), n * image, 1.0), image);
    let finite = uniform(&mut rng(seed + 1), n * image, 1.0);
    let dcols = uniform(&mut rng(seed + 2), n * positions * patch, 1.0);
    let dy = uniform(&mut rng(seed + 3), n * positions * c, 1.0);
    // A tanh output, what a fused gradient differentiates from.
    let y_tanh: Vec<f32> = finite.iter().map(|v| v.tanh()).collect();
    let t = tensors(
        b,
        &[
            (n, image, &x),
            (n * positions, patch, &dcols),
            (n, positions * c, &dy),
            (n, image, &y_tanh),
        ],
    );
    let (xt, dcols_t, dy_t, tanh_t) = (&t[0], &t[1], &t[2], &t[3]);
    let mut out = Vec::new();
    let mut record = |name: &str, values: Vec<f32>| out.push((name.to_string(), values));

    let mut cols = b.zeros(n * positions, patch).unwrap();
    b.im2col(w, xt, &mut cols).unwrap();
    record("im2col", read(b, &cols));
    let mut dx = b.zeros(n, image).unwrap();
    b.col2im(w, dcols_t, Epilogue::none(), &mut dx).unwrap();
    record("col2im", read(b, &dx));
    b.col2im(
        w,
        dcols_t,
        Epilogue::activation_grad(Activation::Tanh, tanh_t),
        &mut dx,
    )
    .unwrap();
    record("col2im ⊙ tanh'", read(b, &dx));
    let mut rows = b.zeros(n * positions, c).unwrap();
    b.planes_to_rows(positions, dy_t, &mut rows).unwrap();
    record("planes_to_rows", read(b, &rows));

    let mut pooled = b.zeros(n, positions * c).unwrap();
    let mut argmax = b.indices(&vec![0; n * positions * c]).unwrap();
    b.max_pool(w, xt, Activation::Identity, &mut pooled, &mut argmax)
        .unwrap();
    record("max_pool", read(b, &pooled));
    let winners: Vec<f32> = b
        .read_indices(&argmax)
        .unwrap()
        .iter()
        .map(|&k| k as f32)
        .collect();
    record("max_pool winners", winners);
    b.max_pool_backward(w, dy_t, &argmax, Epilogue::none(), &mut dx)
        .unwrap();
    record("max_pool_backward", read(b, &dx));
    let finite_t = b.tensor(n, image, &finite).unwrap();
    b.max_pool(w, &finite_t, Activation::Relu, &mut pooled, &mut argmax)
        .unwrap();
    record("max_pool relu", read(b, &pooled));
    b.max_pool_backward(
        w,
        dy_t,
        &argmax,
        Epilogue::activation_grad(Activation::Tanh, tanh_t),
        &mut dx,
    )
    .unwrap();
    record("max_pool_backward ⊙ tanh'", read(b, &dx));
    b.avg_pool(w, xt, Activation::Identity, &mut pooled)
        .unwrap();
    record("avg_pool", read(b, &pooled));
    b.avg_pool(w, &finite_t, Activation::Sigmoid, &mut pooled)
        .unwrap();
    record("avg_pool sigmoid", read(b, &pooled));
    b.avg_pool_backward(w, dy_t, Epilogue::none(), &mut dx)
        .unwrap();
    record("avg_pool_backward", read(b, &dx));
    b.avg_pool_backward(
        w,
        dy_t,
        Epilogue::activation_grad(Activation::Tanh, tanh_t),
        &mut dx,
    )
    .unwrap();
    record("avg_pool_backward ⊙ tanh'", read(b, &dx));
    out
}

/// Ops that only move values: the GPU must reproduce them exactly.
const EXACT: &[&str] = &["im2col", "planes_to_rows", "max_pool", "max_pool winners"];

#[test]
fn gpu_window_ops_match_the_cpu() {
    with_gpu(|gpu| {
        for (k, (n, w)) in windows().into_iter().enumerate() {
            let want = run_ops(&cpu(), n, &w, 10 * k as u64);
            let got = run_ops(&*gpu, n, &w, 10 * k as u64);
            for ((name, g), (_, c)) in got.iter().zip(&want) {
                let what = format!("{name} {w:?}");
                if EXACT.contains(&name.as_str()) {
                    let same = g
                        .iter()
                        .zip(c)
                        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                    assert!(same && g.len() == c.len(), "{what}: GPU {g:?} vs CPU {c:?}");
                } else {
                    assert_close(&what, g, c, 1e-5, 1e-5);
                }
            }
        }
    });
}

/// NaN stays where it was: im2col copies it into exactly the columns that read it, and max pooling
/// reports it only for the windows that hold it.
#[test]
fn nan_stays_in_the_windows_that_hold_it() {
    let b = cpu();
    let w = Window::new(Shape::image(1, 6, 6), 3, 3, 3, 0).unwrap();
    let mut x = vec![0.5; 36];
    x[7] = f32::NAN; // row 1, column 1: the first window only.
    let xt = b.tensor(1, 36, &x).unwrap();
    let mut cols = b.zeros(4, 9).unwrap();
    b.im2col(&w, &xt, &mut cols).unwrap();
    let nans: Vec<usize> = cols
        .data()
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_nan())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(nans, [4]);
    let mut y = b.zeros(1, 4).unwrap();
    let mut argmax = vec![0; 4];
    b.max_pool(&w, &xt, Activation::Identity, &mut y, &mut argmax)
        .unwrap();
    assert!(y.data()[0].is_nan() && y.data()[1..] == [0.5, 0.5, 0.5]);
}

/// Operands of the wrong shape are refused with an error, not a panic.
#[test]
fn shape_mismatches_are_errors() {
    let b = cpu();
    let w = Window::new(Shape::image(2, 5, 5), 3, 3, 1, 0).unwrap();
    let x = b.zeros(2, 49).unwrap();
    let mut cols = b.zeros(18, 18).unwrap();
    assert!(b.im2col(&w, &x, &mut cols).is_err());
    let x = b.zeros(2, 50).unwrap();
    let mut cols = b.zeros(17, 18).unwrap();
    assert!(b.im2col(&w, &x, &mut cols).is_err());
    let mut y = b.zeros(2, 18).unwrap();
    let mut short = vec![0; 17];
    assert!(
        b.max_pool(&w, &x, Activation::Identity, &mut y, &mut short)
            .is_err()
    );
    assert!(Window::new(Shape::image(1, 2, 2), 5, 5, 1, 1).is_err());
    assert!(Window::new(Shape::image(1, 8, 8), 3, 3, 0, 0).is_err());
    assert!(Window::new(Shape::image(1, 8, 8), 3, 3, 1, 3).is_err());
    let planes = b.zeros(2, 9).unwrap();
    let mut rows = b.zeros(7, 3).unwrap();
    assert!(b.planes_to_rows(3, &planes, &mut rows).is_err());
    // Filters whose patch is not the window's, and an output of the wrong size.
    let filters = b.zeros(3, w.patch() + 1).unwrap();
    let mut out = b.zeros(2, w.output(3).len()).unwrap();
    assert!(
        b.convolution(&w, &x, &filters, Epilogue::none(), &mut out)
            .is_err()
    );
    let filters = b.zeros(3, w.patch()).unwrap();
    let mut out = b.zeros(2, w.output(3).len() + 1).unwrap();
    assert!(
        b.convolution(&w, &x, &filters, Epilogue::none(), &mut out)
            .is_err()
    );
    // Empty images and no filters.
    assert!(Window::new(Shape::image(0, 5, 5), 3, 3, 1, 0).is_err());
    let none = b.zeros(0, w.patch()).unwrap();
    let mut empty = b.zeros(2, 0).unwrap();
    assert!(
        b.convolution(&w, &x, &none, Epilogue::none(), &mut empty)
            .is_err()
    );
    backward_shape_errors(&b);
    with_gpu(|gpu| backward_shape_errors(&*gpu));
}

/// The backward pass refuses, before writing anything, a gradient of the wrong shape and an epilogue
/// that is not a derivative (a bias, or a forward activation).
fn backward_shape_errors<B: Backend>(b: &B) {
    let w = Window::new(Shape::image(2, 5, 5), 3, 3, 1, 1).unwrap();
    let x = b.zeros(2, 50).unwrap();
    let weight = b.zeros(3, w.patch()).unwrap();
    let dy = b.zeros(2, w.output(3).len()).unwrap();
    let bias = b.zeros(1, 3).unwrap();
    let mut scratch = B::ConvScratch::default();
    let mut run = |dw: (usize, usize), dx: (usize, usize), before: Option<&B::Tensor>| {
        let mut dweight = b.zeros(dw.0, dw.1).unwrap();
        let mut dbias = b.zeros(1, 3).unwrap();
        let mut dx = b.zeros(dx.0, dx.1).unwrap();
        let grads = ConvGrads {
            weight: &mut dweight,
            bias: &mut dbias,
            input: Some(&mut dx),
            before: before.map_or(Epilogue::none(), |t| {
                Epilogue::forward(Some(t), Activation::Relu)
            }),
        };
        b.convolution_backward(&w, &x, &dy, &weight, grads, &mut scratch)
    };
    run((3, w.patch()), (2, 50), None).expect("well-formed");
    assert!(run((3, w.patch() + 1), (2, 50), None).is_err(), "dW shape");
    assert!(run((3, w.patch()), (2, 49), None).is_err(), "dx shape");
    assert!(
        run((3, w.patch()), (2, 50), Some(&bias)).is_err(),
        "forward epilogue"
    );
}

/// Whole CNNs against central differences (the curriculum's check, as in `tests/gradcheck.rs`):
/// convolutions with padding, stride and rectangular filters; max and average pooling; activations
/// fused into the convolution before them and differentiated in the pooling or convolution after.
/// Max pooling's derivative jumps where two values of a window tie, and a step that moves every
/// convolution output can swap a winner, so the networks pool by averaging here and max pooling gets
/// its own check below, on inputs whose values stay apart.
fn cnn_gradients<B: Backend>(b: &B) {
    let specs = [
        "input 2x7x6, conv 4x3x3 pad 1, tanh, avg_pool 2, conv 3x2x2, sigmoid, avg_pool 2 stride 1, dense 5",
        "input 1x9x8, conv 3x3x2 stride 2 pad 1, tanh, conv 2x3x3, avg_pool 2, dense 5",
    ];
    for text in specs {
        let spec = ModelSpec::parse(text).unwrap();
        let mut model = Model::new(b, spec, Init::He, 5, 0).unwrap();
        let features = model.spec.input.len();
        let x = b
            .tensor(3, features, &uniform(&mut rng(21), 3 * features, 1.0))
            .unwrap();
        let y = b.indices(&[0, 4, 2]).unwrap();
        let report = check(b, &mut model, &x, Truth::Labels(&y), 1e-2, 30, 1).unwrap();
        assert_eq!(report.len(), 6, "{text}");
        for c in &report {
            let what = format!("{text} {}: {c:?}", c.name);
            assert!(c.mean_abs_diff < 2e-5 && c.max_abs_diff < 1e-4, "{what}");
            assert!(c.mean_abs_grad > 10.0 * c.mean_abs_diff, "{what}");
        }
    }
}

/// Max pooling's input gradient against central differences of `L = Σ r·max_pool(x)`, on inputs that
/// are distinct multiples of 0.1 (shuffled), so that a step of 0.01 never changes a winner. `L` is
/// linear in each input between kinks, so the only error is the step's: `x ± h` rounds to f32, which
/// moves the step by up to 2·ulp(|x|) ≤ 2·8e-6 for |x| ≤ 110, under 1e-3 of `2h`. A misrouted gradient
/// is off by a whole `r` (order 1).
fn max_pool_gradient<B: Backend>(b: &B) {
    use rand::seq::SliceRandom;
    for (n, w) in windows() {
        let len = n * w.input.len();
        let mut x: Vec<f32> = (0..len)
            .map(|i| i as f32 * 0.1 - len as f32 * 0.05)
            .collect();
        x.shuffle(&mut rng(7));
        let outputs = n * w.positions() * w.input.channels;
        let r = uniform(&mut rng(8), outputs, 1.0);
        let rt = b.tensor(n, outputs / n, &r).unwrap();
        let mut y = b.zeros(n, outputs / n).unwrap();
        let mut argmax = b.indices(&vec![0; outputs]).unwrap();
        let mut loss = |x: &[f32]| -> f64 {
            let xt = b.tensor(n, w.input.len(), x).unwrap();
            b.max_pool(&w, &xt, Activation::Identity, &mut y, &mut argmax)
                .unwrap();
            read(b, &y)
                .iter()
                .zip(&r)
                .map(|(&v, &q)| f64::from(v) * f64::from(q))
                .sum()
        };
        let numerical = gradient(&mut loss, &mut x.clone(), 1e-2);
        let xt = b.tensor(n, w.input.len(), &x).unwrap();
        b.max_pool(&w, &xt, Activation::Identity, &mut y, &mut argmax)
            .unwrap();
        let mut dx = b.zeros(n, w.input.len()).unwrap();
        b.max_pool_backward(&w, &rt, &argmax, Epilogue::none(), &mut dx)
            .unwrap();
        assert_close(
            &format!("max pool gradient {w:?}"),
            &read(b, &dx),
            &numerical,
            1e-4,
            1e-3,
        );
        assert!(read(b, &dx).iter().any(|&g| g != 0.0));
    }
}

#[test]
fn cpu_cnn_gradients_match_central_differences() {
    let b = CpuBackend::new();
    cnn_gradients(&b);
    max_pool_gradient(&b);
}

#[test]
fn gpu_cnn_gradients_match_central_differences() {
    with_gpu(|b| {
        cnn_gradients(&*b);
        max_pool_gradient(&*b);
    });
}

/// A dense layer after images gets a flatten, so that layer indices (and checkpoint names) match
/// PyTorch's `nn.Sequential`; shapes, parameters and the spec's text follow.
#[test]
fn spec_reads_convolutions_and_inserts_flatten() {
    let spec =
        ModelSpec::parse("input 1x28x28, conv 30x5x5, relu, max_pool 2, dense 100, relu, dense 10")
            .unwrap();
    assert_eq!(
        spec.describe(),
        "input 1x28x28, conv 30x5x5, relu, max_pool 2, flatten, dense 100, relu, dense 10"
    );
    let shapes = spec.shapes().unwrap();
    assert_eq!(shapes[0], Shape::image(30, 24, 24));
    assert_eq!(shapes[2], Shape::image(30, 12, 12));
    assert_eq!(shapes[3], Shape::flat(4320));
    assert_eq!(ModelSpec::parse(&spec.describe()).unwrap(), spec);
    let text = "input 3x8x8, conv 4x3x3 stride 2 pad 1, avg_pool 2 stride 1, dense 3";
    let shapes = ModelSpec::parse(text).unwrap().shapes().unwrap();
    assert_eq!(shapes[..2], [Shape::image(4, 4, 4), Shape::image(4, 3, 3)]);
    for bad in [
        "input 1x28x28, conv 30x5, dense 10",
        "input 1x28x28, conv 30x5x5 pad 5, dense 10",
        "input 1x28x28, conv 30x5x5 stride 0, dense 10",
        "input 1x28x28, max_pool 0, dense 10",
        "input 1x28x28, max_pool 2 pad 1, dense 10",
        "input 784, max_pool 2, dense 10",
        "input 1x4x4, conv 2x5x5, dense 10",
    ] {
        assert!(ModelSpec::parse(bad).is_err(), "{bad}");
    }
}

/// The GPU's conv layer equals the CPU's through a whole forward and backward pass of a small CNN.
#[test]
fn gpu_cnn_training_step_matches_the_cpu() {
    with_gpu(|gpu| {
        let text = "input 3x11x10, conv 5x3x3 pad 1, relu, max_pool 2, conv 4x3x3, relu, avg_pool 2, dense 7";
        let spec = ModelSpec::parse(text).unwrap();
        let n = 6;
        let x = uniform(&mut rng(3), n * spec.input.len(), 1.0);
        let labels = [0, 1, 2, 3, 4, 5];
        let on_cpu = step(&cpu(), &spec, &x, &labels);
        let on_gpu = step(&*gpu, &spec, &x, &labels);
        for (k, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
            assert_close(&format!("{text}: tensor {k}"), g, c, 1e-5, 1e-4);
        }
    });
}

/// The logits and every parameter gradient of one training pass.
fn step<B: Backend>(b: &B, spec: &ModelSpec, x: &[f32], labels: &[u32]) -> Vec<Vec<f32>> {
    let mut model = Model::new(b, spec.clone(), Init::He, 9, 0).unwrap();
    let n = labels.len();
    let xt = b.tensor(n, spec.input.len(), x).unwrap();
    let yt = b.indices(labels).unwrap();
    let mut ws = model.workspace(b, n).unwrap();
    model.forward_train(b, &xt, &mut ws, 1, 1).unwrap();
    model.backward(b, &xt, Truth::Labels(&yt), &mut ws).unwrap();
    let mut out = vec![read(b, ws.logits())];
    out.extend(model.params().map(|p| read(b, &p.grad)));
    assert!(
        out.iter()
            .all(|t| !t.is_empty() && t.iter().all(|v| v.is_finite()))
    );
    out
}
