//! Data-parallel training over MPI, on the CPU backend, over loopback (built with `--features mpi`;
//! `scripts/mpi-test.sh` runs this file). Each test starts `mpirun` under a time limit, either on one
//! of this binary's `rank_*` functions (ignored when the suite runs directly: each is one rank's half
//! of a test, and fails when started outside `mpirun`) or on the `nabla` binary.
//!
//! What must hold: the all-reduce equals the local sum on every rank, in the same bits on every rank;
//! N ranks × batch 32 take the steps of one process × batch 32·N (to rounding: the two sum the same
//! gradients in another order); every replica holds the same parameters and running statistics after
//! every epoch; a rank killed mid-run ends the run with an error; options that differ between ranks
//! are refused; only rank 0 writes.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nabla::data::{Dataset, Features, Prep, Schema, Targets, Task};
use nabla::distributed::mpi::MpiCollective;
use nabla::distributed::{Replicas, launched_processes};
use nabla::init::Init;
use nabla::layers::Shape;
use nabla::model::{Model, ModelSpec};
use nabla::optim::{Optimizer, OptimizerKind};
use nabla::schedule::LrSchedule;
use nabla::train::{
    DeviceSplit, Event, Start, TrainConfig, Trainer, steps_after, train_from, train_replicated,
};
use nabla::{Backend, CpuBackend, Shaped};
use rand::Rng;

/// What Open MPI needs to run here: as root (containers, CI) and without the cross-memory attach that
/// containers forbid.
const MPI_ENV: [(&str, &str); 3] = [
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ("OMPI_MCA_btl_vader_single_copy_mechanism", "none"),
];

/// How long any one `mpirun` may take before the test fails (the runs below take seconds).
const LIMIT: Duration = Duration::from_secs(180);

/// Held while an `mpirun` job runs: the tests start one job at a time (concurrent Open MPI jobs on one
/// machine share its session directory and ports, and are not what these tests are about).
static ONE_JOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_job() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed while holding it poisons it; the next job may still run.
    ONE_JOB
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `mpirun -np RANKS` (oversubscribing this machine's cores where RANKS exceeds them, unbound) under
/// coreutils' `timeout`, so that a hang fails the test instead of stalling the suite.
fn mpirun(ranks: usize) -> Command {
    let mut c = Command::new("timeout");
    c.args(["--kill-after=10", &LIMIT.as_secs().to_string(), "mpirun"])
        .args([
            "-np",
            &ranks.to_string(),
            "--oversubscribe",
            "--bind-to",
            "none",
        ])
        .envs(MPI_ENV);
    c
}

/// What an `mpirun` job left: its exit status and output, and each rank's output apart. Lines that two
/// ranks write at the same moment can interleave in mpirun's own output, so assertions about what a rank
/// said read that rank's (`--output-filename`).
struct Job {
    out: Output,
    ranks: Vec<String>,
}

impl Job {
    fn success(&self) -> bool {
        self.out.status.success()
    }

    /// Everything, for failure messages.
    fn transcript(&self) -> String {
        let mut text = transcript(&self.out);
        for (r, said) in self.ranks.iter().enumerate() {
            text += &format!("--- rank {r}\n{said}");
        }
        text
    }
}

/// Runs `mpirun -np RANKS ARGS…` to the end, keeping each rank's stdout and stderr.
fn run_job<S: AsRef<std::ffi::OsStr>>(ranks: usize, args: impl IntoIterator<Item = S>) -> Job {
    static JOB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let job = JOB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let logs = std::env::temp_dir().join(format!("nabla-mpi-logs-{}-{job}", std::process::id()));
    let _ = std::fs::remove_dir_all(&logs);
    let _job = one_job();
    let out = mpirun(ranks)
        .arg("--output-filename")
        .arg(&logs)
        .args(args)
        .output()
        .expect("coreutils' timeout and Open MPI's mpirun run (apt-get install openmpi-bin)");
    // Open MPI writes LOGS/<job>/rank.<r>/{stdout,stderr}.
    let mut said = vec![String::new(); ranks];
    for job_dir in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        for (r, text) in said.iter_mut().enumerate() {
            for stream in ["stdout", "stderr"] {
                let file = job_dir.path().join(format!("rank.{r}")).join(stream);
                *text += &std::fs::read_to_string(file).unwrap_or_default();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&logs);
    Job { out, ranks: said }
}

/// Runs this binary's test `name` as every rank of an `mpirun -np RANKS` job and asserts it passed on
/// all of them.
fn run_ranks(ranks: usize, name: &str) {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let job = run_job(
        ranks,
        [
            exe,
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ],
    );
    let text = job.transcript();
    assert!(
        job.success(),
        "{name} failed under mpirun -np {ranks} ({}):\n{text}",
        job.out.status
    );
    for said in &job.ranks {
        assert!(
            said.contains("1 passed"),
            "every rank runs {name} and passes:\n{text}"
        );
    }
}

fn transcript(out: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// MPI for one rank of a `run_ranks` job; fails when the test was started outside `mpirun`.
fn join() -> Replicas {
    assert!(
        launched_processes().is_some(),
        "this is one rank's half of a test: its caller starts it under mpirun"
    );
    Replicas::new(Box::new(MpiCollective::init().expect("MPI initialises")))
}

/// `n` values in [-1, 1] that depend on `seed` only.
fn values(seed: u64, n: usize) -> Vec<f32> {
    common::uniform(&mut common::rng(seed), n, 1.0)
}

#[test]
fn all_reduce_and_broadcast_agree_with_local_sums_on_2_and_3_ranks() {
    run_ranks(2, "rank_all_reduce_and_broadcast");
    run_ranks(3, "rank_all_reduce_and_broadcast");
}

#[test]
#[ignore = "one rank's half of all_reduce_and_broadcast_agree_with_local_sums_on_2_and_3_ranks"]
fn rank_all_reduce_and_broadcast() {
    let replicas = join();
    let comm = replicas.comm();
    let (rank, size) = (comm.rank(), comm.size());
    // An odd length, so that no implementation's chunking divides it evenly.
    let n = 1037;
    let mut sum = values(100 + rank as u64, n);
    comm.all_reduce_sum(&mut sum).unwrap();
    // Every rank knows every rank's values: the sum in f64, then compared within the rounding of
    // size − 1 f32 additions of terms of at most 1 (plus a little for the final rounding).
    let all: Vec<Vec<f32>> = (0..size).map(|r| values(100 + r as u64, n)).collect();
    for i in 0..n {
        let exact: f64 = all.iter().map(|v| f64::from(v[i])).sum();
        let bound = size as f64 * f64::from(f32::EPSILON) * size as f64;
        assert!(
            (f64::from(sum[i]) - exact).abs() <= bound,
            "rank {rank}: element {i} sums to {} but the ranks' values sum to {exact}",
            sum[i]
        );
    }
    // Whole numbers sum exactly, whatever the order.
    let mut counts: Vec<f32> = (0..n).map(|i| (i * (rank + 1)) as f32).collect();
    comm.all_reduce_sum(&mut counts).unwrap();
    let factor: usize = (1..=size).sum();
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(*c, (i * factor) as f32, "rank {rank}: element {i}");
    }
    // Every rank received the same bits as rank 0.
    let mut leader = sum.clone();
    comm.broadcast(&mut leader).unwrap();
    let same = leader
        .iter()
        .zip(&sum)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(same, "rank {rank}'s sum differs from rank 0's in its bits");
    // Broadcast of floats and of bytes whose length only rank 0 knows.
    let mut floats = values(200 + rank as u64, 9);
    comm.broadcast(&mut floats).unwrap();
    assert_eq!(floats, values(200, 9), "rank {rank}");
    let mut bytes = vec![rank as u8; 3 + rank];
    comm.broadcast_bytes(&mut bytes).unwrap();
    assert_eq!(bytes, vec![0u8; 3], "rank {rank}");
    comm.barrier().unwrap();
    // Agreement: the same value passes everywhere, a value one rank holds differently fails
    // everywhere.
    replicas.agree("options", b"--epochs 3").unwrap();
    let mine = if rank == size - 1 {
        "--epochs 4"
    } else {
        "--epochs 3"
    };
    let refused = replicas.agree("options", mine.as_bytes()).unwrap_err();
    assert!(
        refused.to_string().contains(&format!(
            "1 of the {size} ranks were given options different"
        )),
        "rank {rank}: {refused}"
    );
}

/// A classification of 1 920 samples of 12 features into 4 classes by a random linear teacher:
/// 1 920 is a whole number of global batches of 64 and 96, for 2 and 3 ranks × 32.
fn teacher_set() -> Dataset {
    let (n, features, classes) = (1920, 12, 4);
    let mut rng = common::rng(5);
    let w = common::uniform(&mut rng, features * classes, 1.0);
    let mut x = Vec::with_capacity(n * features);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..features).map(|_| rng.random_range(-1.0..1.0)).collect();
        let score = |c: usize| -> f32 { (0..features).map(|f| row[f] * w[c * features + f]).sum() };
        let label = (0..classes)
            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
            .unwrap();
        labels.push(label as u32);
        x.extend(row);
    }
    Dataset::new(
        Shape::flat(features),
        Features::Floats(x),
        Targets::Classes {
            labels,
            names: (0..classes).map(|c| c.to_string()).collect(),
        },
    )
    .unwrap()
}

fn upload(b: &CpuBackend, set: Dataset) -> DeviceSplit<CpuBackend> {
    let prep = Prep::fit(&set, Task::Classify, true, Schema::Array).unwrap();
    DeviceSplit::from_dataset(b, set, &prep).unwrap()
}

fn sgd_config(batch: usize, epochs: usize, max_steps: Option<usize>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        optimizer: Optimizer::new(
            OptimizerKind::Momentum {
                momentum: 0.9,
                nesterov: false,
            },
            0.1,
        ),
        schedule: LrSchedule::constant(),
        seed: 3,
        max_steps,
        report_every: 7,
        patience: None,
    }
}

fn parameters(b: &CpuBackend, model: &Model<CpuBackend>) -> Vec<f32> {
    model
        .params()
        .flat_map(|p| b.read(&p.value).unwrap())
        .collect()
}

#[test]
fn ranks_with_batch_32_take_the_steps_of_one_process_with_the_global_batch() {
    run_ranks(2, "rank_matches_one_process");
    run_ranks(3, "rank_matches_one_process");
}

#[test]
#[ignore = "one rank's half of ranks_with_batch_32_take_the_steps_of_one_process_with_the_global_batch"]
fn rank_matches_one_process() {
    let replicas = Rc::new(join());
    let (rank, size) = (replicas.rank(), replicas.size());
    let b = CpuBackend::new();
    let set = upload(&b, teacher_set());
    let spec = ModelSpec::parse("input 12, dense 24, relu, dense 24, relu, dense 4").unwrap();
    // Every rank starts from different weights: rank 0's broadcast must replace them.
    let mut replica = Model::new(&b, spec.clone(), Init::He, 10 + rank as u64, 1).unwrap();
    let config = sgd_config(32, 1, Some(20));
    let history = train_replicated(
        &b,
        &mut replica,
        &set,
        Some(&set),
        &config,
        Start::default(),
        replicas.clone(),
        |_, _| {},
    )
    .unwrap();
    let mut alone = Model::new(&b, spec, Init::He, 10, 1).unwrap();
    let global = sgd_config(32 * size, 1, Some(20));
    let solo = train_from(
        &b,
        &mut alone,
        &set,
        Some(&set),
        &global,
        Start::default(),
        |_, _| {},
    )
    .unwrap();
    let (got, want) = (parameters(&b, &replica), parameters(&b, &alone));
    // The two runs sum the same per-sample gradients in another order (32 rows and then the ranks,
    // against 32·N rows), which moves each step by a few f32 roundings; after 20 steps of momentum SGD
    // the largest difference measured here was 1.8e-7 (2 ranks) and 1.5e-7 (3). 1e-5 leaves fifty
    // times that, and is far below what the steps move the weights (over 1e-2, checked below).
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("rank {rank} of {size}: largest difference from one process {worst:e}");
    assert!(
        worst <= 1e-5,
        "rank {rank}: parameters differ from one process's by {worst}"
    );
    let moved = got
        .iter()
        .zip(parameters(
            &b,
            &Model::new(&b, replica.spec.clone(), Init::He, 10, 1).unwrap(),
        ))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-2,
        "rank {rank}: 20 steps moved the weights by only {moved}"
    );
    // The figures the ranks report are those of the global batches.
    let (a, b) = (&history[0], &solo[0]);
    assert!(
        (a.train_loss - b.train_loss).abs() <= 1e-5 && a.train_accuracy == b.train_accuracy,
        "rank {rank}: reported {a:?}, one process {b:?}"
    );
}

#[test]
fn gradients_and_running_statistics_average_to_the_mean_over_ranks() {
    run_ranks(3, "rank_averages");
}

#[test]
#[ignore = "one rank's half of gradients_and_running_statistics_average_to_the_mean_over_ranks"]
fn rank_averages() {
    let replicas = join();
    let (rank, size) = (replicas.rank(), replicas.size());
    let b = CpuBackend::new();
    let spec = ModelSpec::parse("input 5, dense 7, batch_norm, relu, dense 3").unwrap();
    let mut model = Model::new(&b, spec, Init::He, 1, 1).unwrap();
    // Each rank's gradients and statistics are its own seeded values; every rank can compute the mean.
    let own = |rank: usize, k: usize, n: usize| values(1000 * rank as u64 + k as u64, n);
    let sizes: Vec<usize> = model
        .params()
        .map(|p| p.grad.rows() * p.grad.cols())
        .collect();
    for (k, p) in model.params_mut().enumerate() {
        b.write(&mut p.grad, &own(rank, k, sizes[k])).unwrap();
    }
    assert_eq!(model.running_statistics().count(), 1, "batch norm's");
    for t in model.running_statistics_mut() {
        let n = t.rows() * t.cols();
        b.write(t, &own(rank, 99, n)).unwrap();
    }
    pollster::block_on(replicas.average_gradients(&b, &mut model)).unwrap();
    pollster::block_on(replicas.average_running_statistics(&b, &mut model)).unwrap();
    let mean = |k: usize, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (0..size).map(|r| own(r, k, n)[i]).sum::<f32>() / size as f32)
            .collect()
    };
    // The same sums in another order: within a few roundings of values of at most 1.
    for (k, p) in model.params().enumerate() {
        let got = b.read(&p.grad).unwrap();
        common::assert_close("averaged gradient", &got, &mean(k, sizes[k]), 1e-6, 0.0);
    }
    for t in model.running_statistics() {
        let got = b.read(t).unwrap();
        let want = mean(99, t.rows() * t.cols());
        common::assert_close("averaged running statistics", &got, &want, 1e-6, 0.0);
    }
    let (_, bytes, steps) = replicas.gradient_traffic();
    assert_eq!((bytes, steps), (4 * sizes.iter().sum::<usize>() as u64, 1));
}

#[test]
fn replicas_hold_the_same_parameters_after_every_epoch() {
    run_ranks(2, "rank_stays_identical");
}

#[test]
#[ignore = "one rank's half of replicas_hold_the_same_parameters_after_every_epoch"]
fn rank_stays_identical() {
    let replicas = Rc::new(join());
    let rank = replicas.rank();
    let b = CpuBackend::new();
    let set = upload(&b, teacher_set());
    // Batch norm gathers running statistics from each rank's own samples, and dropout draws its own
    // masks on each rank: the two places where replicas could part.
    let spec =
        ModelSpec::parse("input 12, dense 24, batch_norm, relu, dropout 0.3, dense 4").unwrap();
    let mut model = Model::new(&b, spec, Init::He, 7, 2).unwrap();
    let mut config = sgd_config(32, 3, None);
    config.optimizer = Optimizer::adam(1e-2);
    let mut mismatches = Vec::new();
    let mut epochs = 0;
    train_replicated(
        &b,
        &mut model,
        &set,
        Some(&set),
        &config,
        Start::default(),
        replicas.clone(),
        |event, model| {
            let Event::Epoch(stats) = event else { return };
            epochs += 1;
            let mut state: Vec<f32> = parameters(&b, model);
            let mut model_state = Vec::new();
            for p in model.params() {
                for s in p.state() {
                    model_state.extend(b.read(s).unwrap());
                }
            }
            state.extend(model_state);
            let running = model
                .running_statistics()
                .map(|t| b.read(t).unwrap())
                .collect::<Vec<_>>()
                .concat();
            state.extend(&running);
            let mut leader = state.clone();
            replicas.comm().broadcast(&mut leader).unwrap();
            if leader
                .iter()
                .zip(&state)
                .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                mismatches.push(stats.epoch);
            }
            assert!(running.iter().all(|v| v.is_finite()));
        },
    )
    .unwrap();
    assert_eq!(epochs, 3);
    assert!(
        mismatches.is_empty(),
        "rank {rank}: parameters, optimizer state or running statistics differ from rank 0's \
         after epochs {mismatches:?}"
    );
}

#[test]
fn replicas_resume_where_they_stopped_with_the_same_number_of_ranks() {
    run_ranks(2, "rank_resumes");
}

#[test]
#[ignore = "one rank's half of replicas_resume_where_they_stopped_with_the_same_number_of_ranks"]
fn rank_resumes() {
    let replicas = Rc::new(join());
    let ranks = replicas.size();
    let b = CpuBackend::new();
    let set = upload(&b, teacher_set());
    let spec = ModelSpec::parse("input 12, dense 24, relu, dropout 0.2, dense 4").unwrap();
    let mut config = sgd_config(32, 3, None);
    config.optimizer = Optimizer::adam(1e-2);
    config.schedule = LrSchedule::parse("cosine", 10).unwrap();
    let run = |model: &mut Model<CpuBackend>, config: &TrainConfig, start: Start| {
        train_replicated(
            &b,
            model,
            &set,
            None,
            config,
            start,
            replicas.clone(),
            |_, _| {},
        )
        .unwrap()
    };
    let mut whole = Model::new(&b, spec.clone(), Init::He, 4, 2).unwrap();
    run(&mut whole, &config, Start::default());
    // Two epochs, then the third from where they stopped, as `--resume` starts it (the model and its
    // optimizer state carry over; the CLI's checkpoint round trip is tested in tests/resume.rs).
    let mut split = Model::new(&b, spec, Init::He, 4, 2).unwrap();
    let mut trainer = Trainer::replicated(
        &b,
        &split,
        &set,
        &config,
        Start::default(),
        replicas.clone(),
    )
    .unwrap();
    pollster::block_on(replicas.broadcast_model(&b, &mut split)).unwrap();
    let mut history = Vec::new();
    while history.len() < 2 {
        for event in pollster::block_on(trainer.advance(&b, &mut split, &set, None)).unwrap() {
            if let Event::Epoch(stats) = event {
                history.push(stats);
            }
        }
    }
    drop(trainer);
    let start = Start {
        epochs_done: 2,
        steps_done: steps_after(2, set.len / ranks, &config) as u64,
        history,
    };
    let history = run(&mut split, &config, start);
    assert_eq!(history.len(), 3);
    let (a, b) = (parameters(&b, &whole), parameters(&b, &split));
    let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
    assert!(
        same,
        "rank {}: the resumed run ends elsewhere",
        replicas.rank()
    );
}

/// A CSV table of the teacher's samples (`f0..f11,label`) in a fresh directory.
fn teacher_csv(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("nabla-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let set = teacher_set();
    let Features::Floats(x) = &set.features else {
        unreachable!()
    };
    let Targets::Classes { labels, .. } = &set.targets else {
        unreachable!()
    };
    let mut text: String = (0..12).map(|f| format!("f{f},")).collect::<String>() + "label\n";
    for (row, label) in x.chunks(12).zip(labels) {
        for v in row {
            text += &format!("{v},");
        }
        text += &format!("{label}\n");
    }
    let csv = dir.join("teacher.csv");
    std::fs::write(&csv, text).unwrap();
    (dir, csv)
}

/// `nabla train` on the teacher's table, writing into `dir`.
fn train_args(dir: &Path, csv: &Path, extra: &str) -> String {
    format!(
        "{} train --device cpu --data {} --target label --out {} --metrics {} {extra}",
        env!("CARGO_BIN_EXE_nabla"),
        csv.display(),
        dir.join("model.safetensors").display(),
        dir.join("metrics.csv").display()
    )
}

#[test]
fn two_ranks_train_from_the_command_line_and_only_rank_0_writes() {
    let (dir, csv) = teacher_csv("cli");
    // The same command line on both ranks, each in a directory of its own: whatever rank 1 wrote
    // would land in r1/.
    for r in ["r0", "r1"] {
        std::fs::create_dir_all(dir.join(r)).unwrap();
    }
    let script = format!(
        "cd {}/r$OMPI_COMM_WORLD_RANK && exec {} train --device cpu --data {} --target label \
         --out model.safetensors --metrics metrics.csv --plot curves.png --epochs 3 --batch 16",
        dir.display(),
        env!("CARGO_BIN_EXE_nabla"),
        csv.display()
    );
    let job = run_job(2, ["sh", "-c", &script]);
    let text = job.transcript();
    assert!(job.success(), "{text}");
    // Rank 0 alone reports: one summary, one line per epoch, and the all-reduce's share; rank 1 only
    // names its device.
    let (first, second) = (&job.ranks[0], &job.ranks[1]);
    assert_eq!(first.matches("test accuracy").count(), 1, "{text}");
    assert_eq!(first.matches("epoch   2:").count(), 1, "{text}");
    assert!(
        first.contains("2 processes, each taking --batch 16 of every step: a global batch of 32"),
        "{text}"
    );
    assert!(
        first.contains("gradients averaged over 2 processes"),
        "{text}"
    );
    assert!(second.starts_with("rank 1 of 2: device CPU"), "{text}");
    assert_eq!(second.lines().count(), 1, "{text}");
    let metrics = std::fs::read_to_string(dir.join("r0/metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "a header and 3 epochs:\n{metrics}"
    );
    assert!(dir.join("r0/model.safetensors").exists() && dir.join("r0/curves.png").exists());
    let written: Vec<_> = std::fs::read_dir(dir.join("r1")).unwrap().collect();
    assert!(written.is_empty(), "rank 1 wrote {written:?}");
    // The training state records the number of processes: a single process may not resume it.
    let resume = dir.join("r0/model.resume.safetensors");
    let alone = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .arg("train")
        .arg("--resume")
        .arg(&resume)
        .output()
        .unwrap();
    let refusal = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success());
    assert!(
        refusal.contains("the run was started with 2 processes; resume it with the same number"),
        "{refusal}"
    );
    // Two processes may: every rank loads the training state, and the run (already complete) ends
    // with its test figures, rank 1 still writing nothing.
    let script = format!(
        "cd {}/r$OMPI_COMM_WORLD_RANK && exec {} train --resume {}",
        dir.display(),
        env!("CARGO_BIN_EXE_nabla"),
        resume.display()
    );
    let job = run_job(2, ["sh", "-c", &script]);
    let text = job.transcript();
    assert!(job.success(), "{text}");
    assert!(job.ranks[0].contains("resuming after epoch 3"), "{text}");
    assert_eq!(std::fs::read_dir(dir.join("r1")).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_ranks_train_on_the_gpu_backend_in_step() {
    // Both ranks on this machine's adapter (lavapipe in CI): the run ends only if every rank's
    // parameters hold rank 0's bits after each epoch (the trainer checks), so the GPU path's
    // readback, all-reduce and write-back keep the replicas in step as the CPU's do.
    common::with_gpu(|_| {
        let (dir, csv) = teacher_csv("gpu");
        let args =
            train_args(&dir, &csv, "--epochs 2 --batch 16").replace("--device cpu", "--device gpu");
        let job = run_job(2, args.split(' '));
        let text = job.transcript();
        assert!(job.success(), "{text}");
        for (rank, said) in job.ranks.iter().enumerate() {
            let opened = format!("rank {rank} of 2: device ");
            let line = said.lines().find(|l| l.starts_with(&opened));
            let line = line.unwrap_or_else(|| panic!("rank {rank} names its device:\n{text}"));
            assert!(
                !line.starts_with(&format!("{opened}CPU")),
                "a GPU adapter:\n{text}"
            );
        }
        assert!(
            job.ranks[0].contains("gradients averaged over 2 processes"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    });
}

/// The job failed, a rank said `refused` (every rank fails the check, but the first to abort may end
/// the other before it prints), and no model was written to `model`.
fn assert_refused(job: &Job, refused: &str, model: &Path) {
    let text = job.transcript();
    assert!(!job.success(), "{text}");
    assert!(
        job.ranks.iter().any(|said| said.contains(refused)),
        "{text}"
    );
    assert!(!model.exists(), "nothing is written");
}

#[test]
fn options_that_differ_between_ranks_are_refused_by_every_rank() {
    let (dir, csv) = teacher_csv("options");
    let args = train_args(&dir, &csv, "--epochs");
    let script = format!("exec {args} $((OMPI_COMM_WORLD_RANK + 1))");
    let job = run_job(2, ["sh", "-c", &script]);
    let refused = "1 of the 2 ranks were given options different from rank 0's";
    assert_refused(&job, refused, &dir.join("model.safetensors"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn data_that_differs_between_ranks_is_refused_by_every_rank() {
    let (dir, csv) = teacher_csv("data");
    // The same relative path on both ranks, as on two machines, with one value changed in rank 1's.
    let text = std::fs::read_to_string(&csv).unwrap();
    let row = text.find('\n').unwrap() + 1;
    let changed = format!("{}9{}", &text[..row], &text[row..]);
    for (r, contents) in [("r0", &text), ("r1", &changed)] {
        std::fs::create_dir_all(dir.join(r)).unwrap();
        std::fs::write(dir.join(r).join("data.csv"), contents).unwrap();
    }
    let script = format!(
        "cd {}/r$OMPI_COMM_WORLD_RANK && exec {} train --device cpu --data data.csv --target label \
         --out model.safetensors --metrics metrics.csv --epochs 1",
        dir.display(),
        env!("CARGO_BIN_EXE_nabla")
    );
    let job = run_job(2, ["sh", "-c", &script]);
    let refused = "1 of the 2 ranks were given data (sizes or contents of --data) different";
    assert_refused(&job, refused, &dir.join("r0/model.safetensors"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_killed_rank_ends_the_run_with_an_error() {
    let (dir, csv) = teacher_csv("kill");
    let args = train_args(&dir, &csv, "--epochs 100000 --batch 16");
    // Each rank writes its process id, then becomes nabla (same id).
    let script = format!(
        "echo $$ > {}/pid.$OMPI_COMM_WORLD_RANK; exec {args}",
        dir.display()
    );
    let _job = one_job();
    let mut run = mpirun(2)
        .args(["sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once rank 0 has finished an epoch (its metrics file exists), both ranks are training.
    let started = Instant::now();
    while !dir.join("metrics.csv").exists() {
        if run.try_wait().unwrap().is_some() {
            let out = run.wait_with_output().unwrap();
            panic!(
                "the run ended before its first epoch:\n{}",
                transcript(&out)
            );
        }
        assert!(
            started.elapsed() < LIMIT,
            "the run never finished its first epoch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = |rank: usize| -> String {
        std::fs::read_to_string(dir.join(format!("pid.{rank}")))
            .unwrap()
            .trim()
            .to_string()
    };
    let killed = Command::new("kill").args(["-9", &pid(1)]).status().unwrap();
    assert!(killed.success());
    let killed_at = Instant::now();
    let out = run.wait_with_output().unwrap();
    let waited = killed_at.elapsed();
    let text = transcript(&out);
    assert!(
        !out.status.success(),
        "the run reports the failure:\n{text}"
    );
    assert!(
        waited < Duration::from_secs(60),
        "the other rank stopped {waited:?} after the kill"
    );
    assert!(
        text.contains("exited on signal 9"),
        "mpirun names the cause:\n{text}"
    );
    // Rank 0 is gone too: no process of that id, or only its zombie (state Z) awaiting its parent.
    assert!(
        Path::new("/proc/self/stat").exists(),
        "this test reads /proc"
    );
    let rank0 = PathBuf::from("/proc").join(pid(0)).join("stat");
    let alive = || {
        std::fs::read_to_string(&rank0).is_ok_and(|stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|state| !state.starts_with('Z'))
        })
    };
    let gone = Instant::now();
    while alive() && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "rank 0 outlived the run");
    let _ = std::fs::remove_dir_all(dir);
}
