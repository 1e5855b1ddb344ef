//! The GPU backend: every [`Backend`] operation as a WGSL kernel run through wgpu.
//!
//! Operations are recorded, not run (see [`recorder`]); [`Backend::read`] submits what is pending and
//! waits. Tensors, index vectors and datasets live in device storage buffers for their whole life.

pub mod context;
pub mod kernels;
pub mod matmul;
pub mod recorder;

mod activation;
mod blas;
mod conv;
mod data;
mod loss;
mod norm;
mod optim;
mod recurrent;
mod window;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::activation::Activation;
use crate::backend::{Backend, ConvGrads, Epilogue, Samples, Shaped};
use crate::error::{Error, Result};
use crate::layers::{BuildAt, Layer, LayerKind};
use crate::optim::OptimStep;
use crate::recurrent::{Cell, Sequence, SequenceGrads};
use crate::shape;
use crate::window::Window;
pub use context::GpuContext;
use kernels::{KernelCache, KernelSpec, Overrides};
pub use matmul::{MATMUL_ENV, MatmulKernel};
use recorder::{Binding, Recorder, Retired};

/// vec4s per workgroup of the element-wise kernels (`LANES·PER_LANE` in `elementwise.wgsl`).
const ELEMENTWISE_BLOCK: usize = 512;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Tensors and index vectors alive on every GPU backend of this process (created less dropped).
static LIVE_BUFFERS: AtomicU64 = AtomicU64::new(0);

/// A new buffer's id; the buffer counts as alive until its owner is dropped.
fn next_id() -> u64 {
    LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// How many GPU tensors and index vectors are alive in this process, on every GPU backend: what a test
/// watches to see device memory leak, which the host's resident memory does not show on a discrete GPU.
pub fn live_buffers() -> u64 {
    LIVE_BUFFERS.load(Ordering::Relaxed)
}

/// A device-resident row-major `f32` matrix.
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    id: u64,
    rows: usize,
    cols: usize,
    /// Where the id goes when the tensor is dropped, so that cached bind groups let go of its buffer.
    retired: Retired,
}

impl Drop for GpuTensor {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        recorder::retire(&self.retired, self.id);
    }
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
    retired: Retired,
    len: usize,
}

impl Drop for GpuIndices {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        recorder::retire(&self.retired, self.id);
    }
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

/// A training set on the device: byte features packed four to a word (or floats), labels as words,
/// float targets as a tensor.
pub struct GpuDataset {
    features: data::StoredFeatures,
    labels: GpuIndices,
    targets: Option<GpuTensor>,
    /// Bound as the labels output where a gather writes none.
    no_labels: GpuIndices,
    samples: usize,
    width: usize,
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

    /// The GPU of the replica with local rank `local_rank` (see [`GpuContext::open_for_replica`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_replica(local_rank: usize) -> Result<Self> {
        Self::with_context(pollster::block_on(GpuContext::open_for_replica(
            local_rank,
        ))?)
    }

    /// [`GpuBackend::new`] without blocking, as a browser needs.
    pub async fn open() -> Result<Self> {
        Self::with_context(GpuContext::open().await?)
    }

    /// Copies `bytes` of `buffer` to the host after the pending work. The recorder is borrowed to
    /// start the copy and to keep its staging buffer, never across the wait.
    async fn read_bytes(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let readback =
            self.recorder
                .borrow_mut()
                .start_read(&self.ctx.device, &self.ctx.queue, buffer, bytes);
        let (data, staging) = readback.finish().await?;
        self.recorder.borrow_mut().recycle(staging);
        Ok(data)
    }

    /// A backend on an already opened device.
    pub fn with_context(ctx: GpuContext) -> Result<Self> {
        let recorder = Recorder::new(&ctx.device, &ctx.limits);
        let placeholder = Self::raw_tensor(&ctx, &recorder.retired(), 1, 1, None)?;
        let recorder = RefCell::new(recorder);
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
        retired: &Retired,
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
            retired: retired.clone(),
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
            retired: self.recorder.borrow().retired(),
        })
    }

    /// Records one dispatch of `spec` with its first override constants set to `overrides` (the rest 0).
    fn run(
        &self,
        spec: &'static KernelSpec,
        overrides: &[u32],
        params: &[u32],
        buffers: &[Binding<'_>],
        groups: [u32; 3],
    ) {
        debug_assert!(overrides.len() <= spec.overrides.len());
        let mut values: Overrides = [0; 8];
        values[..overrides.len()].copy_from_slice(overrides);
        let kernel = self.kernels.get(&self.ctx.device, spec, values);
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
    type ConvScratch = conv::ConvScratch;

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

    fn build_layer(
        &self,
        kind: &dyn LayerKind,
        at: &mut BuildAt<'_>,
    ) -> Result<Box<dyn Layer<Self>>> {
        kind.build_gpu(self, at)
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<GpuTensor> {
        Self::raw_tensor(
            &self.ctx,
            &self.recorder.borrow().retired(),
            rows,
            cols,
            None,
        )
    }

    fn tensor(&self, rows: usize, cols: usize, data: &[f32]) -> Result<GpuTensor> {
        shape::data_len(data.len(), rows, cols)?;
        Self::raw_tensor(
            &self.ctx,
            &self.recorder.borrow().retired(),
            rows,
            cols,
            Some(data),
        )
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

    async fn read_async(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(
            &self.read_bytes(&t.buffer, (t.len() * 4) as u64).await?,
        ))
    }

    fn indices(&self, data: &[u32]) -> Result<GpuIndices> {
        self.raw_indices(data)
    }

    fn read_indices(&self, ids: &GpuIndices) -> Result<Vec<u32>> {
        let bytes = pollster::block_on(self.read_bytes(&ids.buffer, (ids.len * 4) as u64))?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn dataset(&self, samples: &Samples<'_>) -> Result<GpuDataset> {
        data::dataset(self, samples)
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
        blas::bias_grad(self, dy, db)
    }

    fn axpy(&self, alpha: f32, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        blas::axpy(self, alpha, x, y)
    }

    fn scale(&self, alpha: f32, x: &mut GpuTensor) -> Result<()> {
        blas::scale(self, alpha, x)
    }

    fn activation_forward(&self, act: Activation, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        activation::activation_forward(self, act, x, y)
    }

    fn dropout(&self, p: f32, key: u64, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        activation::dropout(self, p, key, x, y)
    }

    fn sample_bernoulli(&self, key: u64, p: &GpuTensor, s: &mut GpuTensor) -> Result<()> {
        activation::sample_bernoulli(self, key, p, s)
    }

    fn copy(&self, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        activation::copy(self, x, y)
    }

    fn recurrent_step(&self, cell: Cell, t: usize, s: &mut Sequence<GpuTensor>) -> Result<()> {
        recurrent::step(self, cell, t, s)
    }

    fn recurrent_step_backward(
        &self,
        cell: Cell,
        t: usize,
        s: &Sequence<GpuTensor>,
        dy: &GpuTensor,
        g: &mut SequenceGrads<GpuTensor>,
    ) -> Result<()> {
        recurrent::step_backward(self, cell, t, s, dy, g)
    }

    fn sum_squares(&self, x: &GpuTensor, total: &mut GpuTensor) -> Result<()> {
        blas::sum_squares(self, x, total)
    }

    fn clip(&self, max_norm: f32, total: &GpuTensor, x: &mut GpuTensor) -> Result<()> {
        blas::clip(self, max_norm, total, x)
    }

    fn activation_backward(
        &self,
        act: Activation,
        x: &GpuTensor,
        dy: &GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        activation::activation_backward(self, act, x, dy, dx)
    }

    fn batch_norm_train(
        &self,
        x: &GpuTensor,
        affine: &GpuTensor,
        eps: f32,
        momentum: f32,
        saved: &mut GpuTensor,
        running: &mut GpuTensor,
        y: &mut GpuTensor,
    ) -> Result<()> {
        norm::batch_norm_train(self, x, affine, eps, momentum, saved, running, y)
    }

    fn batch_norm_eval(
        &self,
        x: &GpuTensor,
        affine: &GpuTensor,
        running: &GpuTensor,
        eps: f32,
        y: &mut GpuTensor,
    ) -> Result<()> {
        norm::batch_norm_eval(self, x, affine, running, eps, y)
    }

    fn batch_norm_backward(
        &self,
        x: &GpuTensor,
        dy: &GpuTensor,
        affine: &GpuTensor,
        saved: &GpuTensor,
        daffine: &mut GpuTensor,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        norm::batch_norm_backward(self, x, dy, affine, saved, daffine, dx)
    }

    fn convolution(
        &self,
        w: &Window,
        x: &GpuTensor,
        weight: &GpuTensor,
        epilogue: Epilogue<'_, GpuTensor>,
        y: &mut GpuTensor,
    ) -> Result<()> {
        if epilogue.grad_output().is_some() {
            return Err(Error::Invalid(
                "a convolution takes a forward epilogue".into(),
            ));
        }
        self.launch_convolution(w, x, weight, epilogue, y)
    }

    fn convolution_backward(
        &self,
        w: &Window,
        x: &GpuTensor,
        dy: &GpuTensor,
        weight: &GpuTensor,
        grads: ConvGrads<'_, GpuTensor>,
        scratch: &mut conv::ConvScratch,
    ) -> Result<()> {
        conv::backward(self, w, x, dy, weight, grads, scratch)
    }

    fn im2col(&self, w: &Window, x: &GpuTensor, cols: &mut GpuTensor) -> Result<()> {
        window::im2col(self, w, x, cols)
    }

    fn col2im(
        &self,
        w: &Window,
        dcols: &GpuTensor,
        before: Epilogue<'_, GpuTensor>,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        window::col2im(self, w, dcols, before, dx)
    }

    fn planes_to_rows(&self, positions: usize, src: &GpuTensor, dst: &mut GpuTensor) -> Result<()> {
        window::planes_to_rows(self, positions, src, dst)
    }

    fn max_pool(
        &self,
        w: &Window,
        x: &GpuTensor,
        then: Activation,
        y: &mut GpuTensor,
        argmax: &mut GpuIndices,
    ) -> Result<()> {
        window::max_pool(self, w, x, then, y, argmax)
    }

    fn max_pool_backward(
        &self,
        w: &Window,
        dy: &GpuTensor,
        argmax: &GpuIndices,
        before: Epilogue<'_, GpuTensor>,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        window::max_pool_backward(self, w, dy, argmax, before, dx)
    }

    fn avg_pool(
        &self,
        w: &Window,
        x: &GpuTensor,
        then: Activation,
        y: &mut GpuTensor,
    ) -> Result<()> {
        window::avg_pool(self, w, x, then, y)
    }

    fn avg_pool_backward(
        &self,
        w: &Window,
        dy: &GpuTensor,
        before: Epilogue<'_, GpuTensor>,
        dx: &mut GpuTensor,
    ) -> Result<()> {
        window::avg_pool_backward(self, w, dy, before, dx)
    }

    fn softmax(&self, x: &GpuTensor, y: &mut GpuTensor) -> Result<()> {
        loss::softmax(self, x, y)
    }

    fn softmax_cross_entropy(
        &self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        dlogits: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        loss::softmax_cross_entropy(self, logits, labels, dlogits, loss)
    }

    fn sigmoid_binary_cross_entropy(
        &self,
        logits: &GpuTensor,
        targets: &GpuTensor,
        dlogits: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        loss::sigmoid_binary_cross_entropy(self, logits, targets, dlogits, loss)
    }

    fn mean_squared_error(
        &self,
        y: &GpuTensor,
        targets: &GpuTensor,
        dy: &mut GpuTensor,
        loss: &mut GpuTensor,
    ) -> Result<()> {
        loss::mean_squared_error(self, y, targets, dy, loss)
    }

    fn tally(
        &self,
        logits: &GpuTensor,
        labels: &GpuIndices,
        loss: &GpuTensor,
        totals: &mut GpuTensor,
    ) -> Result<()> {
        loss::tally(self, logits, labels, loss, totals)
    }

    fn optimizer_step(
        &self,
        step: &OptimStep,
        param: &mut GpuTensor,
        grad: &GpuTensor,
        s1: &mut GpuTensor,
        s2: &mut GpuTensor,
    ) -> Result<()> {
        optim::optimizer_step(self, step, param, grad, s1, s2)
    }

    fn gather(
        &self,
        set: &GpuDataset,
        order: &GpuIndices,
        offset: usize,
        x: &mut GpuTensor,
        y: &mut GpuIndices,
    ) -> Result<()> {
        data::gather(self, set, order, offset, x, y)
    }

    fn gather_targets(
        &self,
        set: &GpuDataset,
        order: &GpuIndices,
        offset: usize,
        t: &mut GpuTensor,
    ) -> Result<()> {
        data::gather_targets(self, set, order, offset, t)
    }
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
