//! The training set in host memory and batch gathering.

use super::{CpuDataset, CpuTensor};
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

pub(super) fn gather(
    set: &CpuDataset,
    order: &[u32],
    offset: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
) -> Result<()> {
    shape::gather(order.len(), offset, x.rows, x.cols, set.width, y.len())?;
    let f = set.width;
    for (b, row) in x.data.chunks_exact_mut(f).enumerate() {
        let s = sample(set, order, offset + b)?;
        match &set.features {
            Stored::Bytes {
                values,
                scale,
                shift,
            } => {
                for (v, &p) in row.iter_mut().zip(&values[s * f..(s + 1) * f]) {
                    *v = f32::from(p) * scale + shift;
                }
            }
            Stored::Floats(values) => row.copy_from_slice(&values[s * f..(s + 1) * f]),
        }
        y[b] = set.labels[s];
    }
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
