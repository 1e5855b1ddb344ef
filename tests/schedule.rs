//! The learning-rate schedule as training applies it, step by step: one parameter with a constant
//! gradient moves by exactly the step's rate, so every step's rate can be read off the parameter. The
//! expected rates are written out from the schedules' definitions (README and `src/schedule.rs`):
//! steps count from 1, the cosine runs over the run's total steps, warm-up continues after a resume, and
//! `--lr-decay D` is `--schedule exp:D`.
//!
//! The set: four samples whose one feature is 0 and whose target is T = 10⁶, a model `dense 1` from zero
//! weights, plain SGD, half the squared error, nothing standardised. The weight's gradient is 0·dy = 0;
//! the bias's is the batch's mean of (b − T), so each step makes b ← b + lr_t·(T − b). The test computes
//! that recursion in f64; the only difference is f32 rounding of b (< 10, so ≤ 1e-6 absolute) and of
//! the update, hence 1e-5 relative on each step's rate.

mod common;

use common::cpu;
use nabla::data::prep::Schema;
use nabla::data::{Features, Prep, Targets, Task};
use nabla::init::Init;
use nabla::layers::Shape;
use nabla::model::{Model, ModelSpec};
use nabla::optim::{Optimizer, OptimizerKind};
use nabla::schedule::LrSchedule;
use nabla::train::{DeviceSplit, Event, Start, TrainConfig, train_from};
use nabla::{Backend, CpuBackend};

const T: f64 = 1e6;
const LR: f32 = 1e-6;

fn set() -> nabla::data::Dataset {
    nabla::data::Dataset::new(
        Shape::flat(1),
        Features::Floats(vec![0.0; 4]),
        Targets::Values {
            values: vec![T as f32; 4],
            names: vec!["t".into()],
        },
    )
    .unwrap()
}

fn config(schedule: &str, warmup: usize, epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 2,
        optimizer: Optimizer::new(OptimizerKind::Sgd, LR),
        schedule: LrSchedule::parse(schedule, warmup).unwrap(),
        seed: 1,
        max_steps: None,
        report_every: 1,
        patience: None,
    }
}

/// The bias after every step of a run from `start` (the model as `bias0` left it).
fn biases(b: &CpuBackend, cfg: &TrainConfig, start: Start, bias0: f32) -> Vec<f64> {
    let data = set();
    let prep = Prep::fit(&data, Task::Regress, false, Schema::Array).unwrap();
    let device = DeviceSplit::from_dataset(b, data, &prep).unwrap();
    let spec = ModelSpec::parse_layers("dense 1", Some(Shape::flat(1))).unwrap();
    let mut model = Model::new(b, spec, Init::Normal(0.0), 1, 0).unwrap();
    model.task = Task::Regress;
    let bias = model.params_mut().nth(1).unwrap();
    b.write(&mut bias.value, &[bias0]).unwrap();
    let mut seen = Vec::new();
    train_from(b, &mut model, &device, None, cfg, start, |event, model| {
        if let Event::Progress { .. } = event {
            let bias = model.params().nth(1).unwrap();
            seen.push(f64::from(b.read(&bias.value).unwrap()[0]));
        }
    })
    .unwrap();
    seen
}

/// Each step's rate read off the biases (from `bias0`).
fn rates(bias0: f64, biases: &[f64]) -> Vec<f64> {
    let mut before = bias0;
    biases
        .iter()
        .map(|&after| {
            let rate = (after - before) / (T - before);
            before = after;
            rate
        })
        .collect()
}

#[track_caller]
fn assert_rates(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            ((g - w) / w).abs() < 1e-5,
            "step {}: rate {g}, want {w}",
            i + 1
        );
    }
}

/// Exponential decay per epoch with a warm-up of 4 steps, 2 steps an epoch: steps 1–3 warm up
/// (t/4), epoch e's steps run at 0.5^(e−1); then the same run resumed after epoch 1 (2 steps) goes on
/// with steps 3, 4, …: step 3 is still warming up.
#[test]
fn every_step_runs_at_its_scheduled_rate_and_resume_keeps_the_count() {
    let b = cpu();
    let lr = f64::from(LR);
    let cfg = config("exp:0.5", 4, 3);
    let got = rates(0.0, &biases(&b, &cfg, Start::default(), 0.0));
    let want: Vec<f64> = [0.25, 0.5, 0.75 * 0.5, 0.5, 0.25, 0.25]
        .iter()
        .map(|f| f * lr)
        .collect();
    assert_rates(&got, &want);

    let first_epoch = biases(&b, &config("exp:0.5", 4, 1), Start::default(), 0.0);
    let start = Start {
        epochs_done: 1,
        steps_done: 2,
        history: Vec::new(),
    };
    let resumed = biases(&b, &cfg, start, first_epoch[1] as f32);
    assert_rates(&rates(first_epoch[1], &resumed), &want[2..]);
}

/// The cosine anneals over the run's total steps: ½(1 + cos(π·(t − 1)/T)) for T = 6 (3 epochs of 2).
#[test]
fn the_cosine_spans_the_whole_run() {
    let b = cpu();
    let got = rates(
        0.0,
        &biases(&b, &config("cosine", 0, 3), Start::default(), 0.0),
    );
    let want: Vec<f64> = (1..=6)
        .map(|t| f64::from(LR) * 0.5 * (1.0 + (std::f64::consts::PI * (t - 1) as f64 / 6.0).cos()))
        .collect();
    assert_rates(&got, &want);
}

/// `--lr-decay 0.5` trains exactly as `--schedule exp:0.5` (the same bytes saved), and differently
/// from no decay.
#[test]
fn lr_decay_is_the_exponential_schedule() {
    let dir = std::env::temp_dir().join(format!("nabla-schedule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("a,b,y\n");
    for i in 0..200 {
        let (a, b) = ((i % 17) as f32 / 3.0, (i % 11) as f32 / 5.0);
        csv.push_str(&format!("{a},{b},{}\n", 2.0 * a - b));
    }
    let table = dir.join("t.csv");
    std::fs::write(&table, csv).unwrap();
    let run = |name: &str, flags: &[&str]| -> Vec<u8> {
        let out = dir.join(format!("{name}.safetensors"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(["train", "--device", "cpu", "--data"])
            .arg(&table)
            .args([
                "--target",
                "y",
                "--task",
                "regression",
                "--epochs",
                "4",
                "--out",
            ])
            .arg(&out)
            .arg("--metrics")
            .arg(dir.join(format!("{name}.csv")))
            .args(flags)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&out).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
        names.sort();
        names
            .iter()
            .flat_map(|n| file.tensor(n).unwrap().data().to_vec())
            .collect()
    };
    let decay = run("decay", &["--lr-decay", "0.5"]);
    let exp = run("exp", &["--schedule", "exp:0.5"]);
    let constant = run("constant", &["--schedule", "constant"]);
    assert_eq!(decay, exp);
    assert_ne!(decay, constant);
    std::fs::remove_dir_all(dir).unwrap();
}
