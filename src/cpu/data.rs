//! The training set in host memory and batch gathering.

use super::{CpuDataset, CpuTensor, chunk_len, in_parallel, simd};
use crate::backend::{SampleFeatures, Samples};
use crate::error::{Error, Result};
use crate::shape;

/// A set's features as the CPU keeps them.
#[derive(Clone, Debug)]
pub(super) enum Stored {
    Bytes {
        values: Vec<u8>,
        scale: f32,
        shift: f32,
    },
    Floats(Vec<f32>),
}

pub(super) fn dataset(samples: &Samples<'_>) -> Result<CpuDataset> {
    samples.check()?;
    Ok(CpuDataset {
        features: match samples.features {
            SampleFeatures::Bytes {
                values,
                scale,
                shift,
            } => Stored::Bytes {
                values: values.to_vec(),
                scale,
                shift,
            },
            SampleFeatures::Floats(v) => Stored::Floats(v.to_vec()),
        },
        labels: samples.labels.to_vec(),
        width: samples.width,
        targets: samples.targets.to_vec(),
        target_width: samples.target_width,
    })
}

/// The sample at `order[offset + b]`, checked against the set's size.
fn sample(set: &CpuDataset, order: &[u32], at: usize) -> Result<usize> {
    let s = order[at] as usize;
    if s >= set.labels.len() {
        return Err(Error::Invalid(format!(
            "sample index {s} is past the set's {} samples",
            set.labels.len()
        )));
    }
    Ok(s)
}

/// Values below which a batch is gathered on the calling thread.
const GATHER_PARALLEL_MIN: usize = 1 << 18;

pub(super) fn gather(
    set: &CpuDataset,
    order: &[u32],
    offset: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
) -> Result<()> {
    shape::gather(order.len(), offset, x.rows, x.cols, set.width, y.len())?;
    let f = set.width.max(1);
    // Every index checked first, so that the copies, split across threads, cannot fail.
    let samples: Vec<usize> = (0..x.rows)
        .map(|b| sample(set, order, offset + b))
        .collect::<Result<_>>()?;
    for (label, &s) in y.iter_mut().zip(&samples) {
        *label = set.labels[s];
    }
    // Split only for inference-sized batches: waking a thread costs more than a training batch's copy.
    let rows_per_job = if x.data.len() < GATHER_PARALLEL_MIN {
        x.rows.max(1)
    } else {
        chunk_len(x.data.len()).div_ceil(f)
    };
    let jobs = x
        .data
        .chunks_mut(rows_per_job * f)
        .zip(samples.chunks(rows_per_job));
    in_parallel(jobs, |(rows, samples)| {
        for (row, &s) in rows.chunks_exact_mut(f).zip(samples) {
            match &set.features {
                Stored::Bytes {
                    values,
                    scale,
                    shift,
                } => {
                    // Copies, so that the loop knows they are not in `row`.
                    let (bytes, scale, shift) = (&values[s * f..(s + 1) * f], *scale, *shift);
                    simd::widest(|| {
                        for (v, &p) in row.iter_mut().zip(bytes) {
                            *v = f32::from(p) * scale + shift;
                        }
                    });
                }
                Stored::Floats(values) => row.copy_from_slice(&values[s * f..(s + 1) * f]),
            }
        }
    });
    Ok(())
}

pub(super) fn gather_targets(
    set: &CpuDataset,
    order: &[u32],
    offset: usize,
    t: &mut CpuTensor,
) -> Result<()> {
    let w = set.target_width;
    shape::gather(order.len(), offset, t.rows, t.cols, w, t.rows)?;
    if w == 0 {
        return Err(Error::Invalid(
            "the set has no float targets to gather".into(),
        ));
    }
    for (b, row) in t.data.chunks_exact_mut(w).enumerate() {
        let s = sample(set, order, offset + b)?;
        row.copy_from_slice(&set.targets[s * w..(s + 1) * w]);
    }
    Ok(())
}
