//! Optimizer updates on the CPU, in parallel chunks.

use super::{CpuTensor, chunk_len, in_parallel, simd};
use crate::error::Result;
use crate::optim::OptimStep;
use crate::shape;

pub(super) fn optimizer_step(
    step: &OptimStep,
    param: &mut CpuTensor,
    grad: &CpuTensor,
    s1: &mut CpuTensor,
    s2: &mut CpuTensor,
) -> Result<()> {
    shape::optimizer(step.code, param, grad, s1, s2)?;
    let n = param.data.len();
    let chunk = chunk_len(n);
    let jobs = param
        .data
        .chunks_mut(chunk)
        .zip(grad.data.chunks(chunk))
        .zip(state_chunks(s1, n, chunk))
        .zip(state_chunks(s2, n, chunk));
    in_parallel(jobs, |(((p, g), s1), s2)| {
        simd::widest(|| match step.code {
            0 => update::<0>(step, p, g, s1, s2),
            1 => update::<1>(step, p, g, s1, s2),
            2 => update::<2>(step, p, g, s1, s2),
            3 => update::<3>(step, p, g, s1, s2),
            4 => update::<4>(step, p, g, s1, s2),
            _ => update::<5>(step, p, g, s1, s2),
        })
    });
    Ok(())
}

/// [`OptimStep::apply`] over a chunk, compiled once per rule so that the loop has no branch on the
/// rule and vectorises. A state the rule does not use comes as an empty slice.
#[inline(always)]
fn update<const CODE: u32>(
    step: &OptimStep,
    p: &mut [f32],
    g: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
) {
    let step = OptimStep {
        code: CODE,
        ..*step
    };
    let spare = || 0.0f32;
    match (s1.is_empty(), s2.is_empty()) {
        (true, _) => p
            .iter_mut()
            .zip(g)
            .for_each(|(p, &g)| step.apply(p, g, &mut spare(), &mut spare())),
        (false, true) => p
            .iter_mut()
            .zip(g)
            .zip(s1)
            .for_each(|((p, &g), a)| step.apply(p, g, a, &mut spare())),
        (false, false) => p
            .iter_mut()
            .zip(g)
            .zip(s1)
            .zip(s2)
            .for_each(|(((p, &g), a), b)| step.apply(p, g, a, b)),
    }
}

/// `chunk`-long pieces of an optimizer state, or endless empty slices for a state the rule ignores
/// (stored 1×1).
fn state_chunks(
    state: &mut CpuTensor,
    n: usize,
    chunk: usize,
) -> Box<dyn Iterator<Item = &mut [f32]> + Send + '_> {
    if state.data.len() == n {
        Box::new(state.data.chunks_mut(chunk))
    } else {
        Box::new(std::iter::repeat_with(|| -> &mut [f32] { &mut [] }))
    }
}
