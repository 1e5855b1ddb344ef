//! Optimizer updates on the GPU (`shaders/optim.wgsl`).

use super::{ELEMENTWISE_BLOCK, GpuBackend, GpuTensor, f, kernels, u};
use crate::backend::Shaped;
use crate::error::Result;
use crate::optim::OptimStep;
use crate::shape;

pub(super) fn optimizer_step(
    gpu: &GpuBackend,
    step: &OptimStep,
    param: &mut GpuTensor,
    grad: &GpuTensor,
    s1: &mut GpuTensor,
    s2: &mut GpuTensor,
) -> Result<()> {
    shape::optimizer(step.code, param, grad, s1, s2)?;
    gpu.run(
        &kernels::OPTIM_STEP,
        &[step.code, u32::from(step.nesterov)],
        &[
            u(param.len()),
            f(step.lr),
            f(step.h1),
            f(step.h2),
            f(step.eps),
            f(step.weight_decay),
            f(step.c1),
            f(step.c2),
        ],
        &[param.binding(), grad.binding(), s1.binding(), s2.binding()],
        gpu.grid(param.len().div_ceil(4), ELEMENTWISE_BLOCK),
    );
    Ok(())
}
