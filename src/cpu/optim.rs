//! Optimizer updates on the CPU, in parallel chunks.

use super::{CpuTensor, chunk_len, in_parallel};
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
        let (mut unused1, mut unused2) = (0.0f32, 0.0f32);
        for i in 0..p.len() {
            let a = s1.get_mut(i).unwrap_or(&mut unused1);
            let b = s2.get_mut(i).unwrap_or(&mut unused2);
            step.apply(&mut p[i], g[i], a, b);
        }
    });
    Ok(())
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
