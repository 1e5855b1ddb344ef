//! The GPU backend: every [`Backend`] operation as a WGSL kernel run through wgpu.
//!
//! Operations are recorded, not run (see [`recorder`]); [`Backend::read`] submits what is pending and
//! waits. Tensors, index vectors and datasets live in device storage buffers for their whole life.

pub mod context;
pub mod kernels;
pub mod matmul;
pub mod recorder;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::dropout;
use crate::error::{Error, Result};
use crate::optim::OptimStep;
use crate::shape;
pub use context::GpuContext;
use kernels::{KernelCache, KernelSpec, Overrides};
pub use matmul::{MATMUL_ENV, MatmulKernel};
use recorder::{Binding, Recorder};

/// vec4s per workgroup of the element-wise kernels (`LANES·PER_LANE` in `elementwise.wgsl`).
const ELEMENTWISE_BLOCK: usize = 512;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A device-resident row-major `f32` matrix.
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    id: u64,
    rows: usize,
    cols: usize,
}

impl Shaped for GpuTensor {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

impl GpuTensor {
    fn binding(&self) -> Binding<'_> {
        Binding {
            id: self.id,
            buffer: &self.buffer,
        }
    }
}

/// A device-resident vector of `u32`.
pub struct GpuIndices {
    buffer: wgpu::Buffer,
    id: u64,
    len: usize,
}

impl GpuIndices {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn binding(&self) -> Binding<'_> {
        Binding {
            id: self.id,
            buffer: &self.buffer,
        }
    }
}

/// A training set on the device: pixels as bytes packed four to a word, labels as words.
pub struct GpuDataset {
    pixels: GpuIndices,
    labels: GpuIndices,
    samples: usize,
    features: usize,
    scale: f32,
    shift: f32,
}

/// The GPU backend.
pub struct GpuBackend {
    ctx: GpuContext,
    kernels: KernelCache,
    recorder: RefCell<Recorder>,
    matmul: MatmulKernel,
    /// Bound where a kernel's optional input is absent (no bias).
    placeholder: GpuTensor,
    /// The split-K partial products, grown to the largest product that needed one.
    split_scratch: RefCell<Option<GpuTensor>>,
    /// Interleaved row slices the bias gradient sums separately and then adds by a tree (`blas.wgsl`).
    bias_grad_phases: u32,
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

fn u(n: usize) -> u32 {
    n as u32
}

impl GpuBackend {
    /// Opens the preferred adapter (see [`context`]) and picks the matmul kernel for it.
    pub fn new() -> Result<Self> {
        Self::with_context(GpuContext::new()?)
    }

    /// A backend on an already opened device.
    pub fn with_context(ctx: GpuContext) -> Result<Self> {
        let recorder = RefCell::new(Recorder::new(&ctx.device, &ctx.limits));
        let placeholder = Self::raw_tensor(&ctx, 1, 1, None)?;
        let mut gpu = GpuBackend {
            matmul: MatmulKernel::Auto,
            ctx,
            kernels: KernelCache::default(),
            recorder,
            placeholder,
            split_scratch: RefCell::new(None),
            bias_grad_phases: 1,
        };
        // A GPU waits on memory through a long chain of loads; an emulated one pays for barriers.
        if !gpu.ctx.is_software() {
            gpu.set_bias_grad_phases(16)?;
        }
        match std::env::var(MATMUL_ENV).as_deref() {
            Ok("") | Err(_) => {}
            Ok(name) => {
                let kernel = MatmulKernel::ALL
                    .into_iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "{MATMUL_ENV}={name}: expected auto, tiled, unsplit, splitk or subgroup"
                        ))
                    })?;
                gpu.set_matmul_kernel(kernel)?;
            }
        }
        Ok(gpu)
    }

    /// The device this backend runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// How many interleaved row slices the bias gradient sums separately (see
    /// [`GpuBackend::set_bias_grad_phases`]).
    pub fn bias_grad_phases(&self) -> u32 {
        self.bias_grad_phases
    }

    /// Sets how many interleaved row slices the bias gradient (column sums) adds up separately before a
    /// tree sums them: 1 (one invocation walks a whole column: CPU-emulated adapters) or a power of two up
    /// to 16 (GPUs).
    pub fn set_bias_grad_phases(&mut self, phases: u32) -> Result<()> {
        if !phases.is_power_of_two() || phases > 16 {
            return Err(Error::Invalid(format!(
                "bias gradient phases {phases}: expected 1, 2, 4, 8 or 16"
            )));
        }
        self.bias_grad_phases = phases;
        Ok(())
    }

    /// Submits all recorded work without waiting for it.
    fn flush(&self) {
        self.recorder
            .borrow_mut()
            .flush(&self.ctx.device, &self.ctx.queue);
    }

    fn buffer(ctx: &GpuContext, bytes: usize, contents: Option<&[u8]>) -> Result<wgpu::Buffer> {
        let max = max_binding(ctx);
        if bytes as u64 > max {
            return Err(Error::Device(format!(
                "a buffer of {bytes} bytes exceeds {}'s limit of {max} bytes per storage binding; \
                 use a smaller batch or layer",
                ctx.info.name
            )));
        }
        // Whole vec4s, so any buffer may also be bound as an array of vec4.
        let size = (bytes.max(16) as u64).div_ceil(16) * 16;
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage,
            mapped_at_creation: contents.is_some(),
        });
        if let Some(data) = contents {
            buffer
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::Device(format!("mapping a new buffer failed: {e}")))?
                .slice(..data.len())
                .copy_from_slice(data);
            buffer.unmap();
        }
        Ok(buffer)
    }

    fn raw_tensor(
        ctx: &GpuContext,
        rows: usize,
        cols: usize,
        data: Option<&[f32]>,
    ) -> Result<GpuTensor> {
        let len = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| Error::shape(format!("{rows}×{cols} overflows")))?;
        Ok(GpuTensor {
            buffer: Self::buffer(ctx, len, data.map(bytemuck::cast_slice))?,
            id: next_id(),
            rows,
            cols,
        })
    }

    fn raw_indices(&self, words: &[u32]) -> Result<GpuIndices> {
        Ok(GpuIndices {
            buffer: Self::buffer(
                &self.ctx,
                words.len() * 4,
                Some(bytemuck::cast_slice(words)),
            )?,
            id: next_id(),
            len: words.len(),
        })
    }

    /// Records one dispatch of `spec`.
    fn run(
        &self,
        spec: &'static KernelSpec,
        overrides: Overrides,
        params: &[u32],
        buffers: &[Binding<'_>],
        groups: [u32; 3],
    ) {
        let kernel = self.kernels.get(&self.ctx.device, spec, overrides);
        self.recorder.borrow_mut().dispatch(
            &self.ctx.device,
            &self.ctx.queue,
            kernel,
            params,
            buffers,
            groups,
        );
    }

    /// The grid for `items` work items at `per_group` items per workgroup.
    fn grid(&self, items: usize, per_group: usize) -> [u32; 3] {
        fold_grid(
            items.div_ceil(per_group) as u64,
            u64::from(self.ctx.limits.max_compute_workgroups_per_dimension),
        )
    }
}

/// The largest buffer a storage binding may hold on this device.
fn max_binding(ctx: &GpuContext) -> u64 {
    ctx.limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size)
}

/// `groups` workgroups laid out in x, folded into a second dimension past `max` per dimension (the
/// kernels rebuild the linear index as `group.x + group.y·groups.x` and skip what lies past the end).
fn fold_grid(groups: u64, max: u64) -> [u32; 3] {
    if groups <= max {
        [groups as u32, 1, 1]
    } else {
        [max as u32, groups.div_ceil(max) as u32, 1]
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Indices = GpuIndices;
    type Dataset = GpuDataset;

    fn describe(&self) -> String {
        let kernel = match (self.matmul, self.resolved_matmul()) {
            (MatmulKernel::Auto, MatmulKernel::Subgroup8) => "auto: subgroup".to_string(),
            (MatmulKernel::Auto, _) => "auto: tiled, split-K by shape".to_string(),
            (MatmulKernel::Tiled, _) => "tiled, split-K by shape".to_string(),
            (forced, _) => forced.name().to_string(),
        };
        format!("{}, {kernel} matmul", context::describe(&self.ctx.info))
    }

    fn submit(&self) {
        self.flush();
    }

    fn max_tensor_bytes(&self) -> Option<u64> {
        Some(max_binding(&self.ctx))
    }

    fn kernel_launches(&self) -> u64 {
        self.recorder.borrow().dispatches()
    }

    fn synchronize(&self) -> Result<()> {
        self.flush();
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(format!("waiting for the GPU failed: {e}")))
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        Self::raw_tensor(&self.ctx, rows, cols, None)
    }

    fn tensor(&self, rows: usize, cols: usize, data: &[f32]) -> Result<GpuTensor> {
        shape::data_len(data.len(), rows, cols)?;
        Self::raw_tensor(&self.ctx, rows, cols, Some(data))
    }

    fn write(&self, t: &mut GpuTensor, data: &[f32]) -> Result<()> {
        shape::data_len(data.len(), t.rows, t.cols)?;
        // Work recorded earlier may read `t`: it must run before the new contents land.
        self.flush();
        self.ctx
            .queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    fn read(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.recorder.borrow_mut().read(
            &self.ctx.device,
            &self.ctx.queue,
            &t.buffer,
            (t.len() * 4) as u64,
        )?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn indices(&self, data: &[u32]) -> Result<GpuIndices> {
        self.raw_indices(data)
    }

    fn read_indices(&self, ids: &GpuIndices) -> Result<Vec<u32>> {
        let bytes = self.recorder.borrow_mut().read(
            &self.ctx.device,
            &self.ctx.queue,
            &ids.buffer,
            (ids.len * 4) as u64,
        )?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn dataset(
        &self,
        pixels: &[u8],
        labels: &[u8],
        features: usize,
        scale: f32,
        shift: f32,
    ) -> Result<GpuDataset> {
        shape::dataset(pixels.len(), labels.len(), features)?;
        let mut words = vec![0u32; pixels.len().div_ceil(4)];
        for (w, chunk) in words.iter_mut().zip(pixels.chunks(4)) {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u32::from_le_bytes(b);
        }
        let labels32: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
        Ok(GpuDataset {
            pixels: self.raw_indices(&words)?,
            labels: self.raw_indices(&labels32)?,
            samples: labels.len(),
            features,
            scale,
            shift,
        })
    }

    fn matmul(
        &self,
        a: &GpuTensor,
        trans_a: bool,
        b: &GpuTensor,
        trans_b: bool,
        epilogue: Epilogue<'_, GpuTensor>,
        c: &mut GpuTensor,
    ) -> Result<()> {
        self.launch_matmul(a, trans_a, b, trans_b, epilogue, c)
    }

    fn bias_grad(&self, dy: &GpuTensor, db: &mut GpuTensor) -> Result<()> {
        shape::exact("bias gradient", db, 1, dy.cols)?;
        let phases = self.bias_grad_phases;
        let cols = if phases == 1 { 64 } else { 16 };
        self.run(
            &kernels::COLUMN_SUMS,
            [cols, phases, 0, 0, 0, 0],
            &[u(dy.len()), u(dy.rows), u(dy.cols), 0],
            &[dy.binding(), db.binding()],
            self.grid(dy.cols, cols as usize),
        );
        Ok(())
    }

    fn axpy(&self, alpha: f32, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        shape::same("axpy", x, y)?;
        self.run(
            &kernels::AXPY,
            [0; 6],
            &[u(x.len()), 0, 0, f(alpha)],
            &[x.binding(), y.binding()],
            self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn scale(&self, alpha: f32, x: &mut GpuTensor) -> Result<()> {
        self.run(
            &kernels::SCALE,
            [0; 6],
            &[u(x.len()), 0, 0, f(alpha)],
            &[x.binding()],
            self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn activation_forward(&self, act: Activation, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        shape::same("activation", x, y)?;
        self.run(
            &kernels::ACT_FORWARD,
            [act.code(), 0, 0, 0, 0, 0],
            &[u(x.len()), f(act.alpha())],
            &[x.binding(), y.binding()],
            self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn dropout(&self, p: f32, key: u64, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        shape::same("dropout", x, y)?;
        dropout::check(p)?;
        self.run(
            &kernels::DROPOUT_MASK,
            [0; 6],
            &[
                u(x.len()),
                key as u32,
                (key >> 32) as u32,
                dropout::threshold(p),
                f(dropout::scale(p)),
            ],
            &[x.binding(), y.binding()],
            self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn activation_backward(
        &self,
        act: Activation,
        x: &GpuTensor,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        shape::same("activation backward (x, dy)", x, dy)?;
        shape::same("activation backward (x, dx)", x, dx)?;
        self.run(
            &kernels::ACT_BACKWARD,
            [act.code(), 0, 0, 0, 0, 0],
            &[u(x.len()), f(act.alpha())],
            &[x.binding(), dy.binding(), dx.binding()],
            self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn softmax(&self, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        shape::same("softmax", x, y)?;
        self.run(
            &kernels::SOFTMAX,
            [0; 6],
            &[u(x.rows), u(x.cols), 0, 0],
            &[x.binding(), y.binding()],
            self.grid(x.rows, 64),
        );
        Ok(())
    }

    fn softmax_cross_entropy(
        &self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        dlogits: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        shape::labels(logits.rows, labels.len)?;
        shape::same("softmax cross-entropy gradient", logits, dlogits)?;
        shape::exact("loss", loss, 1, 1)?;
        self.run(
            &kernels::SOFTMAX_XENT,
            [0; 6],
            &loss_params(logits),
            &[
                logits.binding(),
                labels.binding(),
                dlogits.binding(),
                loss.binding(),
            ],
            [1, 1, 1],
        );
        Ok(())
    }

    fn sigmoid_binary_cross_entropy(
        &self,
        logits: &GpuTensor,
        targets: &GpuTensor,
        dlogits: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        shape::same("binary cross-entropy targets", logits, targets)?;
        shape::same("binary cross-entropy gradient", logits, dlogits)?;
        shape::exact("loss", loss, 1, 1)?;
        self.run(
            &kernels::SIGMOID_BCE,
            [0; 6],
            &loss_params(logits),
            &[
                logits.binding(),
                targets.binding(),
                dlogits.binding(),
                loss.binding(),
            ],
            [1, 1, 1],
        );
        Ok(())
    }

    fn mean_squared_error(
        &self,
        y: &GpuTensor,
        targets: &GpuTensor,
        dy: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        shape::same("squared error targets", y, targets)?;
        shape::same("squared error gradient", y, dy)?;
        shape::exact("loss", loss, 1, 1)?;
        self.run(
            &kernels::MSE,
            [0; 6],
            &loss_params(y),
            &[y.binding(), targets.binding(), dy.binding(), loss.binding()],
            [1, 1, 1],
        );
        Ok(())
    }

    fn tally(
        &self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        loss: &GpuTensor,
        totals: &mut GpuTensor,
    ) -> Result<()> {
        shape::labels(logits.rows, labels.len)?;
        shape::exact("loss", loss, 1, 1)?;
        shape::exact("running totals", totals, 1, 2)?;
        self.run(
            &kernels::TALLY,
            [0; 6],
            &loss_params(logits),
            &[
                logits.binding(),
                labels.binding(),
                totals.binding(),
                loss.binding(),
            ],
            [1, 1, 1],
        );
        Ok(())
    }

    fn optimizer_step(
        &self,
        step: &OptimStep,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        s1: &mut GpuTensor,
        s2: &mut GpuTensor,
    ) -> Result<()> {
        shape::optimizer(step.code, param, grad, s1, s2)?;
        self.run(
            &kernels::OPTIM_STEP,
            [step.code, u32::from(step.nesterov), 0, 0, 0, 0],
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
            self.grid(param.len().div_ceil(4), ELEMENTWISE_BLOCK),
        );
        Ok(())
    }

    fn gather(
        &self,
        set: &GpuDataset,
        order: &GpuIndices,
        offset: usize,
        x: &mut GpuTensor,
        y: &mut GpuIndices,
    ) -> Result<()> {
        shape::gather(order.len, offset, x.rows, x.cols, set.features, y.len)?;
        let (kernel, groups) = if set.features.is_multiple_of(4) {
            (&kernels::GATHER_ROWS, self.grid(x.rows, 1))
        } else {
            (
                &kernels::GATHER_BATCH,
                self.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
            )
        };
        self.run(
            kernel,
            [0; 6],
            &[
                u(x.rows),
                u(set.features),
                u(offset),
                u(set.samples),
                f(set.scale),
                f(set.shift),
            ],
            &[
                set.pixels.binding(),
                set.labels.binding(),
                order.binding(),
                x.binding(),
                y.binding(),
            ],
            groups,
        );
        Ok(())
    }
}

/// The uniform block of the softmax/loss kernels.
fn loss_params(t: &GpuTensor) -> [u32; 4] {
    [
        u(t.rows),
        u(t.cols),
        f32::NAN.to_bits(),
        f(1.0 / t.rows as f32),
    ]
}

#[cfg(test)]
mod tests {
    use super::fold_grid;

    #[test]
    fn grids_fold_past_the_per_dimension_limit_and_cover_every_group() {
        assert_eq!(fold_grid(5, 65_535), [5, 1, 1]);
        assert_eq!(fold_grid(65_535, 65_535), [65_535, 1, 1]);
        for groups in [65_536u64, 200_000, 65_535 * 65_535] {
            let [x, y, _] = fold_grid(groups, 65_535);
            let covered = u64::from(x) * u64::from(y);
            assert!(
                covered >= groups && covered - groups < u64::from(x),
                "{groups}: {x}×{y}"
            );
        }
    }
}
