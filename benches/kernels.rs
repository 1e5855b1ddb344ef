//! Every kernel against its CPU reference at the shapes W2 (`784-128-128-10`, batch 128) trains with,
//! the convolution and pooling kernels at the shapes of SimpleConvNet's first layer (W5, batch 100) and
//! DeepConvNet's second, and one whole training step of W2, W3 and W5. Run with
//! `cargo bench --bench kernels`; pick with a filter, e.g. `cargo bench --bench kernels -- matmul`.
//!
//! A GPU sample records its iterations back to back, as training does, and then waits for the device,
//! so the time per iteration is throughput, not one dispatch's latency.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use nabla::backend::Samples;
use nabla::bench::Workload;
use nabla::layers::Shape;
use nabla::mnist::PIXELS;
use nabla::model::Model;
use nabla::model::Truth;
use nabla::window::Window;
use nabla::{
    Activation, Backend, ConvGrads, CpuBackend, Epilogue, GpuBackend, Optimizer, OptimizerKind,
    Shaped,
};

const BATCH: usize = 128;
const HIDDEN: usize = 128;
const CLASSES: usize = 10;

fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Times `op` as `iters` back-to-back calls followed by one wait for the device.
fn timed<B: Backend>(b: &B, iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    b.synchronize().expect("device finished");
    start.elapsed()
}

/// Registers every kernel benchmark for backend `b` under the function name `label`.
fn kernels<B: Backend>(c: &mut Criterion, label: &str, b: &B) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut t = |rows: usize, cols: usize| {
        b.tensor(rows, cols, &random(&mut rng, rows * cols))
            .expect("tensor")
    };
    let x = t(BATCH, PIXELS);
    let w1 = t(PIXELS, HIDDEN);
    let bias = t(1, HIDDEN);
    let h = t(BATCH, HIDDEN);
    let w2 = t(HIDDEN, HIDDEN);
    let logits = t(BATCH, CLASSES);
    let mut out = b.zeros(BATCH, HIDDEN).expect("tensor");
    let mut grad_w1 = b.zeros(PIXELS, HIDDEN).expect("tensor");

    let mut g = c.benchmark_group("matmul");
    g.bench_function(format!("{label} forward 128x784x128 +bias"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.matmul(&x, false, &w1, false, Epilogue::bias(&bias), &mut out)
                    .expect("matmul")
            })
        })
    });
    g.bench_function(format!("{label} dW 784x128x128 (XT.dY)"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.matmul(&x, true, &h, false, Epilogue::none(), &mut grad_w1)
                    .expect("matmul")
            })
        })
    });
    g.bench_function(format!("{label} dX 128x128x128 (dY.WT)"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.matmul(&h, false, &w2, true, Epilogue::none(), &mut out)
                    .expect("matmul")
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("activation 128x128");
    for f in [Activation::Relu, Activation::Sigmoid] {
        g.bench_function(format!("{label} {} forward", f.name()), |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || b.activation_forward(f, &h, &mut out).expect("act"))
            })
        });
        g.bench_function(format!("{label} {} backward", f.name()), |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || {
                    b.activation_backward(f, &h, &h, &mut out).expect("act")
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("vector 128x128");
    let mut acc = b.zeros(BATCH, HIDDEN).expect("tensor");
    g.bench_function(format!("{label} axpy"), |bench| {
        bench.iter_custom(|n| timed(b, n, || b.axpy(0.5, &h, &mut acc).expect("axpy")))
    });
    let mut db = b.zeros(1, HIDDEN).expect("tensor");
    g.bench_function(format!("{label} bias gradient"), |bench| {
        bench.iter_custom(|n| timed(b, n, || b.bias_grad(&h, &mut db).expect("bias grad")))
    });
    g.finish();

    let mut probs = b.zeros(BATCH, CLASSES).expect("tensor");
    c.benchmark_group("softmax 128x10")
        .bench_function(label, |bench| {
            bench.iter_custom(|n| timed(b, n, || b.softmax(&logits, &mut probs).expect("softmax")))
        });

    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % CLASSES as u32).collect();
    let labels = b.indices(&labels).expect("labels");
    let mut dlogits = b.zeros(BATCH, CLASSES).expect("tensor");
    let mut loss = b.zeros(1, 1).expect("tensor");
    c.benchmark_group("softmax_cross_entropy 128x10")
        .bench_function(label, |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || {
                    b.softmax_cross_entropy(&logits, &labels, &mut dlogits, &mut loss)
                        .expect("loss")
                })
            })
        });

    let mut g = c.benchmark_group("optimizer 784x128");
    for (name, kind) in [
        (
            "momentum",
            OptimizerKind::Momentum {
                momentum: 0.9,
                nesterov: false,
            },
        ),
        (
            "adam",
            OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
        ),
    ] {
        let step = Optimizer::new(kind, 1e-3).step(1);
        let mut param = b.zeros(PIXELS, HIDDEN).expect("tensor");
        let mut s1 = b.zeros(PIXELS, HIDDEN).expect("tensor");
        let mut s2 = b.zeros(PIXELS, HIDDEN).expect("tensor");
        g.bench_function(format!("{label} {name}"), |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || {
                    b.optimizer_step(&step, &mut param, &grad_w1, &mut s1, &mut s2)
                        .expect("step")
                })
            })
        });
    }
    g.finish();

    let images = 10_000;
    let pixels: Vec<u8> = (0..images * PIXELS).map(|i| (i % 251) as u8).collect();
    let classes: Vec<u32> = (0..images).map(|i| (i % CLASSES) as u32).collect();
    let set = b
        .dataset(&Samples::bytes(&pixels, PIXELS, &classes, 1.0 / 255.0, 0.0))
        .expect("dataset");
    let order: Vec<u32> = (0..images as u32).rev().collect();
    let order = b.indices(&order).expect("order");
    let mut batch_x = b.zeros(BATCH, PIXELS).expect("tensor");
    let mut batch_y = b.indices(&vec![0; BATCH]).expect("labels");
    c.benchmark_group("gather 128x784")
        .bench_function(label, |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || {
                    b.gather(&set, &order, 512, &mut batch_x, &mut batch_y)
                        .expect("gather")
                })
            })
        });

    // SimpleConvNet's layer, and DeepConvNet's second (its costliest).
    let simple = Window::new(Shape::image(1, 28, 28), 5, 5, 1, 0).expect("window");
    conv_kernels(c, label, b, "conv 30x5x5 batch 100", simple, 30);
    let deep = Window::new(Shape::image(16, 28, 28), 3, 3, 1, 1).expect("window");
    conv_kernels(
        c,
        label,
        b,
        "conv 16x3x3 pad 1 on 16x28x28 batch 100",
        deep,
        16,
    );

    for workload in [Workload::Mlp, Workload::Wide, Workload::Cnn] {
        let (spec, init, optimizer, batch) = workload.setup();
        let mut model = Model::new(b, spec, init, 1, optimizer.state_count()).expect("model");
        let mut ws = model.workspace(b, batch).expect("workspace");
        let mut x = b.zeros(batch, PIXELS).expect("tensor");
        let mut y = b.indices(&vec![0; batch]).expect("labels");
        b.gather(&set, &order, 0, &mut x, &mut y).expect("gather");
        let step = optimizer.step(1);
        c.benchmark_group(format!("training step {}", workload.name()))
            .sample_size(10)
            .bench_function(label, |bench| {
                bench.iter_custom(|n| {
                    timed(b, n, || {
                        model.forward(b, &x, &mut ws).expect("forward");
                        model
                            .backward(b, &x, Truth::Labels(&y), &mut ws)
                            .expect("backward");
                        model.update(b, &step).expect("update");
                        b.submit();
                        black_box(&ws);
                    })
                })
            });
    }
}

/// A conv layer followed by `max_pool 2`, on a batch of 100 images: the book's steps (im2col, the
/// layout change, the products, col2im), the pooling, and the conv layer's passes as the backend runs
/// them (the forward pass with bias and ReLU; the backward pass without and with the input's gradient).
fn conv_kernels<B: Backend>(
    c: &mut Criterion,
    label: &str,
    b: &B,
    group: &str,
    conv: Window,
    filters: usize,
) {
    const IMAGES: usize = 100;
    let mut rng = StdRng::seed_from_u64(11);
    let mut t = |rows: usize, cols: usize| {
        b.tensor(rows, cols, &random(&mut rng, rows * cols))
            .expect("tensor")
    };
    let pool = Window::new(conv.output(filters), 2, 2, 2, 0).expect("window");
    let rows = IMAGES * conv.positions();
    let x = t(IMAGES, conv.input.len());
    let weight = t(filters, conv.patch());
    let bias = t(1, filters);
    let mut cols = t(rows, conv.patch());
    let mut dy_rows = t(rows, filters);
    let mut y = t(IMAGES, conv.output(filters).len());
    let mut pooled = t(IMAGES, pool.output(filters).len());
    let mut argmax = b.indices(&vec![0; pooled.len()]).expect("indices");
    let mut dweight = t(filters, conv.patch());
    let mut dbias = t(1, filters);
    let mut dx = t(IMAGES, conv.input.len());
    let mut scratch = B::ConvScratch::default();

    let mut g = c.benchmark_group(group);
    g.bench_function(format!("{label} im2col"), |bench| {
        bench.iter_custom(|n| timed(b, n, || b.im2col(&conv, &x, &mut cols).expect("im2col")))
    });
    g.bench_function(format!("{label} max pool 2"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.max_pool(&pool, &y, Activation::Identity, &mut pooled, &mut argmax)
                    .expect("pool")
            })
        })
    });
    g.bench_function(format!("{label} max pool backward"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.max_pool_backward(&pool, &pooled, &argmax, Epilogue::none(), &mut y)
                    .expect("pool")
            })
        })
    });
    g.bench_function(format!("{label} planes to rows"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.planes_to_rows(conv.positions(), &y, &mut dy_rows)
                    .expect("layout")
            })
        })
    });
    g.bench_function(format!("{label} dW = Gᵀ·cols"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.matmul(&dy_rows, true, &cols, false, Epilogue::none(), &mut dweight)
                    .expect("matmul")
            })
        })
    });
    g.bench_function(format!("{label} dcols = G·W"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.matmul(&dy_rows, false, &weight, false, Epilogue::none(), &mut cols)
                    .expect("matmul")
            })
        })
    });
    g.bench_function(format!("{label} col2im"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                b.col2im(&conv, &cols, Epilogue::none(), &mut dx)
                    .expect("col2im")
            })
        })
    });
    g.bench_function(format!("{label} forward +bias relu"), |bench| {
        bench.iter_custom(|n| {
            timed(b, n, || {
                let relu = Epilogue::forward(Some(&bias), Activation::Relu);
                b.convolution(&conv, &x, &weight, relu, &mut y)
                    .expect("convolution")
            })
        })
    });
    for with_dx in [false, true] {
        let name = if with_dx { "dW db dx" } else { "dW db" };
        g.bench_function(format!("{label} backward {name}"), |bench| {
            bench.iter_custom(|n| {
                timed(b, n, || {
                    let grads = ConvGrads {
                        weight: &mut dweight,
                        bias: &mut dbias,
                        input: with_dx.then_some(&mut dx),
                        before: Epilogue::none(),
                    };
                    b.convolution_backward(&conv, &x, &y, &weight, grads, &mut scratch)
                        .expect("backward")
                })
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    kernels(c, "cpu", &CpuBackend::new());
    match GpuBackend::new() {
        Ok(gpu) => kernels(c, "gpu", &gpu),
        Err(e) => eprintln!("GPU benchmarks skipped: {e}"),
    }
}

criterion_group! {
    name = all;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(all);
