//! `nabla eval`: a saved model's figures on a test set (accuracy and confusion matrix, or RMSE, MAE
//! and R²).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use nabla::Backend;
use nabla::checkpoint;
use nabla::data::Schema;
use nabla::data::metrics::Metrics;
use nabla::train::{DeviceSplit, outputs};

use super::{Common, DataArgs, load_data, saved_prep};

/// `nabla eval`'s options.
#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    data: DataArgs,
    /// The model to evaluate.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// Evaluate on pixels kept as 0–255: for models saved by nabla before checkpoints recorded their
    /// input scaling (newer ones say how they were trained, and that is used).
    #[arg(long)]
    no_normalise: bool,
    /// The seed of the random test split, where the data has none of its own (as in training).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Loads the model and prints its figures on the test set.
pub fn run<B: Backend>(b: &B, args: &EvalArgs) -> Result<()> {
    let saved = checkpoint::load(b, &args.model, 0)?;
    let prep = saved_prep(&saved, args.no_normalise);
    let model = saved.model;
    let mut data = args.data.clone();
    data.task = Some(prep.task);
    // A table is read by the model's columns, whatever the file's order.
    let columns = match &prep.schema {
        Schema::Table(columns) => Some(columns.clone()),
        _ => None,
    };
    let test = load_data(&args.common, &data, args.seed, columns)?.test;
    prep.check(&test)
        .with_context(|| format!("{} on {}", args.model.display(), args.common.data.display()))?;
    let device = DeviceSplit::from_dataset(b, test.clone(), &prep)?;
    let metrics = Metrics::of_outputs(&prep, &outputs(b, &model, &device, 1000)?, &test.targets)?;
    println!(
        "{}: test {} on {} samples",
        model.spec.describe(),
        metrics.summary(),
        device.len
    );
    if let Some(table) = metrics.confusion_table().filter(|_| prep.names.len() <= 20) {
        println!("confusion matrix:\n{table}");
    }
    Ok(())
}
