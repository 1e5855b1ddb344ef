//! The CPU backend: the reference every GPU kernel is tested against, and a fast trainer in its own right
//! (its matrix product is blocked and packed for the processor's vectors, `gemm`).

mod activation;
mod conv;
mod data;
mod denormals;
mod elements;
mod gemm;
mod linear;
mod loss;
mod norm;
mod optim;
mod pool;
mod recurrent;
mod simd;

pub use loss::argmax;
pub(crate) use loss::softmax_row;

use std::sync::OnceLock;

use crate::activation::Activation;
use crate::backend::{Backend, ConvGrads, Epilogue, Samples, Shaped};
use crate::error::{Error, Result};
use crate::layers::{BuildAt, Layer, LayerKind};
use crate::optim::OptimStep;
use crate::recurrent::{Cell, Sequence, SequenceGrads};
use crate::shape;
use crate::window::Window;
use elements::Elements;

/// A row-major `f32` matrix in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTensor {
    rows: usize,
    cols: usize,
    data: Elements,
}

impl CpuTensor {
    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

impl Shaped for CpuTensor {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

/// A data set in host memory: bytes or floats per feature, one label and any float targets per
/// sample.
#[derive(Clone, Debug)]
pub struct CpuDataset {
    features: data::Stored,
    labels: Vec<u32>,
    width: usize,
    targets: Vec<f32>,
    target_width: usize,
}

/// The reference backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// A CPU backend.
    pub fn new() -> Self {
        CpuBackend
    }
}

/// Element counts below which an element-wise op stays on the calling thread (starting threads would
/// cost more than they save).
const PARALLEL_MIN: usize = 1 << 16;

/// Hardware threads available to this process (looked up once).
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |t| t.get()))
}

/// Chunk length that splits `n` elements across the available threads, or one chunk when `n` is small.
fn chunk_len(n: usize) -> usize {
    if n < PARALLEL_MIN {
        n.max(1)
    } else {
        n.div_ceil(threads())
    }
}

/// Samples per job when `n` samples of `per_sample` values each are split across threads (all of them in
/// one job when there is little work).
fn samples_per_job(n: usize, per_sample: usize) -> usize {
    (chunk_len(n * per_sample) / per_sample.max(1)).max(1)
}

/// The worker threads, one fewer than [`threads`] (the caller is the last), started on first use and
/// kept: starting threads for every op would cost more than small ops take.
fn workers() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let extra = threads().saturating_sub(1);
        (extra > 0)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(extra)
                    .thread_name(|i| format!("nabla-cpu-{i}"))
                    .start_handler(|_| denormals::flush_on_this_thread())
                    .build()
                    .ok()
            })
            .flatten()
    })
    .as_ref()
}

/// Runs `work` on every job: the first on the calling thread, the others on the worker threads (or
/// all on the calling thread when there are none), every one with subnormals flushed to zero
/// ([`denormals`]).
fn in_parallel<T: Send>(jobs: impl Iterator<Item = T>, work: impl Fn(T) + Sync) {
    let _flushed = denormals::Flushed::new();
    let work = &work;
    let mut jobs = jobs.peekable();
    let Some(first) = jobs.next() else { return };
    match workers() {
        // A lone job (a product inside another op's job, a small op) needs no scope.
        Some(pool) if jobs.peek().is_some() => pool.in_place_scope(|scope| {
            for job in jobs {
                scope.spawn(move |_| work(job));
            }
            work(first);
        }),
        _ => {
            work(first);
            jobs.for_each(work);
        }
    }
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;
    type Indices = Vec<u32>;
    type Dataset = CpuDataset;
    type ConvScratch = ();

    fn describe(&self) -> String {
        format!("CPU ({} threads, {})", threads(), gemm::kernel_name())
    }

    fn build_layer(
        &self,
        kind: &dyn LayerKind,
        at: &mut BuildAt<'_>,
    ) -> Result<Box<dyn Layer<Self>>> {
        kind.build_cpu(self, at)
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<CpuTensor> {
        let len = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::shape(format!("{rows}×{cols} overflows")))?;
        Ok(CpuTensor {
            rows,
            cols,
            data: Elements::Owned(vec![0.0; len]),
        })
    }

    fn tensor(&self, rows: usize, cols: usize, data: &[f32]) -> Result<CpuTensor> {
        shape::data_len(data.len(), rows, cols)?;
        Ok(CpuTensor {
            rows,
            cols,
            data: Elements::Owned(data.to_vec()),
        })
    }

    fn write(&self, t: &mut CpuTensor, data: &[f32]) -> Result<()> {
        shape::data_len(data.len(), t.rows, t.cols)?;
        t.data.copy_from_slice(data);
        Ok(())
    }

    async fn read_async(&self, t: &CpuTensor) -> Result<Vec<f32>> {
        Ok(t.data.to_vec())
    }

    async fn read_into_async(&self, t: &CpuTensor, out: &mut [f32]) -> Result<()> {
        shape::data_len(out.len(), t.rows, t.cols)?;
        out.copy_from_slice(&t.data);
        Ok(())
    }

    fn indices(&self, data: &[u32]) -> Result<Vec<u32>> {
        Ok(data.to_vec())
    }

    fn read_indices(&self, ids: &Vec<u32>) -> Result<Vec<u32>> {
        Ok(ids.clone())
    }

    fn dataset(&self, samples: &Samples<'_>) -> Result<CpuDataset> {
        data::dataset(samples)
    }

    fn matmul(
        &self,
        a: &CpuTensor,
        trans_a: bool,
        b: &CpuTensor,
        trans_b: bool,
        epilogue: Epilogue<'_, CpuTensor>,
        c: &mut CpuTensor,
    ) -> Result<()> {
        linear::matmul(a, trans_a, b, trans_b, epilogue, c)
    }

    fn bias_grad(&self, dy: &CpuTensor, db: &mut CpuTensor) -> Result<()> {
        linear::bias_grad(dy, db)
    }

    fn axpy(&self, alpha: f32, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        linear::axpy(alpha, x, y)
    }

    fn scale(&self, alpha: f32, x: &mut CpuTensor) -> Result<()> {
        linear::scale(alpha, x)
    }

    fn activation_forward(&self, f: Activation, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        activation::activation_forward(f, x, y)
    }

    fn dropout(&self, p: f32, key: u64, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        activation::dropout(p, key, x, y)
    }

    fn sample_bernoulli(&self, key: u64, p: &CpuTensor, s: &mut CpuTensor) -> Result<()> {
        activation::sample_bernoulli(key, p, s)
    }

    fn activation_backward(
        &self,
        f: Activation,
        x: &CpuTensor,
        dy: &CpuTensor,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        activation::activation_backward(f, x, dy, dx)
    }

    fn batch_norm_train(
        &self,
        x: &CpuTensor,
        affine: &CpuTensor,
        eps: f32,
        momentum: f32,
        saved: &mut CpuTensor,
        running: &mut CpuTensor,
        y: &mut CpuTensor,
    ) -> Result<()> {
        norm::batch_norm_train(x, affine, eps, momentum, saved, running, y)
    }

    fn batch_norm_eval(
        &self,
        x: &CpuTensor,
        affine: &CpuTensor,
        running: &CpuTensor,
        eps: f32,
        y: &mut CpuTensor,
    ) -> Result<()> {
        norm::batch_norm_eval(x, affine, running, eps, y)
    }

    fn batch_norm_backward(
        &self,
        x: &CpuTensor,
        dy: &CpuTensor,
        affine: &CpuTensor,
        saved: &CpuTensor,
        daffine: &mut CpuTensor,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        norm::batch_norm_backward(x, dy, affine, saved, daffine, dx)
    }

    fn convolution(
        &self,
        w: &Window,
        x: &CpuTensor,
        weight: &CpuTensor,
        epilogue: Epilogue<'_, CpuTensor>,
        y: &mut CpuTensor,
    ) -> Result<()> {
        conv::convolution(w, x, weight, epilogue, y)
    }

    /// One image at a time, with no whole-batch buffers.
    fn convolution_backward(
        &self,
        w: &Window,
        x: &CpuTensor,
        dy: &CpuTensor,
        weight: &CpuTensor,
        grads: ConvGrads<'_, CpuTensor>,
        _scratch: &mut (),
    ) -> Result<()> {
        conv::convolution_backward(w, x, dy, weight, grads)
    }

    fn im2col(&self, w: &Window, x: &CpuTensor, cols: &mut CpuTensor) -> Result<()> {
        conv::im2col(w, x, cols)
    }

    fn col2im(
        &self,
        w: &Window,
        dcols: &CpuTensor,
        before: Epilogue<'_, CpuTensor>,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        conv::col2im(w, dcols, before, dx)
    }

    fn planes_to_rows(&self, positions: usize, src: &CpuTensor, dst: &mut CpuTensor) -> Result<()> {
        conv::planes_to_rows(positions, src, dst)
    }

    fn max_pool(
        &self,
        w: &Window,
        x: &CpuTensor,
        then: Activation,
        y: &mut CpuTensor,
        argmax: &mut Vec<u32>,
    ) -> Result<()> {
        pool::max_pool(w, x, then, y, argmax)
    }

    fn max_pool_backward(
        &self,
        w: &Window,
        dy: &CpuTensor,
        argmax: &Vec<u32>,
        before: Epilogue<'_, CpuTensor>,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        pool::max_pool_backward(w, dy, argmax, before, dx)
    }

    fn avg_pool(
        &self,
        w: &Window,
        x: &CpuTensor,
        then: Activation,
        y: &mut CpuTensor,
    ) -> Result<()> {
        pool::avg_pool(w, x, then, y)
    }

    fn avg_pool_backward(
        &self,
        w: &Window,
        dy: &CpuTensor,
        before: Epilogue<'_, CpuTensor>,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        pool::avg_pool_backward(w, dy, before, dx)
    }

    fn copy(&self, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        shape::same_len("copy", x, y)?;
        y.data.copy_from_slice(&x.data);
        Ok(())
    }

    fn recurrent_step(&self, cell: Cell, t: usize, s: &mut Sequence<CpuTensor>) -> Result<()> {
        recurrent::step(cell, t, s)
    }

    fn recurrent_step_backward(
        &self,
        cell: Cell,
        t: usize,
        s: &Sequence<CpuTensor>,
        dy: &CpuTensor,
        g: &mut SequenceGrads<CpuTensor>,
    ) -> Result<()> {
        recurrent::step_backward(cell, t, s, dy, g)
    }

    fn recurrent_forward(
        &self,
        cell: Cell,
        w_hh: &CpuTensor,
        b_hh: &CpuTensor,
        s: &mut Sequence<CpuTensor>,
    ) -> Result<()> {
        recurrent::forward(cell, w_hh, b_hh, s)
    }

    fn recurrent_backward(
        &self,
        cell: Cell,
        w_hh: &CpuTensor,
        s: &Sequence<CpuTensor>,
        dy: &CpuTensor,
        g: &mut SequenceGrads<CpuTensor>,
    ) -> Result<()> {
        recurrent::backward(cell, w_hh, s, dy, g)
    }

    fn sum_squares(&self, x: &CpuTensor, total: &mut CpuTensor) -> Result<()> {
        linear::sum_squares(x, total)
    }

    fn clip(&self, max_norm: f32, total: &CpuTensor, x: &mut CpuTensor) -> Result<()> {
        linear::clip(max_norm, total, x)
    }

    fn softmax(&self, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        activation::softmax(x, y)
    }

    fn softmax_cross_entropy(
        &self,
        logits: &CpuTensor,
        labels: &Vec<u32>,
        dlogits: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        loss::softmax_cross_entropy(logits, labels, dlogits, loss)
    }

    fn sigmoid_binary_cross_entropy(
        &self,
        logits: &CpuTensor,
        targets: &CpuTensor,
        dlogits: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        loss::sigmoid_binary_cross_entropy(logits, targets, dlogits, loss)
    }

    fn mean_squared_error(
        &self,
        y: &CpuTensor,
        targets: &CpuTensor,
        dy: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        loss::mean_squared_error(y, targets, dy, loss)
    }

    fn tally(
        &self,
        logits: &CpuTensor,
        labels: &Vec<u32>,
        loss: &CpuTensor,
        totals: &mut CpuTensor,
    ) -> Result<()> {
        loss::tally(logits, labels, loss, totals)
    }

    fn optimizer_step(
        &self,
        step: &OptimStep,
        param: &mut CpuTensor,
        grad: &CpuTensor,
        s1: &mut CpuTensor,
        s2: &mut CpuTensor,
    ) -> Result<()> {
        optim::optimizer_step(step, param, grad, s1, s2)
    }

    fn batch_buffer(&self, set: &CpuDataset, rows: usize, width: usize) -> Result<CpuTensor> {
        data::window_buffer(set, rows, width).map_or_else(|| self.zeros(rows, width), Ok)
    }

    fn gather(
        &self,
        set: &CpuDataset,
        order: &Vec<u32>,
        offset: usize,
        x: &mut CpuTensor,
        y: &mut Vec<u32>,
    ) -> Result<()> {
        data::gather(set, order, offset, x, y)
    }

    fn gather_in_order(
        &self,
        set: &CpuDataset,
        _order: &Vec<u32>,
        first: usize,
        x: &mut CpuTensor,
        y: &mut Vec<u32>,
    ) -> Result<()> {
        data::gather_in_order(set, first, x, y)
    }

    fn gather_targets(
        &self,
        set: &CpuDataset,
        order: &Vec<u32>,
        offset: usize,
        t: &mut CpuTensor,
    ) -> Result<()> {
        data::gather_targets(set, order, offset, t)
    }
}
