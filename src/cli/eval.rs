//! `nabla eval`: the test accuracy of a saved model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use nabla::Backend;
use nabla::checkpoint;
use nabla::train::{DeviceSplit, evaluate};

use super::{Common, input_scale, load_mnist};

/// `nabla eval`'s options.
#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    /// The model to evaluate.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// Evaluate on pixels kept as 0–255: for models saved by nabla before checkpoints recorded their
    /// input scaling (newer ones say how they were trained, and that is used).
    #[arg(long)]
    no_normalise: bool,
}

/// Loads the model and prints its accuracy on the test set.
pub fn run<B: Backend>(b: &B, args: &EvalArgs) -> Result<()> {
    let saved = checkpoint::load(b, &args.model, 0)?;
    nabla::mnist::check_model(&saved.model.spec)
        .with_context(|| args.model.display().to_string())?;
    let input = input_scale(&saved, args.no_normalise);
    let model = saved.model;
    let mnist = load_mnist(&args.common.data)?;
    let test = DeviceSplit::upload(b, &mnist.test, input)?;
    let accuracy = evaluate(b, &model, &test, 1000)?;
    println!(
        "{}: test accuracy {:.2}% on {} images",
        model.spec.describe(),
        accuracy * 100.0,
        test.len
    );
    Ok(())
}
