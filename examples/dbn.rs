//! Lesson 22, part 2: a deep belief network. Three RBMs, 784-500, 500-500 and 500-2000, are trained one
//! after another without labels (each on the hidden probabilities of the one below), then start the
//! deep sigmoid network 784-500-500-2000-10, which backprop fine-tunes. The same network from random
//! (Xavier) weights trains beside it on the same schedule, and the lesson prints both test errors
//! epoch by epoch (Hinton, Osindero & Teh 2006 report 1.25% for the pre-trained network).
//!
//! `cargo run --release --example dbn [PRETRAIN_EPOCHS] [FINE_TUNE_EPOCHS] [LR] [DROPOUT]
//! [INPUT_DROPOUT]` (default 20, 60, 0.1, 0.2 and 0); on the CPU, about 25 minutes on two cores. The stack is saved to `runs/dbn-stack.safetensors`; with
//! `NABLA_DBN_STACK=FILE` it is read from FILE instead of pre-trained. `nabla pretrain` and `nabla
//! train --init-from` do the same from the command line.

#[allow(dead_code)]
mod support;

use std::path::Path;

use nabla::CpuBackend;
use nabla::curriculum::rbm::{self, FineTuning};
use nabla::data::Prep;
use nabla::rbm::file;
use nabla::rbm::stack::{pretrain, read_stack};
use nabla::rbm::train::RbmConfig;
use nabla::train::DeviceSplit;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pretrain_epochs = args.next().map_or(Ok(20), |e| e.parse())?;
    let how = FineTuning {
        epochs: args.next().map_or(Ok(60), |e| e.parse())?,
        lr: args.next().map_or(Ok(0.1), |e| e.parse())?,
        dropout: args.next().map_or(Ok(0.2), |e| e.parse())?,
        input_dropout: args.next().map_or(Ok(0.0), |e| e.parse())?,
    };
    let data = support::mnist()?;
    let b = CpuBackend::new();
    let hidden = [500, 500, 2000];
    let stack = match std::env::var_os("NABLA_DBN_STACK") {
        Some(path) => {
            println!("Pre-trained stack read from {}", Path::new(&path).display());
            file::load(Path::new(&path))?
        }
        None => {
            let prep = Prep::mnist(true);
            let train = DeviceSplit::upload(&b, &data.train, &prep)?;
            let test = DeviceSplit::upload(&b, &data.test, &prep)?;
            let config = RbmConfig {
                epochs: pretrain_epochs,
                ..RbmConfig::default()
            };
            println!("Pre-training 784-500-500-2000, {}:", config.describe());
            let started = std::time::Instant::now();
            let stack = pretrain(
                &b,
                &[784, 500, 500, 2000],
                &train,
                Some(&test),
                &config,
                |layer, e| {
                    if e.epoch == 1 || e.epoch == pretrain_epochs {
                        println!(
                            "  RBM {layer}, epoch {:>2}: reconstruction error {:.3}, free-energy gap {:.2} \
                         ({:.1} s)",
                            e.epoch,
                            e.train.reconstruction_error,
                            e.free_energy_gap().unwrap_or(f64::NAN),
                            e.seconds
                        );
                    }
                },
            )?;
            println!(
                "  pre-training took {:.0} s",
                started.elapsed().as_secs_f64()
            );
            let stack = read_stack(&b, &stack)?;
            file::save(&stack, Path::new("runs/dbn-stack.safetensors"))?;
            stack
        }
    };
    println!(
        "\nFine-tuning 784-500-500-2000-10 (sigmoid) by backprop: SGD, momentum 0.9, lr {} (cosine), \
         batch 100, dropout {} (input {}), {} epochs:",
        how.lr, how.dropout, how.input_dropout, how.epochs
    );
    let mut finals = Vec::new();
    for (name, start) in [("pre-trained", Some(&stack[..])), ("random init", None)] {
        let history = rbm::fine_tune(&b, &data, &hidden, start, how, |e| {
            println!(
                "  {name}, epoch {:>2}: train loss {:.4}, test error {:.2}% ({:.0} s)",
                e.epoch,
                e.train_loss,
                100.0 * (1.0 - e.test_accuracy.unwrap_or(f32::NAN)),
                e.seconds
            );
        })?;
        let last = history
            .last()
            .and_then(|e| e.test_accuracy)
            .unwrap_or(f32::NAN);
        finals.push((name, 100.0 * (1.0 - last)));
    }
    for (name, error) in finals {
        println!("{name}: test error {error:.2}%");
    }
    Ok(())
}
