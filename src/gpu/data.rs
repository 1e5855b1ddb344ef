//! The training set on the device and batch gathering (`shaders/gather.wgsl`).

use super::{ELEMENTWISE_BLOCK, GpuBackend, GpuTensor, f, kernels, u};
use super::{GpuDataset, GpuIndices};
use crate::backend::Shaped;
use crate::error::Result;
use crate::shape;

pub(super) fn dataset(
    gpu: &GpuBackend,
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
        pixels: gpu.raw_indices(&words)?,
        labels: gpu.raw_indices(&labels32)?,
        samples: labels.len(),
        features,
        scale,
        shift,
    })
}

pub(super) fn gather(
    gpu: &GpuBackend,
    set: &GpuDataset,
    order: &GpuIndices,
    offset: usize,
    x: &mut GpuTensor,
    y: &mut GpuIndices,
) -> Result<()> {
    shape::gather(order.len, offset, x.rows, x.cols, set.features, y.len)?;
    let (kernel, groups) = if set.features.is_multiple_of(4) {
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
