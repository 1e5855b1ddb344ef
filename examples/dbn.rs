//! Lesson 22, part 2: a deep belief network. Three RBMs, 784-500, 500-500 and 500-2000, are trained one
//! after another without labels (each on the hidden probabilities of the one below), then start the
//! deep sigmoid network 784-500-500-2000-10, which backprop fine-tunes. The same network from random
//! (Xavier) weights trains beside it on the same schedule, and the lesson prints both test errors
//! epoch by epoch (Hinton, Osindero & Teh 2006 report 1.25% for the pre-trained network).
//!
//! `cargo run --release --example dbn [PRETRAIN_EPOCHS] [FINE_TUNE_EPOCHS]` (default 10 and 30); on the
//! CPU. `nabla pretrain` and `nabla train --init-from` do the same from the command line.

#[allow(dead_code)]
mod support;

use nabla::CpuBackend;
use nabla::curriculum::rbm;
use nabla::data::Prep;
use nabla::rbm::stack::{pretrain, read_stack};
use nabla::rbm::train::RbmConfig;
use nabla::train::DeviceSplit;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pretrain_epochs = args.next().map_or(Ok(10), |e| e.parse())?;
    let epochs = args.next().map_or(Ok(30), |e| e.parse())?;
    let data = support::mnist()?;
    let b = CpuBackend::new();
    let hidden = [500, 500, 2000];
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
                    "  RBM {layer}, epoch {:>2}: reconstruction error {:.3}, free-energy gap {:.2} ({:.1} s)",
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
    println!("\nFine-tuning 784-500-500-2000-10 (sigmoid) by backprop, {epochs} epochs:");
    println!("epoch  test error: pre-trained  random init");
    let mut errors = [Vec::new(), Vec::new()];
    for (k, start) in [Some(&stack[..]), None].into_iter().enumerate() {
        rbm::fine_tune(&b, &data, &hidden, start, epochs, 0.1, |e| {
            errors[k].push(100.0 * (1.0 - e.test_accuracy.unwrap_or(f32::NAN)));
        })?;
    }
    for (e, (pre, random)) in errors[0].iter().zip(&errors[1]).enumerate() {
        println!("{:>5}  {pre:>21.2}%  {random:>10.2}%", e + 1);
    }
    Ok(())
}
