//! Matmul throughput, GPU against CPU, at the shapes training uses: forward products `X·W` and the weight
//! gradients `Xᵀ·dY` (whose K is the batch). Prints a table of GFLOP/s (2·M·K·N floating-point
//! operations per product), one column per GPU kernel (`auto` is the rule-based choice). Run with
//! `cargo bench --bench matmul` (`-- --cpu` for the CPU column alone).
//!
//! Each figure is the best of several timed batches (the least disturbed by other load); a GPU batch
//! records `reps` products and submits them at once, as a training step does, then waits.

use std::time::{Duration, Instant};

use nabla::bench::load_average;
use nabla::{Backend, CpuBackend, Epilogue, GpuBackend, MatmulKernel};

/// `(M, K, N, op(A) transposed)`: W2's and W3's first-layer forward and weight gradient, W4's first
/// layer (a batch of 1000), W3's second layer, and a square product.
const SHAPES: [(usize, usize, usize, bool); 8] = [
    (128, 784, 128, false),
    (1000, 784, 128, false),
    (784, 128, 128, true),
    (128, 128, 128, false),
    (256, 784, 1024, false),
    (784, 256, 1024, true),
    (256, 1024, 1024, false),
    (1024, 1024, 1024, false),
];

/// The CPU's batches: many short ones, since on a shared machine (a VM with busy neighbours) only
/// the best of many is repeatable; the same as `benches/compare.py` gives MKL and OpenBLAS.
const CPU_BATCHES: (usize, f64) = (30, 6e8);
/// The GPU's: a few long ones, each submitted at once as a training step is.
const GPU_BATCHES: (usize, f64) = (3, 4e9);

/// Best seconds per product over `batches` batches of `reps` products.
fn time_it(batches: usize, reps: usize, mut run: impl FnMut(usize)) -> f64 {
    run(1); // warm-up: compiles kernels, faults in memory
    let mut best = Duration::MAX;
    for _ in 0..batches {
        let t = Instant::now();
        run(reps);
        best = best.min(t.elapsed());
    }
    best.as_secs_f64() / reps as f64
}

/// GFLOP/s of `op(A)·B` on `b`: the best of `batches` timed batches of about `flop_per_batch` each.
fn gflops<B: Backend>(
    b: &B,
    (m, k, n, ta): (usize, usize, usize, bool),
    (batches, flop_per_batch): (usize, f64),
    sync: impl Fn(&B),
) -> f64 {
    let (rows, cols) = if ta { (k, m) } else { (m, k) };
    let a = b.tensor(rows, cols, &vec![0.5; m * k]).expect("alloc A");
    let w = b.tensor(k, n, &vec![0.25; k * n]).expect("alloc B");
    let mut c = b.zeros(m, n).expect("alloc C");
    let flops = 2.0 * (m * k * n) as f64;
    let reps = ((flop_per_batch / flops) as usize).clamp(1, 50);
    let secs = time_it(batches, reps, |r| {
        for _ in 0..r {
            b.matmul(&a, ta, &w, false, Epilogue::none(), &mut c)
                .expect("matmul");
        }
        sync(b);
    });
    flops / secs / 1e9
}

fn main() {
    let cpu = CpuBackend::new();
    let cpu_only = std::env::args().any(|a| a == "--cpu");
    let mut gpu = match GpuBackend::new() {
        _ if cpu_only => None,
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU: {e}");
            None
        }
    };
    println!("CPU: {}", cpu.describe());
    if let Some(g) = &gpu {
        println!("GPU: {}", g.describe());
    }
    match load_average() {
        Some(load) => println!("load average: {load:.2}"),
        None => println!("load average: unknown"),
    }
    let subgroups = gpu.as_ref().is_some_and(|g| g.context().subgroups_of(8));
    let kernels: Vec<MatmulKernel> = MatmulKernel::ALL
        .into_iter()
        .filter(|&k| gpu.is_some() && (k != MatmulKernel::Subgroup8 || subgroups))
        .collect();
    print!("{:>20} {:>12}", "M×K×N", "CPU GFLOP/s");
    for k in &kernels {
        print!(" {:>16}", format!("GPU {} GFLOP/s", k.name()));
    }
    println!();
    for shape in SHAPES {
        let (m, k, n, ta) = shape;
        let name = format!("{m}×{k}×{n}{}", if ta { " Aᵀ" } else { "" });
        print!(
            "{:>20} {:>12.1}",
            name,
            gflops(&cpu, shape, CPU_BATCHES, |_| ())
        );
        if let Some(g) = gpu.as_mut() {
            for &kernel in &kernels {
                g.set_matmul_kernel(kernel).expect("kernel available");
                let r = gflops(&*g, shape, GPU_BATCHES, |g| g.synchronize().expect("sync"));
                print!(" {r:>16.1}");
            }
        }
        println!();
    }
}
