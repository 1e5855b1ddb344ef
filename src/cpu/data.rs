//! The training set in host memory and batch gathering.

use super::{CpuDataset, CpuTensor};
use crate::error::{Error, Result};
use crate::shape;

pub(super) fn dataset(
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

pub(super) fn gather(
    set: &CpuDataset,
    order: &[u32],
    offset: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
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
