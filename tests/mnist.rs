//! MNIST: the IDX checks on small files written here, good and bad; short real-MNIST runs that learn
//! on the CPU and on the GPU; GPU and CPU agreeing on the same seeded run; and checkpoints.

mod common;

use std::path::{Path, PathBuf};

use common::{cpu, real_mnist, with_gpu};
use nabla::bench::{self, Machine, Report, Workload};
use nabla::data::Prep;
use nabla::init::Init;
use nabla::mnist::{self, Mnist, Split};
use nabla::model::{MlpOptions, Model, ModelSpec, Truth};
use nabla::schedule::LrSchedule;
use nabla::train::{
    DeviceSplit, EpochStats, TrainConfig, evaluate, evaluate_async, outputs_of_inputs, train,
};
use nabla::{Activation, Backend, Error, Optimizer};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x803, n, rows, cols] {
        v.extend(u32::to_be_bytes(w));
    }
    v.extend((0..pixels).map(|i| (i % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(u32::to_be_bytes(0x801));
    v.extend(u32::to_be_bytes(labels.len() as u32));
    v.extend(labels);
    v
}

fn reason(e: Error) -> String {
    match e {
        Error::Data { reason, .. } => reason,
        other => panic!("expected a data error, got {other}"),
    }
}

#[test]
fn idx_checks_accept_good_files_and_reject_bad_ones() {
    let p = Path::new("x");
    assert_eq!(
        mnist::check_images(p, &idx_images(3, 28, 28, 3 * 784)).unwrap(),
        3
    );
    assert_eq!(mnist::check_labels(p, &idx_labels(&[0, 9, 4])).unwrap(), 3);

    let truncated = idx_images(3, 28, 28, 3 * 784 - 1);
    assert!(reason(mnist::check_images(p, &truncated).unwrap_err()).contains("truncated"));
    let mut bad_magic = idx_images(1, 28, 28, 784);
    bad_magic[3] = 0x01;
    assert!(reason(mnist::check_images(p, &bad_magic).unwrap_err()).contains("magic"));
    assert!(
        reason(mnist::check_images(p, &idx_images(1, 32, 28, 784)).unwrap_err()).contains("32×28")
    );
    assert!(reason(mnist::check_images(p, &[0, 0, 8]).unwrap_err()).contains("too short"));
    assert!(
        reason(mnist::check_labels(p, &idx_labels(&[1, 10])).unwrap_err()).contains("not a digit")
    );
    let mut short = idx_labels(&[1, 2, 3]);
    short.pop();
    assert!(reason(mnist::check_labels(p, &short).unwrap_err()).contains("promising 3"));
}

/// A model for MNIST takes its 784 pixels flat or as one 28×28 channel and gives 10 logits; 784 values
/// in another layout would scramble the images.
#[test]
fn only_models_that_read_mnist_images_are_accepted() {
    for good in [
        "input 784, dense 10",
        "input 1x28x28, conv 4x3x3, relu, dense 10",
    ] {
        Prep::mnist(true)
            .check_model(&ModelSpec::parse(good).unwrap())
            .expect(good);
    }
    for (bad, says) in [
        ("input 4x14x14, conv 4x3x3, relu, dense 10", "takes 4x14x14"),
        ("input 1x14x56, dense 10", "takes 1x14x56"),
        ("input 784, dense 9", "gives 9"),
    ] {
        let err = Prep::mnist(true)
            .check_model(&ModelSpec::parse(bad).unwrap())
            .expect_err(bad);
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
}

#[test]
fn a_split_from_idx_bytes_is_checked_as_files_are() {
    let images = idx_images(2, 28, 28, 2 * 784);
    let split = Split::from_idx("imgs", &images, "lbls", &idx_labels(&[3, 7])).unwrap();
    assert_eq!(split.labels, [3, 7]);
    assert_eq!(split.images, images[16..]);
    let error = |e: Error| match e {
        Error::Data { path, reason } => format!("{}: {reason}", path.display()),
        other => panic!("expected a data error, got {other}"),
    };
    let mismatch = Split::from_idx("imgs", &images, "lbls", &idx_labels(&[1, 2, 3])).unwrap_err();
    assert_eq!(error(mismatch), "lbls: 3 labels for 2 images in imgs");
    let bad_label = Split::from_idx("imgs", &images, "lbls", &idx_labels(&[1, 12])).unwrap_err();
    assert!(error(bad_label).starts_with("lbls: label 1 is 12"));
    let truncated = Split::from_idx("imgs", &images[..900], "lbls", &idx_labels(&[1, 2]));
    assert!(error(truncated.unwrap_err()).starts_with("imgs: "));
}

#[test]
fn mismatched_or_missing_files_are_clear_errors() {
    let dir = scratch("pair");
    let (images, labels) = (dir.join("i"), dir.join("l"));
    std::fs::write(&images, idx_images(2, 28, 28, 2 * 784)).unwrap();
    std::fs::write(&labels, idx_labels(&[1, 2, 3])).unwrap();
    assert!(
        reason(mnist::check_pair(&images, &labels).unwrap_err()).contains("3 labels for 2 images")
    );
    std::fs::write(&labels, idx_labels(&[1, 2])).unwrap();
    assert_eq!(mnist::check_pair(&images, &labels).unwrap(), 2);
    // A directory of small (valid) files is not MNIST: a clear error, not the mnist crate's panic.
    for (name, bytes) in mnist::FILES.iter().zip([
        idx_images(2, 28, 28, 2 * 784),
        idx_labels(&[1, 2]),
        idx_images(2, 28, 28, 2 * 784),
        idx_labels(&[1, 2]),
    ]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    assert!(reason(Mnist::load(&dir).unwrap_err()).contains("MNIST has 60000"));
    assert!(matches!(
        Mnist::load(&dir.join("nowhere")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

fn spec() -> ModelSpec {
    ModelSpec::mlp(784, &[64], 10, Activation::Relu)
}

fn spec_with(dropout: f32, batch_norm: bool) -> ModelSpec {
    let options = MlpOptions {
        dropout,
        batch_norm,
    };
    ModelSpec::mlp_with(784, &[64], 10, Activation::Relu, options)
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 50,
        optimizer: Optimizer::adam(2e-3),
        schedule: LrSchedule::constant(),
        seed: 7,
        max_steps: None,
        report_every: 10,
        patience: None,
    }
}

/// Trains on the first `n` images; returns the history and the test accuracy on 2 000 test images.
fn short_run<B: Backend>(
    b: &B,
    data: &Mnist,
    n: usize,
    epochs: usize,
) -> (Vec<EpochStats>, f32, Model<B>) {
    let train_split =
        DeviceSplit::upload(b, &data.train.clone().truncated(n), &Prep::mnist(true)).unwrap();
    let test_split =
        DeviceSplit::upload(b, &data.test.clone().truncated(2000), &Prep::mnist(true)).unwrap();
    let cfg = config(epochs);
    let mut model = Model::new(b, spec(), Init::He, 7, cfg.optimizer.state_count()).unwrap();
    let history = train(b, &mut model, &train_split, None, &cfg, |_, _| {}).unwrap();
    let accuracy = evaluate(b, &model, &test_split, 1000).unwrap();
    (history, accuracy, model)
}

#[test]
fn short_real_mnist_run_learns_on_cpu_and_repeats_exactly() {
    let data = real_mnist();
    let b = cpu();
    let (history, accuracy, _) = short_run(&b, data, 3000, 2);
    assert!(
        accuracy > 0.85,
        "test accuracy {accuracy} after 2 epochs on 3000 images"
    );
    assert!(history[1].train_loss < history[0].train_loss);
    let (again, accuracy_again, _) = short_run(&b, data, 3000, 2);
    let figures = |h: &[EpochStats]| {
        h.iter()
            .map(|s| (s.train_loss, s.train_accuracy))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        figures(&history),
        figures(&again),
        "same seed, same CPU run"
    );
    assert_eq!(accuracy, accuracy_again);
}

#[test]
fn short_real_mnist_run_learns_on_gpu_agrees_with_cpu_and_repeats() {
    let data = real_mnist();
    with_gpu(|gpu| {
        let (history, accuracy, _) = short_run(&*gpu, data, 3000, 2);
        assert!(accuracy > 0.85, "GPU test accuracy {accuracy}");
        let (again, accuracy_again, _) = short_run(&*gpu, data, 3000, 2);
        assert_eq!(
            history[1].train_loss, again[1].train_loss,
            "same seed, same GPU loss"
        );
        assert_eq!(accuracy, accuracy_again);
        // The first epoch's mean loss (60 steps) on GPU and CPU from the same seed: the two differ
        // only by rounding, which compounds slowly over the steps.
        let (cpu_history, cpu_accuracy, _) = short_run(&cpu(), data, 3000, 2);
        let (g, c) = (history[0].train_loss, cpu_history[0].train_loss);
        assert!((g - c).abs() < 1e-3 * c, "epoch-1 loss GPU {g} vs CPU {c}");
        assert!(
            (accuracy - cpu_accuracy).abs() < 0.01,
            "GPU {accuracy} vs CPU {cpu_accuracy}"
        );
    });
}

/// One epoch on 3000 images of 784-64-10 ReLU with dropout 0.3: the epoch's mean training loss, the test
/// accuracy, and whether a training forward pass of the trained model gives other logits than an
/// inference one (dropout at work) while two inference passes agree.
fn dropout_run<B: Backend>(b: &B, data: &Mnist) -> (f32, f32, bool) {
    let train_split =
        DeviceSplit::upload(b, &data.train.clone().truncated(3000), &Prep::mnist(true)).unwrap();
    let test_split =
        DeviceSplit::upload(b, &data.test.clone().truncated(2000), &Prep::mnist(true)).unwrap();
    let cfg = config(1);
    let spec = spec_with(0.3, false);
    let mut model = Model::new(b, spec, Init::He, 7, cfg.optimizer.state_count()).unwrap();
    let history = train(b, &mut model, &train_split, None, &cfg, |_, _| {}).unwrap();
    let accuracy = evaluate(b, &model, &test_split, 1000).unwrap();
    let (mut x, mut y) = (b.zeros(50, 784).unwrap(), b.indices(&[0; 50]).unwrap());
    let order = b.indices(&(0..50).collect::<Vec<u32>>()).unwrap();
    b.gather(&train_split.set, &order, 0, &mut x, &mut y)
        .unwrap();
    let mut ws = model.workspace(b, 50).unwrap();
    model.forward(b, &x, &mut ws).unwrap();
    let inference = b.read(ws.logits()).unwrap();
    model.forward_train(b, &x, &mut ws, 1, 1).unwrap();
    let training = b.read(ws.logits()).unwrap();
    model.forward(b, &x, &mut ws).unwrap();
    let again = b.read(ws.logits()).unwrap();
    (
        history[0].train_loss,
        accuracy,
        training != inference && again == inference,
    )
}

#[test]
fn a_dropout_model_learns_and_draws_the_same_masks_on_both_backends() {
    let data = real_mnist();
    let (cpu_loss, cpu_accuracy, cpu_drops) = dropout_run(&cpu(), data);
    assert!(cpu_accuracy > 0.8, "CPU test accuracy {cpu_accuracy}");
    assert!(cpu_drops, "dropout changes training passes only");
    with_gpu(|gpu| {
        let (loss, accuracy, drops) = dropout_run(&*gpu, data);
        assert!(drops, "dropout changes training passes only");
        // Masks drawn differently would move the loss by far more than the rounding this allows.
        assert!(
            (loss - cpu_loss).abs() < 1e-3 * cpu_loss,
            "epoch-1 loss GPU {loss} vs CPU {cpu_loss}"
        );
        assert!((accuracy - cpu_accuracy).abs() < 0.01);
    });
}

/// The schedule sets every step's rate: cut to a millionth after the first epoch, the second epoch
/// barely moves the weights; kept constant, it moves them as much as the first did, roughly.
#[test]
fn the_schedule_sets_each_steps_learning_rate() {
    let data = real_mnist();
    let b = cpu();
    let split =
        DeviceSplit::upload(&b, &data.train.clone().truncated(1000), &Prep::mnist(true)).unwrap();
    let first_weights = |epochs: usize, schedule: &str| {
        let cfg = TrainConfig {
            epochs,
            schedule: LrSchedule::parse(schedule, 0).unwrap(),
            ..config(epochs)
        };
        let mut model = Model::new(&b, spec(), Init::He, 7, cfg.optimizer.state_count()).unwrap();
        train(&b, &mut model, &split, None, &cfg, |_, _| {}).unwrap();
        b.read(&model.params().next().unwrap().value).unwrap()
    };
    let moved = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    let after_one = first_weights(1, "constant");
    let second_epoch_cut = moved(&after_one, &first_weights(2, "exp:0.000001"));
    let second_epoch_kept = moved(&after_one, &first_weights(2, "constant"));
    assert!(
        second_epoch_cut < 1e-3 * second_epoch_kept,
        "cut {second_epoch_cut} vs kept {second_epoch_kept}"
    );
}

/// Early stopping ends the run once the evaluation accuracy stops improving: at a rate too small to
/// change any prediction, epoch 1 stays the best, so patience 2 stops after epoch 3 of 6. Without an
/// evaluation split there is nothing to stop on, which is an error.
#[test]
fn early_stopping_ends_the_run_when_validation_stops_improving() {
    let data = real_mnist();
    let b = cpu();
    let mut train_split = data.train.clone().truncated(1200);
    let validation =
        DeviceSplit::upload(&b, &train_split.split_off(1000), &Prep::mnist(true)).unwrap();
    let train_set = DeviceSplit::upload(&b, &train_split, &Prep::mnist(true)).unwrap();
    let cfg = TrainConfig {
        optimizer: Optimizer::sgd(1e-12),
        patience: Some(2),
        ..config(6)
    };
    let mut model = Model::new(&b, spec(), Init::He, 7, cfg.optimizer.state_count()).unwrap();
    let history = train(
        &b,
        &mut model,
        &train_set,
        Some(&validation),
        &cfg,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    let err = train(&b, &mut model, &train_set, None, &cfg, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("early stopping"), "{err}");
}

/// SHA-256 of every parameter's bytes, in layer order.
fn parameter_hash<B: Backend>(b: &B, model: &Model<B>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for p in model.params() {
        hash.update(bytemuck::cast_slice::<f32, u8>(&b.read(&p.value).unwrap()));
    }
    format!("{:x}", hash.finalize())
}

/// The parameters' hash after one epoch on 1000 images with batch norm and dropout 0.2, everything
/// seeded by `seed`.
fn trained_hash<B: Backend>(b: &B, data: &Mnist, seed: u64) -> String {
    let split =
        DeviceSplit::upload(b, &data.train.clone().truncated(1000), &Prep::mnist(true)).unwrap();
    let cfg = TrainConfig { seed, ..config(1) };
    let spec = spec_with(0.2, true);
    let mut model = Model::new(b, spec, Init::He, seed, cfg.optimizer.state_count()).unwrap();
    train(b, &mut model, &split, None, &cfg, |_, _| {}).unwrap();
    parameter_hash(b, &model)
}

/// The same seed gives the same final parameters, bit for bit, twice on the CPU and twice on the GPU
/// (with dropout and batch norm, so the masks and batch statistics repeat too): every reduction runs in
/// a fixed order, without atomics.
#[test]
fn the_same_seed_gives_the_same_parameters_twice() {
    let data = real_mnist();
    let b = cpu();
    assert_eq!(trained_hash(&b, data, 3), trained_hash(&b, data, 3), "CPU");
    assert_ne!(
        trained_hash(&b, data, 3),
        trained_hash(&b, data, 4),
        "another seed"
    );
    with_gpu(|gpu| {
        assert_eq!(
            trained_hash(&*gpu, data, 3),
            trained_hash(&*gpu, data, 3),
            "GPU"
        );
    });
}

#[test]
fn split_helpers_normalise_and_one_hot() {
    let s = Split {
        images: (0..784).map(|i| (i % 256) as u8).collect(),
        labels: vec![3],
    };
    let x = s.image(0, true);
    assert_eq!(x[255], 1.0);
    assert_eq!(s.image(0, false)[255], 255.0);
    assert_eq!(
        s.one_hot(0),
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
}

/// One epoch of W1 (the curriculum's net) through the benchmark on each backend: the figures are
/// consistent with each other, the net learns, and the report carries every row in both formats.
#[test]
fn benchmark_runs_the_book_workload_and_reports_it() {
    let mnist = real_mnist();
    let (cpu_row, _) = bench::run(&cpu(), "cpu", Workload::Book, mnist, 1, 42, None).unwrap();
    let mut rows = vec![cpu_row];
    if let Some(gpu_row) = with_gpu(|gpu| {
        bench::run(&*gpu, "gpu", Workload::Book, mnist, 1, 42, None)
            .unwrap()
            .0
    }) {
        rows.push(gpu_row);
    }
    for m in &rows {
        assert!(m.test_accuracy > 0.7, "{m:?}"); // 79% after one epoch; chance is 10%
        assert_eq!(m.epoch_seconds.len(), 1);
        assert!(m.epoch_seconds[0] > 0.0, "{m:?}");
        assert_eq!(m.samples_per_epoch, 60_000);
        assert_eq!(m.flops_per_sample, 3.0 * 2.0 * (784.0 * 50.0 + 50.0 * 10.0));
    }
    if let [cpu_row, gpu_row] = &rows[..] {
        // Same seed, same data, same math: the two backends end within a point of each other.
        assert!((cpu_row.test_accuracy - gpu_row.test_accuracy).abs() < 0.01);
    }
    let report = Report {
        machine: Machine::probe(),
        load_after: None,
        rows,
    };
    let table = report.table();
    assert!(table.contains("| book | cpu |"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["rows"][0]["workload"], "book");
    assert_eq!(json["rows"].as_array().unwrap().len(), report.rows.len());
    if report.rows.len() == 2 {
        let ratio = report.gpu_over_cpu(Workload::Book).unwrap();
        assert!(table.contains(&format!("| {ratio:.2}× |")), "{table}");
        assert_eq!(json["rows"][1]["gpu_over_cpu"].as_f64(), Some(ratio));
    }
}

/// Evaluation reads the test images in place (batches of consecutive rows are windows on the set, not
/// copies) and counts hits without computing a loss: its accuracy must equal the arg-max count of the
/// logits of a copy of the same images (`outputs_of_inputs`, which never reads a set), with batches
/// that do not divide the set, and `evaluate_async` (hits and loss) must agree with it. On the CPU,
/// whose windows these are; bit-identical logits, since the same products compute both.
#[test]
fn evaluation_in_place_counts_what_a_copy_of_the_images_gives() {
    let data = real_mnist();
    let b = cpu();
    let prep = Prep::mnist(true);
    let train_split = DeviceSplit::upload(&b, &data.train.clone().truncated(3000), &prep).unwrap();
    let test = data.test.clone().truncated(2500);
    let test_split = DeviceSplit::upload(&b, &test, &prep).unwrap();
    let cfg = config(1);
    let mut model = Model::new(&b, spec_with(0.0, false), Init::He, 7, 2).unwrap();
    train(&b, &mut model, &train_split, None, &cfg, |_, _| {}).unwrap();
    let pixels = prep.inputs(&nabla::data::Features::Bytes(test.images.clone()));
    let logits = outputs_of_inputs(&b, &model, &pixels, 784, 700).unwrap();
    let hits = logits
        .chunks_exact(10)
        .zip(&test.labels)
        .filter(|(row, t)| nabla::cpu::argmax(row) == usize::from(**t))
        .count();
    let want = hits as f32 / 2500.0;
    assert!(want > 0.8, "a trained model: {want}");
    for batch in [1000, 700, 2500] {
        assert_eq!(evaluate(&b, &model, &test_split, batch).unwrap(), want);
        let both = pollster::block_on(evaluate_async(&b, &model, &test_split, batch)).unwrap();
        assert_eq!(both.accuracy, want);
        assert!(both.loss.is_finite() && both.loss > 0.0);
    }
    // A workspace for inference gives the same logits, and backpropagation refuses it.
    let x = b.tensor(5, 784, &pixels[..5 * 784]).unwrap();
    let labels = b.indices(&[7, 2, 1, 0, 4]).unwrap();
    let (mut full, mut lean) = (
        model.workspace(&b, 5).unwrap(),
        model.inference_workspace(&b, 5).unwrap(),
    );
    model.forward(&b, &x, &mut full).unwrap();
    model.forward(&b, &x, &mut lean).unwrap();
    assert_eq!(full.logits(), lean.logits());
    let err = model
        .backward(&b, &x, Truth::Labels(&labels), &mut lean)
        .unwrap_err();
    assert!(err.to_string().contains("inference workspace"), "{err}");
    model
        .backward(&b, &x, Truth::Labels(&labels), &mut full)
        .unwrap();
}
