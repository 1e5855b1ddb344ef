//! Resume: a training run killed with `kill -9` and continued with `nabla train --resume` ends bit for
//! bit where the uninterrupted run ends (CPU backend; dropout and batch norm included, so the masks,
//! running statistics, optimizer state, step count and shuffles must all carry over).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::real_mnist;
use nabla::checkpoint;
use safetensors::SafeTensors;

const RUN: [&str; 12] = [
    "train",
    "--device",
    "cpu",
    "--train-images",
    "20000",
    "--epochs",
    "4",
    "--batch-norm",
    "--dropout",
    "0.1",
    "--seed",
    "5",
];

fn nabla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nabla"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(out: &Path) -> Command {
    let mut c = nabla();
    c.args(RUN)
        .arg("--out")
        .arg(out.join("model.safetensors"))
        .arg("--metrics")
        .arg(out.join("metrics.csv"));
    c
}

/// Every tensor of a checkpoint, by name, as bytes (metadata aside).
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_run_killed_and_resumed_ends_where_the_uninterrupted_run_ends() {
    real_mnist();
    let whole = dir("whole");
    let o = start(&whole).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let cut = dir("cut");
    let state = cut.join("model.resume.safetensors");
    let mut child = start(&cut).spawn().unwrap();
    let began = Instant::now();
    // Kill as soon as the first epoch's training state is on disk: mid-way through epoch 2.
    let done = loop {
        if let Ok(resume) = checkpoint::read_resume(&state) {
            child.kill().unwrap(); // SIGKILL
            break resume.start.epochs_done;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "no training state appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().unwrap();
    assert!(
        (1..4).contains(&done),
        "killed after epoch {done}: not an interruption"
    );

    let o = nabla()
        .arg("train")
        .arg("--resume")
        .arg(&state)
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{message}");
    assert!(
        message.contains(&format!("resuming after epoch {done}")),
        "{message}"
    );
    let (resumed, uninterrupted) = (
        tensors(&cut.join("model.safetensors")),
        tensors(&whole.join("model.safetensors")),
    );
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&resumed), names(&uninterrupted));
    let differing: Vec<&String> = resumed
        .iter()
        .zip(&uninterrupted)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| &a.0)
        .collect();
    assert!(
        differing.is_empty(),
        "the resumed run's tensors differ: {differing:?}"
    );
    let metrics = std::fs::read_to_string(cut.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5, "{metrics}");

    // Other options with --resume are refused: the run keeps its own.
    let o = nabla()
        .args(["train", "--resume"])
        .arg(&state)
        .args(["--epochs", "9"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("give no other option"));
    // A model file has no training state.
    let o = nabla()
        .args(["train", "--resume"])
        .arg(whole.join("model.safetensors"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no training state"));
    std::fs::remove_dir_all(whole).unwrap();
    std::fs::remove_dir_all(cut).unwrap();
}

/// Killed at many moments around epoch ends (a run on a small table saves both files after every one
/// of its many short epochs, so kills land before, during and after saves): whatever is on disk after
/// each kill loads, the model as a model and the training state as a run to resume, because each is
/// written whole to a temporary file and renamed into place.
#[test]
fn files_on_disk_load_whenever_a_run_is_killed() {
    let out = dir("kills");
    let wine = common::tables::wine();
    let mut loaded = 0;
    for kill in 0..12u64 {
        let mut child = nabla()
            .args(["train", "--device", "cpu", "--data"])
            .arg(&wine)
            .args([
                "--target",
                "quality",
                "--task",
                "regression",
                "--epochs",
                "100000",
                "--batch",
                "256",
                "--layers",
                "8",
                "--out",
            ])
            .arg(out.join("model.safetensors"))
            .arg("--metrics")
            .arg(out.join("metrics.csv"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Staggered: 150 ms and then 7 ms more each time, against epochs of a few milliseconds.
        std::thread::sleep(Duration::from_millis(150 + 7 * kill));
        child.kill().unwrap();
        child.wait().unwrap();
        let model = out.join("model.safetensors");
        let state = out.join("model.resume.safetensors");
        // The model is saved before the training state, so a kill between the two leaves the state
        // of the epoch before (or none yet, after the first epoch).
        let b = nabla::CpuBackend::new();
        if model.exists() {
            checkpoint::load(&b, &model, 0).expect("the model on disk loads");
            loaded += 1;
        }
        if state.exists() {
            checkpoint::load_resumable(&b, &state, 2).expect("the training state on disk loads");
        }
    }
    assert!(
        loaded >= 6,
        "only {loaded} of 12 kills came after a first save"
    );
    std::fs::remove_dir_all(out).unwrap();
}
