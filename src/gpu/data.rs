//! The training set on the device and batch gathering (`shaders/gather.wgsl` for byte features,
//! `shaders/gather_floats.wgsl` for float features and targets).

use super::{ELEMENTWISE_BLOCK, GpuBackend, GpuTensor, f, kernels, u};
use super::{GpuDataset, GpuIndices};
use crate::backend::{Backend, SampleFeatures, Samples, Shaped};
use crate::error::{Error, Result};
use crate::shape;

/// A set's features on the device.
pub(super) enum StoredFeatures {
    /// Bytes packed four to a word, little-endian, scaled as gathered.
    Bytes {
        words: GpuIndices,
        scale: f32,
        shift: f32,
    },
    /// `[N, width]` floats.
    Floats(GpuTensor),
}

pub(super) fn dataset(gpu: &GpuBackend, samples: &Samples<'_>) -> Result<GpuDataset> {
    samples.check()?;
    let n = samples.labels.len();
    let bytes = match samples.features {
        SampleFeatures::Bytes { values, .. } => values.len() as u64,
        SampleFeatures::Floats(values) => 4 * values.len() as u64,
    };
    let limit = gpu.max_tensor_bytes().unwrap_or(u64::MAX);
    if bytes.max(4 * samples.targets.len() as u64) > limit {
        return Err(Error::Device(format!(
            "the set's {n} samples of {} features take {:.1} MB, over this device's {:.1} MB per \
             buffer: train on the CPU backend (--device cpu), or on fewer samples or features",
            samples.width,
            bytes as f64 / 1e6,
            limit as f64 / 1e6
        )));
    }
    let features = match samples.features {
        SampleFeatures::Bytes {
            values,
            scale,
            shift,
        } => {
            let mut words = vec![0u32; values.len().div_ceil(4)];
            for (w, chunk) in words.iter_mut().zip(values.chunks(4)) {
                let mut b = [0u8; 4];
                b[..chunk.len()].copy_from_slice(chunk);
                *w = u32::from_le_bytes(b);
            }
            StoredFeatures::Bytes {
                words: gpu.raw_indices(&words)?,
                scale,
                shift,
            }
        }
        SampleFeatures::Floats(values) => {
            StoredFeatures::Floats(gpu.tensor(n, samples.width, values)?)
        }
    };
    let targets = match samples.target_width {
        0 => None,
        w => Some(gpu.tensor(n, w, samples.targets)?),
    };
    Ok(GpuDataset {
        features,
        labels: gpu.raw_indices(samples.labels)?,
        targets,
        no_labels: gpu.raw_indices(&[0])?,
        samples: n,
        width: samples.width,
    })
}

/// Records the float-row gather of `src` (`[N, x.cols]`) into `x`, and of the labels into `y` when
/// `write_labels` (else `y` is bound but not written).
#[allow(clippy::too_many_arguments)]
fn gather_floats(
    gpu: &GpuBackend,
    set: &GpuDataset,
    src: &GpuTensor,
    order: &GpuIndices,
    offset: usize,
    x: &GpuTensor,
    y: &GpuIndices,
    write_labels: bool,
) {
    gpu.run(
        &kernels::GATHER_FLOATS,
        &[],
        &[
            u(x.rows),
            u(x.cols),
            u(offset),
            u(set.samples),
            u32::from(write_labels),
        ],
        &[
            src.binding(),
            set.labels.binding(),
            order.binding(),
            x.binding(),
            y.binding(),
        ],
        gpu.grid(x.len(), 64),
    );
}

pub(super) fn gather(
    gpu: &GpuBackend,
    set: &GpuDataset,
    order: &GpuIndices,
    offset: usize,
    x: &mut GpuTensor,
    y: &mut GpuIndices,
) -> Result<()> {
    shape::gather(order.len, offset, x.rows, x.cols, set.width, y.len)?;
    let (words, scale, shift) = match &set.features {
        StoredFeatures::Floats(src) => {
            gather_floats(gpu, set, src, order, offset, x, y, true);
            return Ok(());
        }
        StoredFeatures::Bytes {
            words,
            scale,
            shift,
        } => (words, *scale, *shift),
    };
    let (kernel, groups) = if set.width.is_multiple_of(4) {
        (&kernels::GATHER_ROWS, gpu.grid(x.rows, 1))
    } else {
        (
            &kernels::GATHER_BATCH,
            gpu.grid(x.len().div_ceil(4), ELEMENTWISE_BLOCK),
        )
    };
    gpu.run(
        kernel,
        &[],
        &[
            u(x.rows),
            u(set.width),
            u(offset),
            u(set.samples),
            f(scale),
            f(shift),
        ],
        &[
            words.binding(),
            set.labels.binding(),
            order.binding(),
            x.binding(),
            y.binding(),
        ],
        groups,
    );
    Ok(())
}

pub(super) fn gather_targets(
    gpu: &GpuBackend,
    set: &GpuDataset,
    order: &GpuIndices,
    offset: usize,
    t: &mut GpuTensor,
) -> Result<()> {
    let Some(targets) = &set.targets else {
        return Err(Error::Invalid(
            "the set has no float targets to gather".into(),
        ));
    };
    shape::gather(order.len, offset, t.rows, t.cols, targets.cols, t.rows)?;
    gather_floats(gpu, set, targets, order, offset, t, &set.no_labels, false);
    Ok(())
}
