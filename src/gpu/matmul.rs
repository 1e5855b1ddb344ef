//! The matrix product on the GPU: the kernels there are, the rules that pick one per adapter and per
//! product (or a forced choice), split-K's plan and scratch buffer, and the launch.

use std::cell::Ref;

use super::{GpuBackend, GpuTensor, f, kernels, max_binding, u};
use crate::backend::{Epilogue, Shaped};
use crate::error::{Error, Result};
use crate::shape;
use crate::window::Window;

/// Which matrix-product kernel the backend uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// Chosen per adapter (the default): [`MatmulKernel::Subgroup8`] on a CPU-emulated adapter with
    /// subgroups of 8, [`MatmulKernel::Tiled`] on every other.
    Auto,
    /// The register-blocked workgroup-memory kernel, portable to any device and shape, with K split
    /// into partial products and a fixed-order reduction where the output has too few tiles to fill a
    /// GPU and K is long (see [`split_plan`]).
    Tiled,
    /// The tiled kernel, never split.
    Unsplit,
    /// The tiled kernel, split wherever K has at least two slices of 16.
    SplitK,
    /// Subgroup broadcast without workgroup memory: for CPU-emulated adapters with subgroups of 8.
    Subgroup8,
}

impl MatmulKernel {
    /// Every kernel, as `NABLA_MATMUL` spells them.
    pub const ALL: [MatmulKernel; 5] = [
        MatmulKernel::Auto,
        MatmulKernel::Tiled,
        MatmulKernel::Unsplit,
        MatmulKernel::SplitK,
        MatmulKernel::Subgroup8,
    ];

    /// The kernel's name as `NABLA_MATMUL` spells it.
    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Auto => "auto",
            MatmulKernel::Tiled => "tiled",
            MatmulKernel::Unsplit => "unsplit",
            MatmulKernel::SplitK => "splitk",
            MatmulKernel::Subgroup8 => "subgroup",
        }
    }
}

/// The environment variable that forces a matmul kernel (`auto`, `tiled`, `unsplit`, `splitk` or
/// `subgroup`).
pub const MATMUL_ENV: &str = "NABLA_MATMUL";

/// Columns of C per workgroup of the subgroup kernel, and its most row groups of 8.
const SUBGROUP_COLS: usize = 32;
const SUBGROUP_MAX_GROUPS: usize = 8;

/// The subgroup kernel's row groups per workgroup for an M-row product, and how many workgroups cover
/// those rows: as few workgroups as [`SUBGROUP_MAX_GROUPS`] allows, each with as few groups as they
/// need between them (M = 72: two workgroups of 5 groups, not 8).
fn subgroup_rows(m: usize) -> (usize, usize) {
    let blocks = m.div_ceil(8 * SUBGROUP_MAX_GROUPS).max(1);
    let groups = m.div_ceil(8 * blocks).max(1);
    (groups, m.div_ceil(8 * groups))
}

/// Rows and columns of C per workgroup of the tiled kernel, and the K slice it stages.
const TILE: usize = 64;
const SLICE: usize = 16;
/// Workgroups a product should spread over: about two per compute unit of a large GPU (an H100 has 132).
/// Products with fewer output tiles than this get their K split, if K is long.
const SPLIT_TARGET_GROUPS: usize = 256;
/// K from which splitting pays for its second dispatch, and the least K each split keeps.
const SPLIT_FROM_K: usize = 512;
const SPLIT_MIN_K: usize = 64;
/// Most splits by rule (each adds an M·N partial to the scratch buffer and to the reduction).
const MAX_SPLITS: usize = 16;
/// Splits when `MatmulKernel::SplitK` is forced (tests and benches), where K allows.
const FORCED_SPLITS: usize = 4;

/// How the tiled kernel runs an `[M, K]·[K, N]` product: `splits` workgroups along K, each covering
/// `k_chunk` (a multiple of the slice), so `splits = 1` is one unsplit dispatch. `forced` splits wherever
/// K has two slices; otherwise K is split only when the output has fewer than [`SPLIT_TARGET_GROUPS`]
/// tiles and K is at least [`SPLIT_FROM_K`]. `max_splits` bounds the scratch buffer (`splits·M·N` floats).
pub fn split_plan(m: usize, k: usize, n: usize, forced: bool, max_splits: usize) -> (usize, usize) {
    let slices = k.div_ceil(SLICE).max(1);
    let tiles = (m.div_ceil(TILE) * n.div_ceil(TILE)).max(1);
    let wanted = if forced {
        FORCED_SPLITS
    } else if k < SPLIT_FROM_K || tiles >= SPLIT_TARGET_GROUPS {
        1
    } else {
        SPLIT_TARGET_GROUPS
            .div_ceil(tiles)
            .min(k / SPLIT_MIN_K)
            .min(MAX_SPLITS)
    };
    let per_split = slices.div_ceil(wanted.min(max_splits).clamp(1, slices));
    (slices.div_ceil(per_split), per_split * SLICE)
}

impl GpuBackend {
    /// The matmul kernel in use (possibly [`MatmulKernel::Auto`]).
    pub fn matmul_kernel(&self) -> MatmulKernel {
        self.matmul
    }

    /// Switches the matmul kernel; the subgroup kernel needs subgroups of exactly 8 lanes.
    pub fn set_matmul_kernel(&mut self, kernel: MatmulKernel) -> Result<()> {
        if kernel == MatmulKernel::Subgroup8 && !self.ctx.subgroups_of(8) {
            return Err(Error::Device(format!(
                "the subgroup matmul needs subgroups of exactly 8 lanes; {} has {}..{}{}",
                self.ctx.info.name,
                self.ctx.info.subgroup_min_size,
                self.ctx.info.subgroup_max_size,
                if self.ctx.features.contains(wgpu::Features::SUBGROUP) {
                    ""
                } else {
                    " and no subgroup support"
                }
            )));
        }
        self.matmul = kernel;
        Ok(())
    }

    /// What [`MatmulKernel::Auto`] resolves to on this adapter: the subgroup kernel on a CPU-emulated
    /// adapter with subgroups of 8 (where workgroup memory is slow), else the tiled kernel, split by shape.
    pub(super) fn resolved_matmul(&self) -> MatmulKernel {
        match self.matmul {
            MatmulKernel::Auto if self.ctx.is_software() && self.ctx.subgroups_of(8) => {
                MatmulKernel::Subgroup8
            }
            MatmulKernel::Auto => MatmulKernel::Tiled,
            kernel => kernel,
        }
    }

    /// The scratch buffer for split-K partials, at least `floats` long; it grows to the next power of two
    /// (within the binding limit), so that a run's few sizes reallocate it at most a few times.
    fn scratch(&self, floats: usize) -> Result<Ref<'_, GpuTensor>> {
        let too_small = self
            .split_scratch
            .borrow()
            .as_ref()
            .is_none_or(|t| t.len() < floats);
        if too_small {
            let limit = (max_binding(&self.ctx) / 4) as usize;
            let size = floats.next_power_of_two().min(limit).max(floats);
            *self.split_scratch.borrow_mut() = Some(Self::raw_tensor(
                &self.ctx,
                &self.recorder.borrow().retired(),
                1,
                size,
                None,
            )?);
        }
        Ok(Ref::map(self.split_scratch.borrow(), |t| {
            t.as_ref().expect("allocated above")
        }))
    }

    /// A matrix product's grid, or an error when a dimension exceeds the device's limit.
    fn matmul_grid(&self, x: usize, y: usize, z: usize) -> Result<[u32; 3]> {
        let max = self.ctx.limits.max_compute_workgroups_per_dimension as usize;
        if x.max(y).max(z) > max {
            return Err(Error::Device(format!(
                "a matrix product of {x}×{y}×{z} workgroups exceeds {}'s limit of {max} per dimension; \
                 use smaller matrices",
                self.ctx.info.name
            )));
        }
        Ok([u(x), u(y), u(z)])
    }

    /// Records the implicit GEMM (`shaders/matmul_implicit.wgsl`): `y = epilogue(conv(x, W))` as images,
    /// the product kernel reading `x` through the im2col map; the shapes are checked here. A gradient
    /// epilogue reads its forward output at the index of `y` it scales (the transposed convolution
    /// that computes an input gradient).
    pub(super) fn launch_convolution(
        &self,
        w: &Window,
        x: &GpuTensor,
        weight: &GpuTensor,
        epilogue: Epilogue<'_, GpuTensor>,
        y: &mut GpuTensor,
    ) -> Result<()> {
        let (batch, filters) = w.check_convolution(x, weight, epilogue.bias_row(), y)?;
        if epilogue.grad_output().is_some() {
            // A derivative the kernel can take from the output, over an output shaped like y.
            if let Some((_, output)) = epilogue.gradient_factor()? {
                shape::same("activation output", output, y)?;
            }
        }
        let (m, k, n) = (batch * w.positions(), w.patch(), filters);
        if m == 0 || n == 0 {
            return Ok(());
        }
        let act = epilogue.activation();
        let bias = epilogue.bias_row().unwrap_or(&self.placeholder);
        let aux = epilogue.grad_output().unwrap_or(&self.placeholder);
        let has_bias = u32::from(epilogue.bias_row().is_some());
        let grad = u32::from(epilogue.grad_output().is_some());
        let window = w.words(batch);
        if self.resolved_matmul() == MatmulKernel::Subgroup8 {
            let mut params = vec![u(m), u(n), u(k), f(act.alpha())];
            params.extend(window);
            let (groups, row_blocks) = subgroup_rows(m);
            self.run(
                &kernels::MATMUL_SUBGROUP_MAIN,
                &[0, 1, has_bias, act.code(), grad, 1, u(groups)],
                &params,
                &[
                    x.binding(),
                    weight.binding(),
                    bias.binding(),
                    y.binding(),
                    x.binding(),
                    weight.binding(),
                    aux.binding(),
                ],
                self.matmul_grid(n.div_ceil(SUBGROUP_COLS), row_blocks, 1)?,
            );
            return Ok(());
        }
        let mut params = vec![u(m), u(n), u(k), f(act.alpha()), u(k), 1];
        params.extend(window);
        self.run(
            &kernels::MATMUL_TILED_MAIN,
            &[0, 1, has_bias, act.code(), grad, 0, 1],
            &params,
            &[
                x.binding(),
                weight.binding(),
                x.binding(),
                weight.binding(),
                bias.binding(),
                y.binding(),
                aux.binding(),
            ],
            self.matmul_grid(n.div_ceil(TILE), m.div_ceil(TILE), 1)?,
        );
        Ok(())
    }

    /// Records `C = epilogue(op(A)·op(B))` with the kernel the rules (or a forced choice) pick; the
    /// shapes are checked here.
    pub(super) fn launch_matmul(
        &self,
        a: &GpuTensor,
        trans_a: bool,
        b: &GpuTensor,
        trans_b: bool,
        epilogue: Epilogue<'_, GpuTensor>,
        c: &mut GpuTensor,
    ) -> Result<()> {
        let (m, k, n) = shape::matmul(a, trans_a, b, trans_b, &epilogue, c)?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        let act = epilogue.activation();
        let bias = epilogue.bias_row().unwrap_or(&self.placeholder);
        let aux = epilogue.grad_output().unwrap_or(&self.placeholder);
        let has_bias = u32::from(epilogue.bias_row().is_some());
        let grad = u32::from(epilogue.grad_output().is_some());
        let kernel = self.resolved_matmul();
        if kernel == MatmulKernel::Subgroup8 {
            let (groups, row_blocks) = subgroup_rows(m);
            let grid = self.matmul_grid(n.div_ceil(SUBGROUP_COLS), row_blocks, 1)?;
            // The subgroup kernel binds A and B a second time as arrays of vec4 for its aligned loads.
            self.run(
                &kernels::MATMUL_SUBGROUP_MAIN,
                &[
                    u32::from(trans_a),
                    u32::from(trans_b),
                    has_bias,
                    act.code(),
                    grad,
                    0,
                    u(groups),
                ],
                &[u(m), u(n), u(k), f(act.alpha())],
                &[
                    a.binding(),
                    b.binding(),
                    bias.binding(),
                    c.binding(),
                    a.binding(),
                    b.binding(),
                    aux.binding(),
                ],
                grid,
            );
            return Ok(());
        }
        let max_splits = (max_binding(&self.ctx) / (m * n * 4) as u64) as usize;
        let (splits, k_chunk) = match kernel {
            MatmulKernel::Unsplit => (1, k),
            by_rules_or_forced => split_plan(
                m,
                k,
                n,
                by_rules_or_forced == MatmulKernel::SplitK,
                max_splits,
            ),
        };
        let params = [u(m), u(n), u(k), f(act.alpha()), u(k_chunk), u(splits)];
        let groups = self.matmul_grid(n.div_ceil(TILE), m.div_ceil(TILE), splits)?;
        let ta_tb = [u32::from(trans_a), u32::from(trans_b)];
        if splits == 1 {
            self.run(
                &kernels::MATMUL_TILED_MAIN,
                &[ta_tb[0], ta_tb[1], has_bias, act.code(), grad, 0],
                &params,
                &[
                    a.binding(),
                    b.binding(),
                    a.binding(),
                    b.binding(),
                    bias.binding(),
                    c.binding(),
                    aux.binding(),
                ],
                groups,
            );
            return Ok(());
        }
        // Partial products into the scratch buffer (no epilogue), then their sum in order of the split.
        let scratch = self.scratch(splits * m * n)?;
        self.run(
            &kernels::MATMUL_TILED_MAIN,
            &[ta_tb[0], ta_tb[1], 0, 0, 0, 1],
            &params,
            &[
                a.binding(),
                b.binding(),
                a.binding(),
                b.binding(),
                self.placeholder.binding(),
                scratch.binding(),
                self.placeholder.binding(),
            ],
            groups,
        );
        self.run(
            &kernels::MATMUL_REDUCE_SPLITS,
            &[has_bias, act.code(), grad],
            &params,
            &[
                bias.binding(),
                c.binding(),
                aux.binding(),
                scratch.binding(),
            ],
            self.grid(m * n, 256),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split_plan;

    /// Every split covers whole slices, the splits cover K, and none is empty.
    fn assert_covers(k: usize, (splits, chunk): (usize, usize)) {
        assert_eq!(chunk % 16, 0, "K {k}: chunk {chunk}");
        assert!(splits * chunk >= k, "K {k}: {splits}×{chunk}");
        assert!(
            splits == 1 || (splits - 1) * chunk < k,
            "K {k}: {splits}×{chunk}"
        );
    }

    #[test]
    fn split_k_goes_to_long_products_with_few_tiles() {
        // W2's first layer, 128×784×128: four output tiles, K = 784.
        let w2 = split_plan(128, 784, 128, false, usize::MAX);
        assert!(w2.0 >= 4, "{w2:?}");
        assert_covers(784, w2);
        // Short K (a weight gradient with batch 128) and outputs of many tiles stay whole.
        assert_eq!(split_plan(784, 128, 128, false, usize::MAX).0, 1);
        assert_eq!(split_plan(1024, 1024, 1024, false, usize::MAX).0, 1);
        // Forced: split wherever K has two slices, never more splits than slices.
        assert_eq!(split_plan(7, 33, 5, true, usize::MAX).0, 3);
        assert_eq!(split_plan(7, 16, 5, true, usize::MAX).0, 1);
        assert_eq!(split_plan(7, 1, 5, true, usize::MAX).0, 1);
        // The scratch limit caps the splits.
        assert_eq!(split_plan(128, 784, 128, false, 2).0, 2);
        for k in [1, 15, 16, 17, 100, 511, 512, 784, 5000] {
            assert_covers(k, split_plan(64, k, 64, false, usize::MAX));
            assert_covers(k, split_plan(64, k, 64, true, usize::MAX));
        }
    }
}
