//! Gradient checking: every parameter's backprop gradient against the central difference of the loss,
//! `(L(θ + h) - L(θ - h)) / 2h`, one entry at a time.
//!
//! The lesson's reference runs in float64 and sees differences of 1e-10 to 1e-13. nabla's kernels are
//! float32, so the loss carries a rounding error of about u·L ≈ 1e-7 and the central difference one of
//! u·L/h; with h = 1e-2 that is ~1e-5, against a truncation error of h²·|L'''|/6, smaller still. Mean
//! absolute differences of 1e-6 to 1e-5 are therefore what agreement looks like here, and a wrong
//! backward formula shows up as differences the size of the gradients themselves.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::backend::{Backend, Shaped};
use crate::error::Result;
use crate::model::{Model, Truth};

/// How one parameter tensor's gradient compared.
#[derive(Clone, Debug)]
pub struct ParamCheck {
    /// `W1`, `b1`, `W2`, … (layer from 1, input first).
    pub name: String,
    /// Mean |backprop - numerical| over the checked entries.
    pub mean_abs_diff: f64,
    /// The largest such difference.
    pub max_abs_diff: f64,
    /// Mean |backprop gradient| over the same entries, for scale.
    pub mean_abs_grad: f64,
    /// Entries checked.
    pub checked: usize,
    /// Entries in the tensor.
    pub total: usize,
}

/// Checks the gradients of `model`'s loss (its task's: softmax cross-entropy against labels, binary
/// cross-entropy or squared error against targets) on the batch (`x`, `truth`) with step `h`,
/// on up to `per_param` entries of each parameter tensor (a seeded sample; all of them when fewer).
/// The parameters end as they began.
pub fn check<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    x: &B::Tensor,
    truth: Truth<'_, B>,
    h: f32,
    per_param: usize,
    seed: u64,
) -> Result<Vec<ParamCheck>> {
    // A training pass (batch statistics, dropout masks) with fixed draws, so that every loss below
    // evaluates the same function the backward pass differentiates.
    const STEP: u64 = 1;
    let mut ws = model.workspace(b, x.rows())?;
    model.forward_train(b, x, &mut ws, seed, STEP)?;
    model.backward(b, x, truth, &mut ws)?;
    let analytic = model
        .params()
        .map(|p| b.read(&p.grad))
        .collect::<Result<Vec<_>>>()?;
    let names = parameter_names(model);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = Vec::new();
    for (k, grad) in analytic.iter().enumerate() {
        let mut values = b.read(parameter(model, k))?;
        let picked = rand::seq::index::sample(&mut rng, values.len(), per_param.min(values.len()));
        let (mut diff_sum, mut diff_max, mut grad_sum) = (0.0f64, 0.0f64, 0.0f64);
        for i in picked.iter() {
            let original = values[i];
            let mut loss_at = |v: f32, model: &mut Model<B>| -> Result<f64> {
                values[i] = v;
                b.write(parameter(model, k), &values)?;
                model.loss_train(b, x, truth, &mut ws, seed, STEP)?;
                Ok(f64::from(b.read(&ws.loss)?[0]))
            };
            let up = loss_at(original + h, model)?;
            let down = loss_at(original - h, model)?;
            loss_at(original, model)?;
            let numerical = (up - down) / (2.0 * f64::from(h));
            let diff = (f64::from(grad[i]) - numerical).abs();
            diff_sum += diff;
            diff_max = diff_max.max(diff);
            grad_sum += f64::from(grad[i]).abs();
        }
        let n = picked.len().max(1) as f64;
        report.push(ParamCheck {
            name: names[k].clone(),
            mean_abs_diff: diff_sum / n,
            max_abs_diff: diff_max,
            mean_abs_grad: grad_sum / n,
            checked: picked.len(),
            total: values.len(),
        });
    }
    Ok(report)
}

/// The `k`-th parameter's values.
fn parameter<B: Backend>(model: &mut Model<B>, k: usize) -> &mut B::Tensor {
    &mut model
        .params_mut()
        .nth(k)
        .expect("k counts the parameters")
        .value
}

/// The curriculum's names for the parameters: `W1`, `b1`, `W2`, … for dense and convolution layers in
/// order (the book's SimpleConvNet names), `W_ih2`, `W_hh2`, `b_ih2`, `b_hh2` for a recurrent layer (in
/// the same count), `γβ1`, … for batch normalisations (γ and β together).
fn parameter_names<B: Backend>(model: &Model<B>) -> Vec<String> {
    let (mut dense, mut norm) = (0, 0);
    let mut names = Vec::new();
    for layer in &model.spec.layers {
        match layer.kind().name() {
            "dense" | "conv" => {
                dense += 1;
                names.extend([format!("W{dense}"), format!("b{dense}")]);
            }
            "rnn" | "lstm" | "gru" => {
                dense += 1;
                names.extend(["W_ih", "W_hh", "b_ih", "b_hh"].map(|p| format!("{p}{dense}")));
            }
            "batch_norm" => {
                norm += 1;
                names.push(format!("γβ{norm}"));
            }
            _ => {}
        }
    }
    names
}
