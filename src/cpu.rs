//! The CPU backend: the reference every GPU kernel is tested against, and a fast trainer in its own right
//! (the matrix product is `matrixmultiply`'s sgemm, multi-threaded).

use std::sync::OnceLock;

use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::dropout;
use crate::error::{Error, Result};
use crate::optim::OptimStep;
use crate::shape;

/// A row-major `f32` matrix in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTensor {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
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

/// A training set in host memory: one byte per feature, one label per sample.
#[derive(Clone, Debug)]
pub struct CpuDataset {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    features: usize,
    scale: f32,
    shift: f32,
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

/// Runs `work` on every job, each on its own scoped thread except the first, which the caller runs.
fn in_parallel<T: Send>(jobs: impl Iterator<Item = T>, work: impl Fn(T) + Sync) {
    let work = &work;
    std::thread::scope(|scope| {
        let mut jobs = jobs;
        let first = jobs.next();
        for job in jobs {
            scope.spawn(move || work(job));
        }
        if let Some(job) = first {
            work(job);
        }
    });
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

fn scalar_out(loss: &mut CpuTensor) -> Result<()> {
    shape::exact("loss", loss, 1, 1)
}

impl Backend for CpuBackend {
    type Tensor = CpuTensor;
    type Indices = Vec<u32>;
    type Dataset = CpuDataset;

    fn describe(&self) -> String {
        format!("CPU ({} threads, matrixmultiply sgemm)", threads())
    }

    fn zeros(&self, rows: usize, cols: usize) -> Result<CpuTensor> {
        let len = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::shape(format!("{rows}×{cols} overflows")))?;
        Ok(CpuTensor {
            rows,
            cols,
            data: vec![0.0; len],
        })
    }

    fn tensor(&self, rows: usize, cols: usize, data: &[f32]) -> Result<CpuTensor> {
        shape::data_len(data.len(), rows, cols)?;
        Ok(CpuTensor {
            rows,
            cols,
            data: data.to_vec(),
        })
    }

    fn write(&self, t: &mut CpuTensor, data: &[f32]) -> Result<()> {
        shape::data_len(data.len(), t.rows, t.cols)?;
        t.data.copy_from_slice(data);
        Ok(())
    }

    fn read(&self, t: &CpuTensor) -> Result<Vec<f32>> {
        Ok(t.data.clone())
    }

    fn indices(&self, data: &[u32]) -> Result<Vec<u32>> {
        Ok(data.to_vec())
    }

    fn read_indices(&self, ids: &Vec<u32>) -> Result<Vec<u32>> {
        Ok(ids.clone())
    }

    fn dataset(
        &self,
        pixels: &[u8],
        labels: &[u8],
        features: usize,
        scale: f32,
        shift: f32,
    ) -> Result<CpuDataset> {
        shape::dataset(pixels.len(), labels.len(), features)?;
        Ok(CpuDataset {
            pixels: pixels.to_vec(),
            labels: labels.iter().map(|&l| u32::from(l)).collect(),
            features,
            scale,
            shift,
        })
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
        let (m, k, n) = shape::matmul(a, trans_a, b, trans_b, &epilogue, c)?;
        // Strides of op(A) [m, k] and op(B) [k, n] inside their row-major storage.
        let (rsa, csa) = if trans_a { (1, m) } else { (k, 1) };
        let (rsb, csb) = if trans_b { (1, k) } else { (n, 1) };
        if k == 0 {
            c.data.fill(0.0);
        } else if m > 0 && n > 0 {
            // SAFETY: the shape check above guarantees every (row, col) addressed through these strides
            // lies inside `a.data`, `b.data` and `c.data`, which do not alias.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.data.as_ptr(),
                    rsa as isize,
                    csa as isize,
                    b.data.as_ptr(),
                    rsb as isize,
                    csb as isize,
                    0.0,
                    c.data.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
        match epilogue {
            Epilogue::Forward { bias, activation } => {
                for row in c.data.chunks_exact_mut(n.max(1)) {
                    if let Some(bias) = bias {
                        row.iter_mut().zip(&bias.data).for_each(|(v, b)| *v += b);
                    }
                    if activation != Activation::Identity {
                        row.iter_mut().for_each(|v| *v = activation.forward(*v));
                    }
                }
            }
            Epilogue::ActivationGrad { activation, output } => {
                c.data
                    .iter_mut()
                    .zip(&output.data)
                    .for_each(|(v, &y)| *v *= activation.output_derivative(y));
            }
        }
        Ok(())
    }

    fn bias_grad(&self, dy: &CpuTensor, db: &mut CpuTensor) -> Result<()> {
        shape::exact("bias gradient", db, 1, dy.cols)?;
        db.data.fill(0.0);
        for row in dy.data.chunks_exact(dy.cols.max(1)) {
            db.data.iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        Ok(())
    }

    fn axpy(&self, alpha: f32, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        shape::same("axpy", x, y)?;
        let chunk = chunk_len(y.len());
        let jobs = y.data.chunks_mut(chunk).zip(x.data.chunks(chunk));
        in_parallel(jobs, |(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
        });
        Ok(())
    }

    fn scale(&self, alpha: f32, x: &mut CpuTensor) -> Result<()> {
        x.data.iter_mut().for_each(|v| *v *= alpha);
        Ok(())
    }

    fn activation_forward(&self, f: Activation, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        shape::same("activation", x, y)?;
        let chunk = chunk_len(y.len());
        let jobs = y.data.chunks_mut(chunk).zip(x.data.chunks(chunk));
        in_parallel(jobs, |(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = f.forward(x));
        });
        Ok(())
    }

    fn dropout(&self, p: f32, key: u64, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        shape::same("dropout", x, y)?;
        dropout::check(p)?;
        let (threshold, scale) = (dropout::threshold(p), dropout::scale(p));
        for (i, (y, &x)) in y.data.iter_mut().zip(&x.data).enumerate() {
            *y = if dropout::draw(key, i as u32) >= threshold {
                x * scale
            } else {
                0.0
            };
        }
        Ok(())
    }

    fn activation_backward(
        &self,
        f: Activation,
        x: &CpuTensor,
        dy: &CpuTensor,
        dx: &mut CpuTensor,
    ) -> Result<()> {
        shape::same("activation backward (x, dy)", x, dy)?;
        shape::same("activation backward (x, dx)", x, dx)?;
        let chunk = chunk_len(dx.len());
        let jobs = dx
            .data
            .chunks_mut(chunk)
            .zip(x.data.chunks(chunk))
            .zip(dy.data.chunks(chunk));
        in_parallel(jobs, |((dx, x), dy)| {
            for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
                *dx = dy * f.derivative(x);
            }
        });
        Ok(())
    }

    fn softmax(&self, x: &CpuTensor, y: &mut CpuTensor) -> Result<()> {
        shape::same("softmax", x, y)?;
        let cols = x.cols.max(1);
        for (xr, yr) in x.data.chunks_exact(cols).zip(y.data.chunks_exact_mut(cols)) {
            softmax_row(xr, yr);
        }
        Ok(())
    }

    fn softmax_cross_entropy(
        &self,
        logits: &CpuTensor,
        labels: &Vec<u32>,
        dlogits: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        shape::labels(logits.rows, labels.len())?;
        shape::same("softmax cross-entropy gradient", logits, dlogits)?;
        scalar_out(loss)?;
        let cols = logits.cols.max(1);
        let inv_b = 1.0 / logits.rows as f32;
        let mut total = 0.0f64;
        let rows = logits
            .data
            .chunks_exact(cols)
            .zip(dlogits.data.chunks_exact_mut(cols));
        for ((z, dz), &t) in rows.zip(labels) {
            let log_sum = softmax_row(z, dz);
            let t = t as usize;
            total += f64::from(z.get(t).map_or(f32::NAN, |zt| log_sum - zt));
            for (j, d) in dz.iter_mut().enumerate() {
                *d = (*d - f32::from(j == t)) * inv_b;
            }
        }
        loss.data[0] = (total / logits.rows as f64) as f32;
        Ok(())
    }

    fn sigmoid_binary_cross_entropy(
        &self,
        logits: &CpuTensor,
        targets: &CpuTensor,
        dlogits: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        shape::same("binary cross-entropy targets", logits, targets)?;
        shape::same("binary cross-entropy gradient", logits, dlogits)?;
        scalar_out(loss)?;
        let inv_b = 1.0 / logits.rows as f32;
        let mut total = 0.0f64;
        for ((&z, &t), d) in logits.data.iter().zip(&targets.data).zip(&mut dlogits.data) {
            total += f64::from(z.max(0.0) - z * t + (-z.abs()).exp().ln_1p());
            *d = (Activation::Sigmoid.forward(z) - t) * inv_b;
        }
        loss.data[0] = (total / logits.rows as f64) as f32;
        Ok(())
    }

    fn mean_squared_error(
        &self,
        y: &CpuTensor,
        targets: &CpuTensor,
        dy: &mut CpuTensor,
        loss: &mut CpuTensor,
    ) -> Result<()> {
        shape::same("squared error targets", y, targets)?;
        shape::same("squared error gradient", y, dy)?;
        scalar_out(loss)?;
        let inv_b = 1.0 / y.rows as f32;
        let mut total = 0.0f64;
        for ((&y, &t), d) in y.data.iter().zip(&targets.data).zip(&mut dy.data) {
            let e = y - t;
            total += f64::from(0.5 * e * e);
            *d = e * inv_b;
        }
        loss.data[0] = (total / y.rows as f64) as f32;
        Ok(())
    }

    fn tally(
        &self,
        logits: &CpuTensor,
        labels: &Vec<u32>,
        loss: &CpuTensor,
        totals: &mut CpuTensor,
    ) -> Result<()> {
        shape::labels(logits.rows, labels.len())?;
        shape::exact("loss", loss, 1, 1)?;
        shape::exact("running totals", totals, 1, 2)?;
        totals.data[0] += loss.data[0];
        totals.data[1] += hits(logits, labels) as f32;
        Ok(())
    }

    fn optimizer_step(
        &self,
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

    fn gather(
        &self,
        set: &CpuDataset,
        order: &Vec<u32>,
        offset: usize,
        x: &mut CpuTensor,
        y: &mut Vec<u32>,
    ) -> Result<()> {
        shape::gather(order.len(), offset, x.rows, x.cols, set.features, y.len())?;
        let f = set.features;
        for (b, row) in x.data.chunks_exact_mut(f).enumerate() {
            let s = order[offset + b] as usize;
            let src = set.pixels.get(s * f..(s + 1) * f).ok_or_else(|| {
                Error::Invalid(format!(
                    "sample index {s} is past the set's {} samples",
                    set.labels.len()
                ))
            })?;
            for (v, &p) in row.iter_mut().zip(src) {
                *v = f32::from(p) * set.scale + set.shift;
            }
            y[b] = set.labels[s];
        }
        Ok(())
    }
}

/// Writes the softmax of `z` into `out` and returns `log Σ exp(z)` (computed max-subtracted).
fn softmax_row(z: &[f32], out: &mut [f32]) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &v) in out.iter_mut().zip(z) {
        *o = (v - max).exp();
        sum += *o;
    }
    out.iter_mut().for_each(|o| *o /= sum);
    max + sum.ln()
}

/// Rows whose first maximum is at the label's column.
fn hits(logits: &CpuTensor, labels: &[u32]) -> usize {
    logits
        .data
        .chunks_exact(logits.cols.max(1))
        .zip(labels)
        .filter(|(row, t)| argmax(row) == **t as usize)
        .count()
}

/// Index of the first largest element.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}
