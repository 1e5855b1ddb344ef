//! Recurrent layers (RNN, LSTM, GRU) on both backends: against an f64 reference written here from the
//! cells' equations, GPU against CPU on random inputs at odd sizes (with saturating and NaN inputs),
//! backpropagation through time against central differences, gradient clipping, and bad input.
//!
//! Tolerances: the reference is f64, the layers f32 over at most 9 steps of products of length ≤ 13,
//! so a forward value is off by a few float roundings per step (≈ 1e-6 here); 2e-5 absolute leaves a
//! margin. GPU against CPU: both f32, different summation orders and FMA contraction, 1e-4 absolute
//! plus 1e-3 relative for outputs and gradients (values of order 1, gradients summed over ≤ 100
//! terms). Central differences with h = 1e-2 in f32: as `tests/gradcheck.rs`.

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::curriculum::gradcheck::check;
use nabla::init::Init;
use nabla::model::{Model, ModelSpec, Truth};
use nabla::recurrent::{Cell, Sequence, SequenceGrads};
use nabla::{Backend, Shaped};

/// Parameters in PyTorch's layout: `W_ih` `[G·H, F]`, `W_hh` `[G·H, H]`, `b_ih`, `b_hh` `[G·H]`.
struct Weights {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The cell over one sequence (`x` `[T, F]`) in f64, from the equations in PyTorch's documentation;
/// returns every step's state, `[T, H]`.
fn reference(cell: Cell, w: &Weights, x: &[f32], t: usize, f: usize, h: usize) -> Vec<f64> {
    let g = cell.gates();
    let affine = |m: &[f32], b: &[f32], v: &[f64], width: usize| -> Vec<f64> {
        (0..g * h)
            .map(|row| {
                let dot: f64 = (0..width)
                    .map(|k| f64::from(m[row * width + k]) * v[k])
                    .sum();
                dot + f64::from(b[row])
            })
            .collect()
    };
    let (mut state, mut c) = (vec![0.0f64; h], vec![0.0f64; h]);
    let mut out = Vec::new();
    for step in 0..t {
        let input: Vec<f64> = x[step * f..(step + 1) * f]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let xp = affine(&w.w_ih, &w.b_ih, &input, f);
        let rp = affine(&w.w_hh, &w.b_hh, &state, h);
        let next: Vec<f64> = (0..h)
            .map(|j| match cell {
                Cell::Rnn => (xp[j] + rp[j]).tanh(),
                Cell::Lstm => {
                    let i = sigmoid(xp[j] + rp[j]);
                    let fg = sigmoid(xp[h + j] + rp[h + j]);
                    let gg = (xp[2 * h + j] + rp[2 * h + j]).tanh();
                    let o = sigmoid(xp[3 * h + j] + rp[3 * h + j]);
                    c[j] = fg * c[j] + i * gg;
                    o * c[j].tanh()
                }
                Cell::Gru => {
                    let r = sigmoid(xp[j] + rp[j]);
                    let z = sigmoid(xp[h + j] + rp[h + j]);
                    let n = (xp[2 * h + j] + r * rp[2 * h + j]).tanh();
                    (1.0 - z) * n + z * state[j]
                }
            })
            .collect();
        state = next;
        out.extend_from_slice(&state);
    }
    out
}

fn weights<B: Backend>(b: &B, model: &Model<B>, layer: usize) -> Weights {
    let p: Vec<Vec<f32>> = model.layers[layer]
        .params()
        .iter()
        .map(|p| read(b, &p.value))
        .collect();
    Weights {
        w_ih: p[0].clone(),
        w_hh: p[1].clone(),
        b_ih: p[2].clone(),
        b_hh: p[3].clone(),
    }
}

/// One layer's outputs, every step's (`seq`) and the last, against the f64 reference.
fn matches_reference<B: Backend>(b: &B) {
    let (n, t, f, h) = (3, 7, 5, 6);
    let mut r = rng(11);
    let x = uniform(&mut r, n * t * f, 1.5);
    for cell in Cell::ALL {
        for seq in [true, false] {
            let name = cell.name();
            let spec = format!(
                "input {t}x{f}, {name} {h}{}, flatten",
                if seq { " seq" } else { "" }
            );
            let model = Model::new(b, ModelSpec::parse(&spec).unwrap(), Init::He, 5, 0).unwrap();
            let w = weights(b, &model, 0);
            let mut ws = model.workspace(b, n).unwrap();
            model
                .forward(b, &b.tensor(n, t * f, &x).unwrap(), &mut ws)
                .unwrap();
            let got = read(b, ws.logits());
            let mut want = Vec::new();
            for s in 0..n {
                let all = reference(cell, &w, &x[s * t * f..(s + 1) * t * f], t, f, h);
                let keep = if seq { &all[..] } else { &all[(t - 1) * h..] };
                want.extend(keep.iter().map(|&v| v as f32));
            }
            assert_close(&format!("{spec} forward"), &got, &want, 2e-5, 0.0);
        }
    }
}

#[test]
fn cpu_recurrent_layers_match_the_f64_equations() {
    matches_reference(&cpu());
}

#[test]
fn gpu_recurrent_layers_match_the_f64_equations() {
    with_gpu(|gpu| matches_reference(gpu));
}

/// Backpropagation through time against central differences, through 6 steps, every parameter of a
/// stack (a `seq` layer feeding another, so the input gradient is checked too).
fn bptt<B: Backend>(b: &B) {
    for cell in Cell::ALL {
        let name = cell.name();
        let spec = format!("input 6x4, {name} 5 seq, {name} 3, dense 3");
        let mut model = Model::new(b, ModelSpec::parse(&spec).unwrap(), Init::He, 2, 0).unwrap();
        let n = 4;
        let mut r = rng(3);
        let x = b.tensor(n, 24, &uniform(&mut r, n * 24, 1.0)).unwrap();
        let labels = b.indices(&[0, 2, 1, 2]).unwrap();
        let report = check(b, &mut model, &x, Truth::Labels(&labels), 1e-2, 30, 1).unwrap();
        assert_eq!(report.len(), 10, "{spec}");
        for c in &report {
            let what = format!("{spec} {}", c.name);
            assert!(
                c.mean_abs_diff < 2e-5 && c.max_abs_diff < 1e-4,
                "{what}: {} {}",
                c.mean_abs_diff,
                c.max_abs_diff
            );
            assert!(c.mean_abs_grad > 10.0 * c.mean_abs_diff, "{what}");
        }
    }
}

#[test]
fn cpu_backprop_through_time_matches_central_differences() {
    bptt(&cpu());
}

#[test]
fn gpu_backprop_through_time_matches_central_differences() {
    with_gpu(|gpu| bptt(gpu));
}

/// The buffers of a sequence of `t` steps over `n` samples, `h` units, filled from `values`.
fn sequence<B: Backend>(
    b: &B,
    cell: Cell,
    (n, t, h): (usize, usize, usize),
    values: &mut impl FnMut(usize) -> Vec<f32>,
) -> Sequence<B::Tensor> {
    let g = cell.gates() * h;
    let mut tensor = |rows: usize, cols: usize| b.tensor(rows, cols, &values(rows * cols)).unwrap();
    Sequence {
        steps: t,
        xp: tensor(n * t, g),
        r: tensor(n, g),
        gates: tensor(n * t, cell.saved() * h),
        cells: if cell == Cell::Lstm {
            tensor(n * t, h)
        } else {
            tensor(1, 1)
        },
        hprev: tensor(n * t, h),
        h: tensor(n, h),
        states: tensor(n * t, h),
        zero: b.zeros(n, h).unwrap(),
    }
}

fn read_sequence<B: Backend>(b: &B, s: &Sequence<B::Tensor>) -> Vec<Vec<f32>> {
    [&s.gates, &s.cells, &s.hprev, &s.h, &s.states]
        .iter()
        .map(|t| read(b, t))
        .collect()
}

/// The fused step kernels, GPU against CPU, op by op: every step forward then backward on random
/// buffers of odd sizes (more units than a workgroup, a batch of 3), with large pre-activations that
/// saturate the gates and a NaN that must reach the state it feeds and no other.
#[test]
fn gpu_recurrent_steps_match_the_cpu() {
    with_gpu(|gpu| {
        let c = cpu();
        let (n, t, h) = (3, 5, 67);
        for cell in Cell::ALL {
            for every_step in [false, true] {
                let mut r = rng(cell.code() as u64 + 10);
                let mut values = |len: usize| {
                    let mut v = uniform(&mut r, len, 3.0);
                    if len > 40 {
                        v[7] = 40.0;
                        v[8] = -40.0;
                    }
                    v
                };
                let mut on_cpu = sequence(&c, cell, (n, t, h), &mut values);
                // The same starting values on the GPU.
                let copy = |from: &nabla::CpuTensor| {
                    gpu.tensor(from.rows(), from.cols(), from.data()).unwrap()
                };
                let mut on_gpu = Sequence {
                    steps: t,
                    xp: copy(&on_cpu.xp),
                    r: copy(&on_cpu.r),
                    gates: copy(&on_cpu.gates),
                    cells: copy(&on_cpu.cells),
                    hprev: copy(&on_cpu.hprev),
                    h: copy(&on_cpu.h),
                    states: copy(&on_cpu.states),
                    zero: gpu.zeros(n, h).unwrap(),
                };
                let mut xp = on_cpu.xp.data().to_vec();
                xp[(n * t - 1) * cell.gates() * h + 3] = f32::NAN;
                c.write(&mut on_cpu.xp, &xp).unwrap();
                gpu.write(&mut on_gpu.xp, &xp).unwrap();
                for step in 0..t {
                    c.recurrent_step(cell, step, &mut on_cpu).unwrap();
                    gpu.recurrent_step(cell, step, &mut on_gpu).unwrap();
                }
                let (want, got) = (read_sequence(&c, &on_cpu), read_sequence(gpu, &on_gpu));
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_close(
                        &format!("{} forward buffer {k}", cell.name()),
                        g,
                        w,
                        1e-5,
                        1e-4,
                    );
                }
                let states = &want[4];
                assert!(
                    states[(n * t - 1) * h + 3].is_nan(),
                    "{}: NaN reaches its unit",
                    cell.name()
                );
                assert_eq!(
                    states.iter().filter(|v| v.is_nan()).count(),
                    1,
                    "{}",
                    cell.name()
                );

                let g = cell.gates() * h;
                let dy_cols = if every_step { t * h } else { h };
                let dy = uniform(&mut rng(99), n * dy_cols, 1.0);
                let mut gc = SequenceGrads {
                    dxp: c.zeros(n * t, g).unwrap(),
                    dr_all: c.zeros(n * t, g).unwrap(),
                    dr: c.zeros(n, g).unwrap(),
                    dh: c.tensor(n, h, &uniform(&mut rng(5), n * h, 1.0)).unwrap(),
                    carry: c.tensor(n, h, &uniform(&mut rng(6), n * h, 1.0)).unwrap(),
                };
                let mut gg = SequenceGrads {
                    dxp: gpu.zeros(n * t, g).unwrap(),
                    dr_all: gpu.zeros(n * t, g).unwrap(),
                    dr: gpu.zeros(n, g).unwrap(),
                    dh: gpu.tensor(n, h, gc.dh.data()).unwrap(),
                    carry: gpu.tensor(n, h, gc.carry.data()).unwrap(),
                };
                let (dyc, dyg) = (
                    c.tensor(n, dy_cols, &dy).unwrap(),
                    gpu.tensor(n, dy_cols, &dy).unwrap(),
                );
                for step in (0..t).rev() {
                    c.recurrent_step_backward(cell, step, &on_cpu, &dyc, &mut gc)
                        .unwrap();
                    gpu.recurrent_step_backward(cell, step, &on_gpu, &dyg, &mut gg)
                        .unwrap();
                    let what = format!("{} step {step} every_step {every_step}", cell.name());
                    assert_close(
                        &format!("{what} dxp"),
                        &read(gpu, &gg.dxp),
                        gc.dxp.data(),
                        1e-5,
                        1e-4,
                    );
                    assert_close(
                        &format!("{what} dr"),
                        &read(gpu, &gg.dr),
                        gc.dr.data(),
                        1e-5,
                        1e-4,
                    );
                    assert_close(
                        &format!("{what} carry"),
                        &read(gpu, &gg.carry),
                        gc.carry.data(),
                        1e-5,
                        1e-4,
                    );
                    if cell == Cell::Gru {
                        assert_close(
                            &format!("{what} dr_all"),
                            &read(gpu, &gg.dr_all),
                            gc.dr_all.data(),
                            1e-5,
                            1e-4,
                        );
                    }
                }
            }
        }
    });
}

/// Clipping by global norm, against its definition: the squares summed over every tensor, then each
/// scaled by `min(1, max/‖g‖)`; left alone under the bound; NaN passed through.
fn clipping<B: Backend>(b: &B) {
    let mut r = rng(21);
    let parts = [uniform(&mut r, 1031, 1.0), uniform(&mut r, 7, 3.0)];
    let norm = parts
        .iter()
        .flatten()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    for max in [0.5 * norm, 2.0 * norm] {
        let mut squares = b.zeros(1, 1).unwrap();
        let mut tensors: Vec<_> = parts
            .iter()
            .map(|p| b.tensor(1, p.len(), p).unwrap())
            .collect();
        for t in &tensors {
            b.sum_squares(t, &mut squares).unwrap();
        }
        let total = f64::from(read(b, &squares)[0]);
        assert!((total - norm * norm).abs() < 1e-4 * norm * norm, "{total}");
        for t in &mut tensors {
            b.clip(max as f32, &squares, t).unwrap();
        }
        let factor = (max / norm).min(1.0);
        for (t, p) in tensors.iter().zip(&parts) {
            let want: Vec<f32> = p.iter().map(|&v| (f64::from(v) * factor) as f32).collect();
            assert_close("clipped", &read(b, t), &want, 1e-6, 1e-5);
        }
    }
    let mut squares = b.tensor(1, 1, &[f32::NAN]).unwrap();
    let mut t = b.tensor(1, 3, &[1.0, 2.0, 3.0]).unwrap();
    b.clip(1.0, &squares, &mut t).unwrap();
    assert_eq!(
        read(b, &t),
        [1.0, 2.0, 3.0],
        "a NaN norm leaves the loss to report it"
    );
    b.sum_squares(&t, &mut squares).unwrap();
    assert!(read(b, &squares)[0].is_nan());
}

#[test]
fn cpu_clipping_by_global_norm_matches_its_definition() {
    clipping(&cpu());
}

#[test]
fn gpu_clipping_by_global_norm_matches_its_definition() {
    with_gpu(|gpu| clipping(gpu));
}

#[test]
fn recurrent_specs_are_read_and_bad_ones_refused() {
    let spec = ModelSpec::parse("input 784, lstm 8 seq steps 28, gru 4, dense 10").unwrap();
    let shapes: Vec<String> = spec
        .shapes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(shapes, ["1x28x8", "4", "10"]);
    let seq = ModelSpec::parse("input 28x28, rnn 8 seq, dense 10").unwrap();
    assert_eq!(
        seq.describe(),
        "input 1x28x28, rnn 8 seq, flatten, dense 10"
    );
    let refused = |text: &str, part: &str| {
        let message = ModelSpec::parse(text).unwrap_err().to_string();
        assert!(message.contains(part), "{text}: {message}");
    };
    refused("input 28x28, lstm 0, dense 10", "at least 1 unit");
    refused("input 784, lstm 8, dense 10", "reads a sequence of T steps");
    refused(
        "input 3x28x28, gru 8, dense 10",
        "reads a sequence of T steps",
    );
    refused("input 784, gru 8 steps 5, dense 10", "is not 5 equal steps");
    refused(
        "input 28x28, rnn 8 seq seq, dense 10",
        "expected `rnn UNITS [seq] [steps T]`",
    );
    refused("input 28x28, rnn 8 steps 0, dense 10", "at least 1 step");
    refused(
        "input 28x28, gru 8 forget-bias, dense 10",
        "expected `gru UNITS [seq] [steps T]`",
    );
    refused(
        "input 28x28, lstm 8 forget-bias chrono, dense 10",
        "expected `lstm UNITS [seq] [steps T] [forget-bias | chrono]`",
    );
    refused(
        "input 28x28, rnn 8 chrono, dense 10",
        "expected `rnn UNITS [seq] [steps T]`",
    );
    let mut optimizer = nabla::Optimizer::adam(1e-3);
    for bad in [0.0, -1.0, f32::NAN] {
        optimizer.clip_norm = Some(bad);
        let message = optimizer.validate().unwrap_err().to_string();
        assert!(message.contains("--clip-norm"), "{message}");
    }
}

/// `forget-bias` starts the LSTM's forget gate (gates i, f, g, o) at a total bias of exactly 1 and
/// leaves the other gates' draws as they were.
#[test]
fn forget_bias_starts_the_forget_gate_at_one() {
    let b = cpu();
    let build = |text: &str| {
        let model = Model::new(&b, ModelSpec::parse(text).unwrap(), Init::He, 3, 2).unwrap();
        weights(&b, &model, 0)
    };
    let plain = build("input 28x28, lstm 5, dense 10");
    let forget = build("input 28x28, lstm 5 forget-bias, dense 10");
    assert_eq!(
        ModelSpec::parse("input 28x28, lstm 5 forget-bias, dense 10")
            .unwrap()
            .describe(),
        "input 1x28x28, lstm 5 forget-bias, dense 10"
    );
    for unit in 0..20 {
        let total = forget.b_ih[unit] + forget.b_hh[unit];
        if (5..10).contains(&unit) {
            assert_eq!(total, 1.0, "forget unit {unit}");
        } else {
            assert_eq!(forget.b_ih[unit], plain.b_ih[unit], "gate unit {unit}");
            assert_eq!(forget.b_hh[unit], plain.b_hh[unit], "gate unit {unit}");
        }
    }
    assert_eq!(forget.w_hh, plain.w_hh);
}

/// `chrono` starts unit j's forget gate at a total bias of `log u_j` and its input gate at `−log u_j`,
/// `u_j` in [1, T − 1] for `T` steps (Tallec & Ollivier 2018), spread over that range, and leaves the
/// cell and output gates' draws and the weights as they were.
#[test]
fn chrono_spreads_the_forget_gate_over_the_sequence() {
    let b = cpu();
    let (t, h) = (200, 64);
    let build = |text: &str| {
        let model = Model::new(&b, ModelSpec::parse(text).unwrap(), Init::He, 3, 2).unwrap();
        weights(&b, &model, 0)
    };
    let text = format!("input {t}, lstm {h} steps {t} chrono, dense 10");
    let plain = build(&format!("input {t}, lstm {h} steps {t}, dense 10"));
    let chrono = build(&text);
    assert_eq!(
        ModelSpec::parse(&text).unwrap().describe(),
        format!("input {t}, lstm {h} steps {t} chrono, dense 10")
    );
    let longest = ((t - 1) as f32).ln();
    let forget: Vec<f32> = (h..2 * h)
        .map(|u| chrono.b_ih[u] + chrono.b_hh[u])
        .collect();
    for (j, &f) in forget.iter().enumerate() {
        assert!((0.0..=longest).contains(&f), "forget unit {j}: {f}");
        assert_eq!(chrono.b_ih[j] + chrono.b_hh[j], -f, "input unit {j}");
    }
    // A draw from U(1, T − 1) spreads its logarithms: a quarter of them above ln(0.75·T).
    let long = forget
        .iter()
        .filter(|&&f| f > (0.75 * t as f32).ln())
        .count();
    assert!((4..=h / 2).contains(&long), "{long} of {h} long memories");
    for unit in 2 * h..4 * h {
        assert_eq!(chrono.b_ih[unit], plain.b_ih[unit], "gate unit {unit}");
        assert_eq!(chrono.b_hh[unit], plain.b_hh[unit], "gate unit {unit}");
    }
    assert_eq!((chrono.w_ih, chrono.w_hh), (plain.w_ih, plain.w_hh));
    // One or two steps leave no room for a memory: u = 1, both biases 0.
    for short in [
        "input 5, lstm 4 steps 1 chrono, dense 2",
        "input 2x3, lstm 4 chrono, dense 2",
    ] {
        let w = build(short);
        for unit in 0..8 {
            assert_eq!(w.b_ih[unit] + w.b_hh[unit], 0.0, "{short}: unit {unit}");
        }
    }
}

/// A NaN that reaches the recurrent state stops training with the trainer's divergence error.
fn nan_state_stops_training<B: Backend>(b: &B) {
    use nabla::data::{Dataset, Features, Prep, Targets, Task};
    use nabla::layers::Shape;
    use nabla::train::{DeviceSplit, TrainConfig, train};
    let (n, t, f) = (40, 6, 3);
    let x = uniform(&mut rng(4), n * t * f, 1.0);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let names = vec!["a".to_string(), "b".to_string()];
    let targets = Targets::Classes { labels, names };
    let set = Dataset::new(Shape::image(1, t, f), Features::Floats(x), targets).unwrap();
    let prep = Prep::fit(
        &set,
        Task::Classify,
        false,
        nabla::data::prep::Schema::Array,
    )
    .unwrap();
    let spec = ModelSpec::parse(&format!("input {t}x{f}, lstm 5, dense 2")).unwrap();
    let mut model = Model::new(b, spec, Init::He, 1, 2).unwrap();
    let w_hh = &mut model.layers[0].params_mut()[1].value;
    let mut values = read(b, w_hh);
    values[3] = f32::NAN;
    b.write(w_hh, &values).unwrap();
    let split = DeviceSplit::from_dataset(b, set, &prep).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch: 10,
        optimizer: nabla::Optimizer::adam(1e-3),
        schedule: nabla::schedule::LrSchedule::constant(),
        seed: 1,
        max_steps: None,
        report_every: 1,
        patience: None,
    };
    let error = train(b, &mut model, &split, None, &config, |_, _| {}).unwrap_err();
    assert!(matches!(error, nabla::Error::Diverged { .. }), "{error}");
}

#[test]
fn cpu_nan_in_the_recurrent_state_stops_training() {
    nan_state_stops_training(&cpu());
}

#[test]
fn gpu_nan_in_the_recurrent_state_stops_training() {
    with_gpu(|gpu| nan_state_stops_training(gpu));
}

/// The CPU's whole-sequence passes (the batch split across threads, its own small-product kernel)
/// against the same passes op by op (`matmul` then the step kernel), at sizes where the batch splits
/// and the kernel's full 4×64 tiles and its edges both run: 9 sequences of 5 steps, 67 units. Both are
/// f32 with sums in different orders (fused or not), so 1e-5 absolute plus 1e-4 relative.
#[test]
fn cpu_sequence_passes_match_their_steps() {
    let c = cpu();
    let (n, t, h) = (9, 5, 67);
    for cell in Cell::ALL {
        let g = cell.gates() * h;
        let mut r = rng(cell.code() as u64 + 40);
        let w_hh = c.tensor(g, h, &uniform(&mut r, g * h, 0.3)).unwrap();
        let b_hh = c.tensor(1, g, &uniform(&mut r, g, 0.5)).unwrap();
        let mut values = |len: usize| uniform(&mut r, len, 1.5);
        let mut whole = sequence(&c, cell, (n, t, h), &mut values);
        let mut stepwise = Sequence {
            steps: t,
            xp: whole.xp.clone(),
            r: whole.r.clone(),
            gates: whole.gates.clone(),
            cells: whole.cells.clone(),
            hprev: whole.hprev.clone(),
            h: whole.h.clone(),
            states: whole.states.clone(),
            zero: whole.zero.clone(),
        };
        c.recurrent_forward(cell, &w_hh, &b_hh, &mut whole).unwrap();
        let zero = c.zeros(n, h).unwrap();
        for step in 0..t {
            let state = if step == 0 { &zero } else { &stepwise.h };
            let bias = nabla::Epilogue::bias(&b_hh);
            c.matmul(state, false, &w_hh, true, bias, &mut stepwise.r)
                .unwrap();
            c.recurrent_step(cell, step, &mut stepwise).unwrap();
        }
        let what = cell.name();
        for (k, (a, b)) in read_sequence(&c, &whole)
            .iter()
            .zip(&read_sequence(&c, &stepwise))
            .enumerate()
        {
            assert_close(&format!("{what} forward buffer {k}"), a, b, 1e-5, 1e-4);
        }
        let dy = c
            .tensor(n, t * h, &uniform(&mut rng(8), n * t * h, 1.0))
            .unwrap();
        let grads = || SequenceGrads {
            dxp: c.zeros(n * t, g).unwrap(),
            dr_all: c.zeros(n * t, g).unwrap(),
            dr: c.zeros(n, g).unwrap(),
            dh: c.zeros(n, h).unwrap(),
            carry: c.zeros(n, h).unwrap(),
        };
        let (mut all, mut each) = (grads(), grads());
        c.recurrent_backward(cell, &w_hh, &whole, &dy, &mut all)
            .unwrap();
        for step in (0..t).rev() {
            c.recurrent_step_backward(cell, step, &whole, &dy, &mut each)
                .unwrap();
            if step > 0 {
                let none = nabla::Epilogue::none();
                c.matmul(&each.dr, false, &w_hh, false, none, &mut each.dh)
                    .unwrap();
            }
        }
        assert_close(
            &format!("{what} dxp"),
            all.dxp.data(),
            each.dxp.data(),
            1e-5,
            1e-4,
        );
        assert_close(
            &format!("{what} dr"),
            all.dr.data(),
            each.dr.data(),
            1e-5,
            1e-4,
        );
        if cell == Cell::Gru {
            assert_close(
                &format!("{what} dr_all"),
                all.dr_all.data(),
                each.dr_all.data(),
                1e-5,
                1e-4,
            );
        }
    }
}

/// Whole layers, GPU against CPU: a stack's outputs and every parameter's gradient after one training
/// pass, at sizes where the CPU splits the batch (tolerances as in the module's header).
#[test]
fn gpu_recurrent_stacks_match_the_cpu() {
    with_gpu(|gpu| {
        let c = cpu();
        let (n, t, f) = (9, 5, 7);
        let x = uniform(&mut rng(30), n * t * f, 1.0);
        let labels = [0u32, 1, 2, 0, 1, 2, 0, 1, 2];
        for cell in Cell::ALL {
            let name = cell.name();
            let spec = format!("input {t}x{f}, {name} 67 seq, {name} 33, dense 3");
            let grads = |on_gpu: bool| -> (Vec<f32>, Vec<Vec<f32>>) {
                fn pass<B: Backend>(
                    b: &B,
                    spec: &str,
                    x: &[f32],
                    labels: &[u32],
                    n: usize,
                ) -> (Vec<f32>, Vec<Vec<f32>>) {
                    let mut model =
                        Model::new(b, ModelSpec::parse(spec).unwrap(), Init::He, 4, 0).unwrap();
                    let xt = b.tensor(n, x.len() / n, x).unwrap();
                    let y = b.indices(labels).unwrap();
                    let mut ws = model.workspace(b, n).unwrap();
                    model.forward_train(b, &xt, &mut ws, 1, 1).unwrap();
                    model.backward(b, &xt, Truth::Labels(&y), &mut ws).unwrap();
                    let logits = read(b, ws.logits());
                    (logits, model.params().map(|p| read(b, &p.grad)).collect())
                }
                if on_gpu {
                    pass(gpu, &spec, &x, &labels, n)
                } else {
                    pass(&c, &spec, &x, &labels, n)
                }
            };
            let (want, want_grads) = grads(false);
            let (got, got_grads) = grads(true);
            assert_close(&format!("{spec} logits"), &got, &want, 1e-4, 1e-3);
            for (k, (g, w)) in got_grads.iter().zip(&want_grads).enumerate() {
                assert_close(&format!("{spec} gradient {k}"), g, w, 1e-4, 1e-3);
            }
        }
    });
}
