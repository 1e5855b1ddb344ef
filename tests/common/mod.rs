//! Helpers shared by the integration tests: the GPU under test, seeded random data and tolerances.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::OnceLock;

use nabla::mnist::Mnist;
use nabla::{Backend, CpuBackend, GpuBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set to `off` to skip GPU tests explicitly (CI never sets it). Without it, a missing adapter fails.
pub const GPU_TESTS_ENV: &str = "NABLA_GPU_TESTS";

/// When set, [`with_gpu`] appends the name of every test it skips to this file, so that the test
/// script can say which GPU tests did not run.
pub const SKIPPED_LOG_ENV: &str = "NABLA_SKIPPED_LOG";

/// Runs `f` with a GPU backend opened for the call and closed after it (each test runs on a thread of
/// its own, so nothing is shared between tests, and nothing is left open). Panics when there is no
/// adapter, unless `NABLA_GPU_TESTS=off`, in which case it records the skip and returns `None`.
pub fn with_gpu<R>(f: impl FnOnce(&mut GpuBackend) -> R) -> Option<R> {
    if std::env::var(GPU_TESTS_ENV).as_deref() == Ok("off") {
        let test = std::thread::current().name().unwrap_or("?").to_string();
        eprintln!("GPU test skipped: {GPU_TESTS_ENV}=off");
        if let Some(log) = std::env::var_os(SKIPPED_LOG_ENV) {
            use std::io::Write;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log);
            if let Ok(mut file) = file {
                let _ = writeln!(file, "{test}");
            }
        }
        return None;
    }
    let mut gpu = GpuBackend::new().unwrap_or_else(|e| {
        panic!("GPU tests need an adapter ({e}); set {GPU_TESTS_ENV}=off to skip them explicitly")
    });
    Some(f(&mut gpu))
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` values uniform in `[-scale, scale]`.
pub fn uniform(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

/// Asserts `|got - want| ≤ atol + rtol·|want|` element-wise where `want` is finite, and exact
/// agreement where it is not (NaN for NaN, the same infinity for ±∞: the relative tolerance of an
/// infinity would be infinite and pass anything).
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: got {g}, want NaN");
            continue;
        }
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        if g == w {
            continue;
        }
        assert!(g.is_finite(), "{what}[{i}]: got non-finite {g}, want {w}");
        let tol = atol + rtol * w.abs();
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (|diff| {} > tol {tol})",
            (g - w).abs()
        );
    }
}

/// Reads a backend tensor back to the host.
pub fn read<B: Backend>(b: &B, t: &B::Tensor) -> Vec<f32> {
    b.read(t).expect("read back")
}

/// The real data set, loaded once for all tests of a test binary: the test script installs it
/// (`nabla fetch`), and its four files are checked against their SHA-256 here, once, before use.
/// Tests never download anything themselves.
pub fn real_mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
        assert!(
            nabla::fetch::present(&dir),
            "MNIST is not in {}: the test script installs it (`cargo run --release -- fetch`)",
            dir.display()
        );
        nabla::fetch::verify(&dir).expect("MNIST's files are the real ones");
        Mnist::load(&dir).expect("MNIST loads")
    })
}

/// The real tables the `linfa-datasets` crate ships (one file, shared with the examples).
#[path = "../../examples/support/tables.rs"]
pub mod tables;
