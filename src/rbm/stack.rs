//! Deep belief networks: RBMs trained greedily, one after another and without labels, each on the
//! hidden probabilities of the one below; their weights then start a multi-layer perceptron that
//! backprop fine-tunes (Hinton, Osindero & Teh 2006; Hinton & Salakhutdinov 2006).

use super::train::{RbmConfig, RbmEpoch, feed_chunks, train_rbm};
use super::{Rbm, RbmValues};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::layers::Values;
use crate::model::Model;
use crate::train::DeviceSplit;

/// Pre-trains a stack of RBMs of `sizes` (`[784, 500, 500, 2000]`: three RBMs, the first reading the
/// samples' `784` features), each by `config` (its seed plus the layer's index), with its visible biases
/// started at the log-odds of the data it reads. `observe` hears `(layer, epoch figures)`.
pub fn pretrain<B: Backend>(
    b: &B,
    sizes: &[usize],
    train: &DeviceSplit<B>,
    held_out: Option<&DeviceSplit<B>>,
    config: &RbmConfig,
    mut observe: impl FnMut(usize, &RbmEpoch),
) -> Result<Vec<Rbm<B>>> {
    if sizes.len() < 2 || sizes.contains(&0) {
        return Err(Error::Invalid(format!(
            "a stack of RBMs needs at least two non-zero layer sizes, e.g. 784-500 (got {sizes:?})"
        )));
    }
    if sizes[0] != train.width {
        return Err(Error::shape(format!(
            "the stack's first layer has {} units but the samples have {} features",
            sizes[0], train.width
        )));
    }
    let mut stack: Vec<Rbm<B>> = Vec::with_capacity(sizes.len() - 1);
    for (layer, pair) in sizes.windows(2).enumerate() {
        let seed = config.seed.wrapping_add(layer as u64);
        let mut values = RbmValues::initial(pair[0], pair[1], seed)?;
        values.set_visible_bias_from_means(&means(b, &stack, train)?)?;
        let mut rbm = Rbm::from_values(b, &values)?;
        let layer_config = RbmConfig {
            seed,
            ..config.clone()
        };
        train_rbm(
            b,
            &mut rbm,
            &stack,
            train,
            held_out,
            &layer_config,
            |e, _| observe(layer, e),
        )?;
        stack.push(rbm);
    }
    Ok(stack)
}

/// Each input unit's mean over `set` as the RBM above `lower` sees it (fed up through `lower`).
pub fn means<B: Backend>(b: &B, lower: &[Rbm<B>], set: &DeviceSplit<B>) -> Result<Vec<f32>> {
    let width = lower.last().map_or(set.width, |r| r.hidden());
    let mut column = b.zeros(1, width)?;
    let mut sums = vec![0f64; width];
    feed_chunks(b, lower, set, set.len, |x| {
        b.bias_grad(x, &mut column)?;
        for (s, v) in sums.iter_mut().zip(b.read(&column)?) {
            *s += f64::from(v);
        }
        Ok(())
    })?;
    Ok(sums.iter().map(|&s| (s / set.len as f64) as f32).collect())
}

/// Starts `model`'s first dense layers from `stack`: dense layer `i` takes RBM `i`'s weight `[H, V]` as
/// its `[out, in]` weight and the hidden bias as its bias (the MLP's forward pass then computes each
/// RBM's hidden probabilities when its activations are sigmoids). The layers above the stack keep
/// their initialisation. Refuses a model whose dense layers do not have the stack's sizes in order.
pub fn initialise<B: Backend>(b: &B, stack: &[RbmValues], model: &mut Model<B>) -> Result<()> {
    let shapes = model.spec.shapes()?;
    let dense: Vec<usize> = model
        .spec
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind().name() == "dense")
        .map(|(i, _)| i)
        .collect();
    if dense.len() < stack.len() {
        return Err(Error::shape(format!(
            "a stack of {} RBMs initialises as many dense layers, but `{}` has {}",
            stack.len(),
            model.spec.describe(),
            dense.len()
        )));
    }
    for (rbm, &at) in stack.iter().zip(&dense) {
        let input = if at == 0 {
            model.spec.input
        } else {
            shapes[at - 1]
        };
        let (inputs, outputs) = (input.len(), shapes[at].len());
        if (inputs, outputs) != (rbm.visible, rbm.hidden) {
            return Err(Error::shape(format!(
                "layer {at} of `{}` is a dense layer of {inputs}→{outputs}, but the RBM that should \
                 start it is {}→{}",
                model.spec.describe(),
                rbm.visible,
                rbm.hidden
            )));
        }
        let read = |name: &str, _shape: &[usize]| -> Result<Values> {
            match name {
                "weight" => Ok(Values::F32(rbm.weight.clone())),
                "bias" => Ok(Values::F32(rbm.hidden_bias.clone())),
                _ => Err(Error::Invalid(format!("an RBM has no tensor `{name}`"))),
            }
        };
        model.layers[at].import(b, &read)?;
    }
    Ok(())
}

/// The stack's host values, bottom first.
pub fn read_stack<B: Backend>(b: &B, stack: &[Rbm<B>]) -> Result<Vec<RbmValues>> {
    stack.iter().map(|r| r.read(b)).collect()
}

/// The layer sizes of a stack, bottom first: `[V₀, H₀, H₁, …]`.
pub fn sizes(stack: &[RbmValues]) -> Vec<usize> {
    let mut sizes: Vec<usize> = stack.first().map(|r| r.visible).into_iter().collect();
    sizes.extend(stack.iter().map(|r| r.hidden));
    sizes
}

/// Checks that each RBM's visible units are the hidden units of the one below.
pub fn check_stack(stack: &[RbmValues]) -> Result<()> {
    for pair in stack.windows(2) {
        if pair[0].hidden != pair[1].visible {
            return Err(Error::shape(format!(
                "an RBM of {} hidden units is under one of {} visible units",
                pair[0].hidden, pair[1].visible
            )));
        }
    }
    stack.iter().try_for_each(RbmValues::check)
}
