//! Every backward pass against central-difference numerical gradients, on the CPU and on the GPU.
//!
//! The numerical side runs the backend's own f32 forward kernels, so its error is the central
//! difference's truncation (≈ h²·|f'''|/6) plus rounding (≈ u·|f|/h). With the steps chosen below both
//! stay under 1e-4 for these inputs, so the tolerances (1e-3 absolute plus 1e-2 relative for element-wise
//! functions, 2e-4 absolute plus 1e-2 relative for losses) leave a margin while still catching any wrong
//! formula, sign or scale.

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::curriculum::gradcheck::check;
use nabla::init::Init;
use nabla::model::Truth;
use nabla::model::{MlpOptions, Model, ModelSpec};
use nabla::numerical::gradient;
use nabla::{Activation, Backend, Epilogue};
use rand::Rng;

/// Inputs away from the kinks of ReLU-like functions, where no derivative exists.
fn smooth_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let v: f32 = r.random_range(0.05..3.0);
            if r.random_bool(0.5) { v } else { -v }
        })
        .collect()
}

fn activations<B: Backend>(b: &B) {
    let n = 200;
    let x = smooth_inputs(n, 1);
    let h = 1e-3f32;
    let ones = vec![1.0; n];
    let forward = |v: &[f32], act: Activation| {
        let mut y = b.zeros(1, n).unwrap();
        b.activation_forward(act, &b.tensor(1, n, v).unwrap(), &mut y)
            .unwrap();
        read(b, &y)
    };
    for act in Activation::ALL {
        let up: Vec<f32> = x.iter().map(|v| v + h).collect();
        let down: Vec<f32> = x.iter().map(|v| v - h).collect();
        let (fu, fd) = (forward(&up, act), forward(&down, act));
        let numeric: Vec<f32> = fu
            .iter()
            .zip(&fd)
            .map(|(u, d)| (u - d) / (2.0 * h))
            .collect();
        let mut dx = b.zeros(1, n).unwrap();
        let (tx, tdy) = (b.tensor(1, n, &x).unwrap(), b.tensor(1, n, &ones).unwrap());
        b.activation_backward(act, &tx, &tdy, &mut dx).unwrap();
        assert_close(&format!("{act:?}'"), &read(b, &dx), &numeric, 1e-3, 1e-2);
    }
}

/// Checks a loss's gradient output against the numerical gradient of its loss output.
fn loss_gradient<B: Backend>(
    b: &B,
    what: &str,
    rows: usize,
    cols: usize,
    run: impl Fn(&B::Tensor, &mut B::Tensor, &mut B::Tensor),
) {
    let mut z = uniform(&mut rng(rows as u64), rows * cols, 3.0);
    let mut dz = b.zeros(rows, cols).unwrap();
    let mut loss = b.zeros(1, 1).unwrap();
    run(&b.tensor(rows, cols, &z).unwrap(), &mut dz, &mut loss);
    let analytic = read(b, &dz);
    let numeric = gradient(
        |v| {
            let mut scratch = b.zeros(rows, cols).unwrap();
            let mut l = b.zeros(1, 1).unwrap();
            run(&b.tensor(rows, cols, v).unwrap(), &mut scratch, &mut l);
            f64::from(read(b, &l)[0])
        },
        &mut z,
        1e-2,
    );
    assert_close(what, &analytic, &numeric, 2e-4, 1e-2);
}

fn losses<B: Backend>(b: &B) {
    let (rows, cols) = (4, 5);
    let labels = b.indices(&[0, 4, 2, 2]).unwrap();
    loss_gradient(b, "softmax cross-entropy", rows, cols, |z, dz, l| {
        b.softmax_cross_entropy(z, &labels, dz, l).unwrap()
    });
    let t: Vec<f32> = uniform(&mut rng(9), rows * cols, 0.5)
        .iter()
        .map(|v| v + 0.5)
        .collect();
    let targets = b.tensor(rows, cols, &t).unwrap();
    loss_gradient(b, "sigmoid binary cross-entropy", rows, cols, |z, dz, l| {
        b.sigmoid_binary_cross_entropy(z, &targets, dz, l).unwrap()
    });
    loss_gradient(b, "mean squared error", rows, cols, |z, dz, l| {
        b.mean_squared_error(z, &targets, dz, l).unwrap()
    });
}

/// A dense layer `Y = X·W + b` under the loss `L = Σ G ⊙ Y`: the backward products
/// `dW = Xᵀ·G`, `dX = G·Wᵀ`, `db = Σ_rows G` against numerical gradients of L.
fn dense_layer<B: Backend>(b: &B) {
    let (batch, inputs, outputs) = (5, 7, 3);
    let mut r = rng(4);
    let mut x = uniform(&mut r, batch * inputs, 1.0);
    let mut w = uniform(&mut r, inputs * outputs, 1.0);
    let mut bias = uniform(&mut r, outputs, 1.0);
    let g = uniform(&mut r, batch * outputs, 1.0);
    let tg = b.tensor(batch, outputs, &g).unwrap();
    let loss = |x: &[f32], w: &[f32], bias: &[f32]| {
        let mut y = b.zeros(batch, outputs).unwrap();
        let tb = b.tensor(1, outputs, bias).unwrap();
        let epi = Epilogue::bias(&tb);
        let (tx, tw) = (
            b.tensor(batch, inputs, x).unwrap(),
            b.tensor(inputs, outputs, w).unwrap(),
        );
        b.matmul(&tx, false, &tw, false, epi, &mut y).unwrap();
        read(b, &y)
            .iter()
            .zip(&g)
            .map(|(y, g)| f64::from(y * g))
            .sum::<f64>()
    };
    let (tx, tw) = (
        b.tensor(batch, inputs, &x).unwrap(),
        b.tensor(inputs, outputs, &w).unwrap(),
    );
    let mut dw = b.zeros(inputs, outputs).unwrap();
    let mut dx = b.zeros(batch, inputs).unwrap();
    let mut db = b.zeros(1, outputs).unwrap();
    b.matmul(&tx, true, &tg, false, Epilogue::none(), &mut dw)
        .unwrap();
    b.matmul(&tg, false, &tw, true, Epilogue::none(), &mut dx)
        .unwrap();
    b.bias_grad(&tg, &mut db).unwrap();
    let (x0, w0, b0) = (x.clone(), w.clone(), bias.clone());
    let num_w = gradient(|v| loss(&x0, v, &b0), &mut w, 1e-2);
    let num_x = gradient(|v| loss(v, &w0, &b0), &mut x, 1e-2);
    let num_b = gradient(|v| loss(&x0, &w0, v), &mut bias, 1e-2);
    assert_close("dW = Xᵀ·G", &read(b, &dw), &num_w, 2e-3, 1e-2);
    assert_close("dX = G·Wᵀ", &read(b, &dx), &num_x, 2e-3, 1e-2);
    assert_close("db", &read(b, &db), &num_b, 2e-3, 1e-2);
}

/// An activation feeding a dense layer, `Y = f(Z)·W` under `L = Σ G ⊙ Y`, with backprop through both
/// fused into one product: `dZ = (G·Wᵀ) ⊙ f'(Z)`, `f'` computed from `f(Z)` in the product's epilogue
/// (what training does for every activation that allows it), against numerical gradients of L.
fn fused_activation_gradient<B: Backend>(b: &B) {
    let (batch, inputs, outputs) = (5, 7, 3);
    let mut r = rng(5);
    let w = uniform(&mut r, inputs * outputs, 1.0);
    let g = uniform(&mut r, batch * outputs, 1.0);
    let (tw, tg) = (
        b.tensor(inputs, outputs, &w).unwrap(),
        b.tensor(batch, outputs, &g).unwrap(),
    );
    let activated = |z: &[f32], act: Activation| {
        let mut y = b.zeros(batch, inputs).unwrap();
        b.activation_forward(act, &b.tensor(batch, inputs, z).unwrap(), &mut y)
            .unwrap();
        y
    };
    for act in Activation::ALL
        .into_iter()
        .filter(|a| a.has_output_derivative())
    {
        let mut z = smooth_inputs(batch * inputs, 6);
        let mut dz = b.zeros(batch, inputs).unwrap();
        let y = activated(&z, act);
        b.matmul(
            &tg,
            false,
            &tw,
            true,
            Epilogue::activation_grad(act, &y),
            &mut dz,
        )
        .unwrap();
        let numeric = gradient(
            |v| {
                let mut out = b.zeros(batch, outputs).unwrap();
                b.matmul(
                    &activated(v, act),
                    false,
                    &tw,
                    false,
                    Epilogue::none(),
                    &mut out,
                )
                .unwrap();
                read(b, &out)
                    .iter()
                    .zip(&g)
                    .map(|(y, g)| f64::from(y * g))
                    .sum::<f64>()
            },
            &mut z,
            1e-2,
        );
        assert_close(
            &format!("dZ through {act:?}"),
            &read(b, &dz),
            &numeric,
            2e-3,
            1e-2,
        );
    }
}

/// Dropout under `L = Σ G ⊙ dropout(X)`: its backward pass (the same op on G, same key) against the
/// numerical gradient, which is G/(1 - p) where kept and 0 where dropped.
fn dropout_gradient<B: Backend>(b: &B) {
    let n = 50;
    let (p, key) = (0.4, 0xfeed_beef_u64);
    let mut x = uniform(&mut rng(8), n, 1.0);
    let g = uniform(&mut rng(9), n, 1.0);
    let mut dx = b.zeros(1, n).unwrap();
    b.dropout(p, key, &b.tensor(1, n, &g).unwrap(), &mut dx)
        .unwrap();
    let numeric = gradient(
        |v| {
            let mut y = b.zeros(1, n).unwrap();
            b.dropout(p, key, &b.tensor(1, n, v).unwrap(), &mut y)
                .unwrap();
            read(b, &y)
                .iter()
                .zip(&g)
                .map(|(y, g)| f64::from(y * g))
                .sum::<f64>()
        },
        &mut x,
        1e-2,
    );
    let dx = read(b, &dx);
    assert!(dx.contains(&0.0) && dx.iter().any(|&v| v != 0.0));
    assert_close("dropout dX", &dx, &numeric, 2e-3, 1e-2);
}

/// Whole networks with two hidden layers against central differences: tanh, where each dense layer
/// runs fused with its activation and the next layer's input-gradient product multiplies by tanh'
/// (D,A,D,A,D), and GELU, which runs unfused. Tolerances as in the curriculum's check (`tests/lessons.rs`).
fn deep_networks<B: Backend>(b: &B) {
    for activation in [Activation::Tanh, Activation::Gelu] {
        let spec = ModelSpec::mlp(12, &[9, 7], 5, activation);
        let mut model = Model::new(b, spec, Init::Xavier, 3, 0).unwrap();
        let x = b.tensor(4, 12, &uniform(&mut rng(11), 48, 1.0)).unwrap();
        let y = b.indices(&[0, 4, 2, 1]).unwrap();
        let report = check(b, &mut model, &x, Truth::Labels(&y), 1e-2, 30, 1).unwrap();
        assert_eq!(report.len(), 6);
        for c in &report {
            let what = format!("{activation:?} {}: {c:?}", c.name);
            assert!(c.mean_abs_diff < 2e-5 && c.max_abs_diff < 1e-4, "{what}");
            assert!(c.mean_abs_grad > 10.0 * c.mean_abs_diff, "{what}");
        }
    }
}

/// A network with batch normalisation and dropout in both hidden blocks, in training mode (batch
/// statistics, fixed masks): every parameter against central differences. Normalising by the batch's
/// own variance curves the loss more than a plain network does, so the central difference's truncation
/// (h²·|f'''|/6) is larger: the bounds are 5e-5 mean and 3e-4 largest, and every gradient must still be
/// 100 times the mean difference. A bias just before a batch norm has no effect on the loss (the batch
/// mean absorbs it), so its gradient must be zero, to the rounding of a sum of terms that cancel.
fn batch_norm_network<B: Backend>(b: &B) {
    let spec = ModelSpec::mlp_with(
        12,
        &[9, 7],
        5,
        Activation::Tanh,
        MlpOptions {
            dropout: 0.2,
            batch_norm: true,
        },
    );
    let mut model = Model::new(b, spec, Init::Xavier, 3, 0).unwrap();
    let x = b.tensor(8, 12, &uniform(&mut rng(12), 96, 1.0)).unwrap();
    let y = b.indices(&[0, 4, 2, 1, 3, 3, 0, 2]).unwrap();
    let report = check(b, &mut model, &x, Truth::Labels(&y), 1e-2, 30, 1).unwrap();
    let names: Vec<&str> = report.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["W1", "b1", "γβ1", "W2", "b2", "γβ2", "W3", "b3"]);
    for c in &report {
        let what = format!("batch norm {}: {c:?}", c.name);
        assert!(c.mean_abs_diff < 5e-5 && c.max_abs_diff < 3e-4, "{what}");
        if c.name == "b1" || c.name == "b2" {
            assert!(c.mean_abs_grad < 1e-6, "{what}");
        } else {
            assert!(c.mean_abs_grad > 100.0 * c.mean_abs_diff, "{what}");
        }
    }
}

/// The two other heads a model trains with, through a whole network against central differences: one
/// sigmoid output with binary cross-entropy (a binary task) and two linear outputs with half the
/// squared error (a regression). Their losses are smoother than softmax's, so the bounds of
/// `deep_networks` hold.
fn binary_and_regression_heads<B: Backend>(b: &B) {
    use nabla::data::Task;
    for (task, outputs) in [(Task::Binary, 1), (Task::Regress, 2)] {
        let spec = ModelSpec::mlp(6, &[8, 5], outputs, Activation::Tanh);
        let mut model = Model::new(b, spec, Init::Xavier, 4, 0).unwrap();
        model.task = task;
        let x = b.tensor(5, 6, &uniform(&mut rng(13), 30, 1.0)).unwrap();
        let targets = match task {
            Task::Binary => vec![1.0, 0.0, 0.0, 1.0, 1.0],
            _ => uniform(&mut rng(14), 10, 1.5),
        };
        let t = b.tensor(5, outputs, &targets).unwrap();
        // A classifier's labels are the wrong truth for these heads: refused, not misread.
        let labels = b.indices(&[0; 5]).unwrap();
        assert!(check(b, &mut model, &x, Truth::Labels(&labels), 1e-2, 1, 1).is_err());
        let report = check(b, &mut model, &x, Truth::Targets(&t), 1e-2, 30, 1).unwrap();
        assert_eq!(report.len(), 6);
        for c in &report {
            let what = format!("{task:?} {}: {c:?}", c.name);
            assert!(c.mean_abs_diff < 2e-5 && c.max_abs_diff < 1e-4, "{what}");
            assert!(c.mean_abs_grad > 10.0 * c.mean_abs_diff, "{what}");
        }
    }
}

#[test]
fn cpu_backward_passes_match_numerical_gradients() {
    let b = cpu();
    activations(&b);
    losses(&b);
    dense_layer(&b);
    fused_activation_gradient(&b);
    dropout_gradient(&b);
    deep_networks(&b);
    batch_norm_network(&b);
    binary_and_regression_heads(&b);
}

#[test]
fn gpu_backward_passes_match_numerical_gradients() {
    with_gpu(|b| {
        activations(&*b);
        losses(&*b);
        dense_layer(&*b);
        fused_activation_gradient(&*b);
        dropout_gradient(&*b);
        deep_networks(&*b);
        batch_norm_network(&*b);
        binary_and_regression_heads(&*b);
    });
}

#[test]
fn central_difference_beats_forward_difference() {
    // f(x) = 0.01x² + 0.1x has f'(5) = 0.2 and f'(10) = 0.3 exactly.
    let f = |x: f64| 0.01 * x * x + 0.1 * x;
    for (x, exact) in [(5.0, 0.2), (10.0, 0.3)] {
        let central = nabla::numerical::derivative(f, x, 1e-4);
        assert!((central - exact).abs() < 1e-9, "{central}");
        let forward = (f(x + 1e-4) - f(x)) / 1e-4;
        assert!((forward - exact).abs() > (central - exact).abs());
    }
}
