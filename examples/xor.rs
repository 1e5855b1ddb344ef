//! Lesson 2, backprop: a 2-4-1 tanh network learns XOR by gradient descent, on the GPU and on the CPU.
//!
//! `cargo run --release --example xor`

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::perceptron::INPUTS;
use nabla::curriculum::xor::{XorConfig, train};

fn lesson<B: Backend>(b: &B, config: &XorConfig) -> anyhow::Result<()> {
    println!("\n== on {} ==", b.describe());
    let run = train(b, config)?;
    for (step, loss) in &run.losses {
        println!("  step {step:>5}: binary cross-entropy {loss:.5}");
    }
    println!("  x1 x2 | output  rounded");
    for ((x, y), r) in INPUTS.iter().zip(run.outputs).zip(run.truth_table()) {
        println!("   {}  {} | {y:.4}  {r}", x[0], x[1]);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let config = XorConfig::default();
    println!(
        "2-{}-1 network, {:?} hidden, sigmoid output with binary cross-entropy, full-batch gradient \
         descent lr {} for {} steps",
        config.hidden, config.activation, config.lr, config.steps
    );
    let (cpu, gpu) = support::backends();
    if let Some(gpu) = &gpu {
        lesson(gpu, &config)?;
    }
    lesson(&cpu, &config)?;
    Ok(())
}
