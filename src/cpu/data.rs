//! A data set in host memory and batch gathering.

use std::sync::{Arc, OnceLock};

use super::{CpuDataset, CpuTensor, Elements, chunk_len, in_parallel, simd};
use crate::backend::{SampleFeatures, Samples};
use crate::error::{Error, Result};
use crate::shape;

/// A set's features as the CPU keeps them: bytes (a quarter of the memory, and of the traffic of a
/// shuffled batch's gather), with their floats made once, when evaluation first reads the set in
/// place ([`gather_in_order`]); or floats.
#[derive(Clone, Debug)]
pub(super) enum Stored {
    Bytes {
        values: Vec<u8>,
        scale: f32,
        shift: f32,
        floats: OnceLock<Arc<[f32]>>,
    },
    Floats(Arc<[f32]>),
}

impl Stored {
    /// Every feature as a float: `byte·scale + shift`, as a gathered batch has them.
    fn floats(&self) -> Arc<[f32]> {
        match self {
            Stored::Bytes {
                values,
                scale,
                shift,
                floats,
            } => Arc::clone(floats.get_or_init(|| {
                values
                    .iter()
                    .map(|&p| to_float(p, *scale, *shift))
                    .collect()
            })),
            Stored::Floats(v) => Arc::clone(v),
        }
    }

    /// The floats, where they are made already.
    fn floats_made(&self) -> Option<Arc<[f32]>> {
        match self {
            Stored::Bytes { floats, .. } => floats.get().cloned(),
            Stored::Floats(v) => Some(Arc::clone(v)),
        }
    }
}

/// A byte feature as a batch holds it: `byte·scale + shift`, rounded twice (never fused), the same
/// bits wherever it is computed.
#[inline(always)]
fn to_float(byte: u8, scale: f32, shift: f32) -> f32 {
    f32::from(byte) * scale + shift
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
                floats: OnceLock::new(),
            },
            SampleFeatures::Floats(v) => Stored::Floats(v.into()),
        },
        labels: samples.labels.to_vec(),
        width: samples.width,
        targets: samples.targets.to_vec(),
        target_width: samples.target_width,
    })
}

/// A batch's input tensor as a window on the set's first `rows` samples, where the set has that many
/// as floats already (nothing to allocate or zero: gathering replaces it); `None` otherwise.
pub(super) fn window_buffer(set: &CpuDataset, rows: usize, width: usize) -> Option<CpuTensor> {
    let floats = set.features.floats_made()?;
    let len = rows.checked_mul(width).filter(|&len| len <= floats.len())?;
    Some(CpuTensor {
        rows,
        cols: width,
        data: Elements::Window {
            set: floats,
            start: 0,
            len,
        },
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
    if matches!(x.data, Elements::Window { .. }) {
        // The last batch was read in place: this one needs a buffer, and nothing of the window.
        x.data = Elements::Owned(vec![0.0; x.data.len()]);
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
                    ..
                } => {
                    // Copies, so that the loop knows they are not in `row`.
                    let (bytes, scale, shift) = (&values[s * f..(s + 1) * f], *scale, *shift);
                    simd::widest(|| {
                        for (v, &p) in row.iter_mut().zip(bytes) {
                            *v = to_float(p, scale, shift);
                        }
                    });
                }
                Stored::Floats(values) => row.copy_from_slice(&values[s * f..(s + 1) * f]),
            }
        }
    });
    Ok(())
}

/// The batch of samples `first..first + x.rows` in the set's order, read in place: `x` becomes a
/// window on the set's floats (made now for a byte set, if they are not yet), `y` their labels.
pub(super) fn gather_in_order(
    set: &CpuDataset,
    first: usize,
    x: &mut CpuTensor,
    y: &mut [u32],
) -> Result<()> {
    shape::gather(set.labels.len(), first, x.rows, x.cols, set.width, y.len())?;
    y.copy_from_slice(&set.labels[first..first + x.rows]);
    x.data = Elements::Window {
        set: set.features.floats(),
        start: first * set.width,
        len: x.rows * set.width,
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, SampleFeatures};
    use crate::cpu::CpuBackend;

    /// Evaluation's batches (in the set's order) are windows on the set's floats, training's
    /// (shuffled) copies, for bytes and for floats alike; each holds its samples' values whichever it
    /// is, through every change from one to the other; writing to a window's batch leaves the set as
    /// it was; and a batch in order past the set's end is refused.
    #[test]
    fn batches_in_order_are_read_in_place_and_shuffled_ones_copied() {
        let b = CpuBackend;
        let (n, f) = (12, 5);
        let bytes: Vec<u8> = (0..n * f).map(|i| (i * 37 % 256) as u8).collect();
        let floats: Vec<f32> = bytes.iter().map(|&p| f32::from(p) * 0.5 - 3.0).collect();
        let labels: Vec<u32> = (0..n as u32).collect();
        for samples in [
            Samples::bytes(&bytes, f, &labels, 0.5, -3.0),
            Samples {
                features: SampleFeatures::Floats(&floats),
                ..Samples::bytes(&bytes, f, &labels, 0.5, -3.0)
            },
        ] {
            let set = b.dataset(&samples).unwrap();
            let rows = 4;
            let mut x = b.batch_buffer(&set, rows, f).unwrap();
            // A byte set has no floats before evaluation first reads it: a fresh buffer is zeros.
            let is_bytes = matches!(samples.features, SampleFeatures::Bytes { .. });
            assert_eq!(matches!(x.data, Elements::Owned(_)), is_bytes);
            let mut y = vec![0; rows];
            let shuffled = vec![3, 1, 4, 0, 5, 9, 2, 6, 11, 8, 7, 10];
            let in_order: Vec<u32> = (0..n as u32).collect();
            for (window, offset) in [(true, 0), (false, 2), (true, 8), (false, 0)] {
                let order = if window { &in_order } else { &shuffled };
                if window {
                    b.gather_in_order(&set, order, offset, &mut x, &mut y)
                        .unwrap();
                } else {
                    b.gather(&set, order, offset, &mut x, &mut y).unwrap();
                }
                assert_eq!(matches!(x.data, Elements::Window { .. }), window);
                for r in 0..rows {
                    let s = order[offset + r] as usize;
                    assert_eq!(&x.data[r * f..(r + 1) * f], &floats[s * f..(s + 1) * f]);
                    assert_eq!(y[r], s as u32);
                }
            }
            b.gather_in_order(&set, &in_order, 0, &mut x, &mut y)
                .unwrap();
            x.data[0] = 99.0;
            let mut again = b.batch_buffer(&set, rows, f).unwrap();
            assert!(
                matches!(again.data, Elements::Window { .. }),
                "the floats exist now"
            );
            b.gather_in_order(&set, &in_order, 0, &mut again, &mut y)
                .unwrap();
            assert_eq!(&again.data[..f], &floats[..f]);
            assert!(
                b.gather_in_order(&set, &in_order, 9, &mut x, &mut y)
                    .is_err()
            );
        }
    }
}
