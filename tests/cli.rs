//! The `nabla` command as a user runs it: inputs that cannot work are refused with a message that names
//! the flag, the valid range and the value given; a run that learnt nothing says so; no error repeats its
//! cause; and no driver noise reaches the user when XDG_RUNTIME_DIR is unset.

mod common;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::real_mnist;
use nabla::Backend;

/// Runs `nabla ARGS` from the project root on the CPU backend, writing into a scratch directory.
fn nabla(args: &[&str]) -> Output {
    real_mnist(); // fetched once, where the command looks for it
    // A directory per run: tests run in parallel and each run writes its model and metrics.
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!("nabla-cli-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .args(["--device", "cpu"])
        .arg("--out")
        .arg(out.join("model.safetensors"))
        .arg("--metrics")
        .arg(out.join("metrics.csv"))
        .output()
        .expect("nabla runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command failed and its message contains every one of `parts`.
#[track_caller]
fn refused(args: &[&str], parts: &[&str]) {
    let o = nabla(args);
    let message = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded: {message}");
    assert!(
        !message.contains("panicked"),
        "{args:?} panicked: {message}"
    );
    for part in parts {
        assert!(
            message.contains(part),
            "{args:?}: `{part}` not in: {message}"
        );
    }
}

#[test]
fn impossible_inputs_are_refused_with_the_flag_and_the_range() {
    refused(&["train", "--layers", "0"], &["dense 0", "at least 1 unit"]);
    refused(
        &["train", "--init-std=-5"],
        &["--init-std -5", "greater than 0"],
    );
    refused(
        &["train", "--lr", "nan"],
        &["learning rate (--lr) is NaN", "finite and > 0"],
    );
    refused(
        &["train", "--lr=-1"],
        &["learning rate (--lr) is -1", "finite and > 0"],
    );
    refused(
        &["train", "--train-images", "0"],
        &["--train-images 0", "at least 1 sample"],
    );
    refused(&["train", "--dropout", "1"], &["--dropout 1", "below 1"]);
    refused(
        &["train", "--batch", "60001"],
        &[
            "--batch",
            "batch size 60001",
            "between 1 and the training set's 60000",
        ],
    );
    refused(
        &["train", "--validation", "60000"],
        &["--validation 60000", "between 1 and 59999"],
    );
    refused(
        &["train", "--schedule", "step:0:0.5"],
        &["interval must be at least 1"],
    );
}

/// A model that cannot fit is refused before anything is allocated: a tensor over the most one may
/// hold, on the CPU against the memory the machine has, on the GPU against the device's buffer limit,
/// naming a width that fits.
#[test]
fn a_model_too_large_is_refused_with_its_size_and_a_width_that_fits() {
    refused(
        &["train", "--layers", "100000000"],
        &[
            "a 784×100000000 parameter of layer 0 (dense 100000000) holds more than 4294967295 values",
        ],
    );
    // Twelve pairs of layers of 4 000 000 and 1 000 units: each tensor fits, the whole does not.
    let widths = ["4000000,1000"; 12].join(",");
    refused(
        &["train", "--layers", &widths],
        &["needs 1599.8 GB", "available"],
    );
    common::with_gpu(|gpu| {
        let limit = gpu.max_tensor_bytes().unwrap();
        let units = limit / 4 / 784;
        let too_wide = (units + 1).to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["train", "--device", "gpu", "--layers", &too_wide])
            .output()
            .unwrap();
        let message = stderr(&o);
        assert!(!o.status.success(), "{message}");
        let fits = format!("hidden layers of at most {units} units fit");
        assert!(message.contains(&fits), "{message}");
        // A sequence whose gates (100 images × 784 steps × 4 blocks of units) overflow one buffer.
        let units = limit / 4 / (100 * 784 * 4) + 1;
        let arch = format!("input 784, lstm {units} steps 784, dense 10");
        let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "train", "--device", "gpu", "--batch", "100", "--arch", &arch,
            ])
            .output()
            .unwrap();
        let message = stderr(&o);
        assert!(!o.status.success(), "{message}");
        assert!(message.contains("over the device's limit"), "{message}");
        assert!(message.contains("shorter sequences"), "{message}");
    });
}

#[test]
fn a_flag_without_effect_is_named() {
    let o = nabla(&[
        "train",
        "--init",
        "he",
        "--init-std",
        "0.5",
        "--train-images",
        "200",
        "--epochs",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--init-std 0.5 has no effect with He"),
        "{}",
        stderr(&o)
    );
}

/// SGD at rate 10 kills the ReLU network without a NaN: it ends at chance and exits 0, so the run must
/// say that it learnt nothing; at rate 100 the loss overflows and the run stops with an error.
#[test]
fn a_run_that_learnt_nothing_says_so() {
    let short = [
        "--optimizer",
        "sgd",
        "--train-images",
        "2000",
        "--epochs",
        "2",
    ];
    let o = nabla(&[&["train", "--lr", "10"][..], &short].concat());
    let message = stderr(&o);
    assert!(o.status.success(), "{message}");
    assert!(
        message.contains("warning: the test accuracy") && message.contains("did not learn"),
        "{message}"
    );
    refused(
        &[&["train", "--lr", "100"][..], &short].concat(),
        &["diverged", "Lower the learning rate"],
    );
}

#[test]
fn an_io_error_names_its_cause_once() {
    let dir = std::env::temp_dir();
    let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["eval", "--device", "cpu", "--model"])
        .arg(&dir)
        .output()
        .unwrap();
    let message = stderr(&o);
    assert!(!o.status.success());
    let cause = message.rsplit(": ").next().unwrap().trim();
    assert_eq!(message.matches(cause).count(), 1, "{message}");
}

#[test]
fn no_driver_noise_without_xdg_runtime_dir() {
    let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .arg("info")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(!all.contains("XDG_RUNTIME_DIR"), "{all}");
}

/// The accuracy in a `… test accuracy XX.XX% …` line of stdout.
fn accuracy_printed(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let at = out.find("test accuracy ").expect("an accuracy line") + "test accuracy ".len();
    out[at..].split('%').next().unwrap().to_string()
}

/// Trains with `flags` into a fresh model file, then evaluates that file with `nabla eval`: the two
/// must report the same test accuracy (the checkpoint carries the architecture and the input scaling).
fn train_then_eval(name: &str, flags: &[&str]) {
    real_mnist();
    let dir = std::env::temp_dir().join(format!("nabla-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("model.safetensors");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nabla"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(["--device", "cpu", "--model"])
            .arg(&model)
            .output()
            .unwrap()
    };
    let trained = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "train",
            "--device",
            "cpu",
            "--train-images",
            "3000",
            "--epochs",
            "1",
        ])
        .args(flags)
        .arg("--out")
        .arg(&model)
        .arg("--metrics")
        .arg(dir.join("metrics.csv"))
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", stderr(&trained));
    let evaluated = run(&["eval"]);
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    assert_eq!(
        accuracy_printed(&evaluated),
        accuracy_printed(&trained),
        "{flags:?}: eval disagrees with training"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn eval_of_a_no_normalise_model_gives_the_accuracy_training_reported() {
    train_then_eval("raw", &["--no-normalise", "--lr", "1e-4"]);
}

#[test]
fn a_layer_list_trains_and_evaluates() {
    train_then_eval(
        "arch",
        &[
            "--arch",
            "dense 48, batch_norm, relu, dropout 0.1, dense 10",
        ],
    );
    refused(
        &["train", "--arch", "dense 32, relu, dense 9"],
        &["the samples are 1x28x28", "gives 9", "end with dense 10"],
    );
    // 784 values, but not MNIST's one 28×28 channel: the rows would be read as four 14×14 channels.
    refused(
        &[
            "train",
            "--arch",
            "input 4x14x14, conv 8x3x3, relu, dense 10",
        ],
        &["--arch", "the samples are 1x28x28", "takes 4x14x14"],
    );
    refused(
        &["train", "--arch", "dense 32, relu, pool 2, dense 10"],
        &["layer `pool 2`", "unknown layer"],
    );
    // Flags that shape an MLP are refused where a preset's layer list fixes the layers.
    refused(
        &["train", "--preset", "simple_cnn", "--dropout", "0.5"],
        &[
            "--dropout: for the MLP presets only",
            "the simple_cnn preset is a layer list",
        ],
    );
    refused(
        &["train", "--preset", "cnn", "--layers", "64", "--batch-norm"],
        &["--layers, --batch-norm: for the MLP presets only", "--arch"],
    );
}

/// `nabla pretrain` writes a stack of RBMs that `train --init-from` starts a network from; a network
/// whose first dense layer has other sizes is refused, naming both.
#[test]
fn pretrain_writes_a_stack_that_train_starts_from() {
    real_mnist();
    let dir = std::env::temp_dir().join(format!("nabla-pretrain-{}", std::process::id()));
    let stack = dir.join("rbm.safetensors");
    let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "pretrain", "--device", "cpu", "--layers", "64,32", "--epochs", "1",
        ])
        .args(["--train-images", "1000", "--out"])
        .arg(&stack)
        .output()
        .expect("nabla runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.starts_with("layer,epoch,seconds,recon_train"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");
    let values = nabla::rbm::file::load(&stack).unwrap();
    assert_eq!(nabla::rbm::stack::sizes(&values), [784, 64, 32]);
    let path = stack.to_str().unwrap();
    let o = nabla(&[
        "train",
        "--arch",
        "dense 64, sigmoid, dense 32, sigmoid, dense 10",
        "--init-from",
        path,
        "--epochs",
        "1",
        "--train-images",
        "1000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("the first 2 dense layers start from the RBMs"));
    refused(
        &[
            "train",
            "--arch",
            "dense 48, sigmoid, dense 10",
            "--init-from",
            path,
            "--epochs",
            "1",
            "--train-images",
            "100",
        ],
        &["--init-from", "784→48", "784→64"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
