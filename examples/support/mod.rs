//! What every lesson example shares: the backends to run on, and where pictures go.

pub mod tables;

use std::path::PathBuf;

use nabla::{Backend, CpuBackend, GpuBackend};

/// The CPU reference, and the GPU backend when an adapter exists (lavapipe counts): lessons run on both
/// and print both, so that the GPU kernels' agreement with the reference is visible.
pub fn backends() -> (CpuBackend, Option<GpuBackend>) {
    let cpu = CpuBackend::new();
    let gpu = match GpuBackend::new() {
        Ok(gpu) => {
            println!("GPU: {}", gpu.describe());
            Some(gpu)
        }
        Err(e) => {
            println!("No GPU ({e}); running on the CPU only.");
            None
        }
    };
    (cpu, gpu)
}

/// The output path: the first command-line argument, else `runs/<name>`.
pub fn output(name: &str) -> PathBuf {
    std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("runs").join(name), PathBuf::from)
}

/// MNIST from the project's `data/mnist`, fetched there first if it is missing.
pub fn mnist() -> anyhow::Result<nabla::mnist::Mnist> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    nabla::fetch::ensure(&dir, |m| eprintln!("{m}"))?;
    Ok(nabla::mnist::Mnist::load(&dir)?)
}
