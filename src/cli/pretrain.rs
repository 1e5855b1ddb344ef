//! `nabla pretrain`: a deep belief network's greedy pre-training. A stack of RBMs is trained one layer
//! at a time on the data's images, without labels, and saved for `nabla train --init-from`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use nabla::Backend;
use nabla::data::{Prep, Scaling};
use nabla::plot;
use nabla::rbm::stack::{pretrain, read_stack};
use nabla::rbm::train::RbmConfig;
use nabla::rbm::{Rbm, file};
use nabla::train::DeviceSplit;

use super::{Common, DataArgs, load_data};

/// `nabla pretrain`'s options.
#[derive(Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    data: DataArgs,
    /// Hidden layer sizes of the stack, bottom first (the visible layer is the data's pixels).
    #[arg(long, value_delimiter = ',', default_value = "500,500,2000")]
    layers: Vec<usize>,
    /// Epochs per RBM.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Gibbs steps per update (CD-k).
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// Persistent chains (PCD-k) instead of CD-k.
    #[arg(long)]
    persistent: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f32,
    /// Weight cost (L2 on the weights).
    #[arg(long, default_value_t = 2e-4)]
    weight_cost: f32,
    /// Seed for the weights, the shuffles and the samples.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pre-train on only the first N training images.
    #[arg(long)]
    train_images: Option<usize>,
    /// Where to save the stack (safetensors: `rbm.{i}.weight` [hidden, visible], `rbm.{i}.visible_bias`,
    /// `rbm.{i}.hidden_bias`).
    #[arg(long, default_value = "runs/rbm.safetensors")]
    out: PathBuf,
    /// Also draw the first RBM's first 100 filters (its weights per hidden unit, as images) to this
    /// PNG.
    #[arg(long)]
    filters: Option<PathBuf>,
}

/// Pre-trains the stack, printing each epoch's reconstruction error and free energies, and saves it.
pub fn run<B: Backend>(b: &B, args: &PretrainArgs) -> Result<()> {
    let loaded = load_data(&args.common, &args.data, args.seed, None)?;
    let prep = Prep::fit(&loaded.train, loaded.task, true, loaded.schema)?;
    if !matches!(prep.scaling, Scaling::Bytes { .. }) {
        bail!(
            "RBMs here have Bernoulli visible units, which read values in [0, 1]: pre-train on images \
             (pixels scaled by 1/255), not on a table's standardised features"
        );
    }
    let train = match args.train_images {
        Some(0) => bail!("--train-images 0: pre-train on at least 1 image"),
        Some(n) => loaded.train.truncated(n),
        None => loaded.train,
    };
    let config = RbmConfig {
        epochs: args.epochs,
        batch: args.batch,
        k: args.k,
        persistent: args.persistent,
        lr: args.lr,
        weight_cost: args.weight_cost,
        seed: args.seed,
        ..RbmConfig::default()
    };
    config.validate()?;
    if args.layers.is_empty() || args.layers.contains(&0) {
        bail!("--layers: every RBM needs at least 1 hidden unit, e.g. --layers 500,500,2000");
    }
    let mut sizes = vec![prep.shape.len()];
    sizes.extend(&args.layers);
    let names: Vec<String> = sizes.iter().map(usize::to_string).collect();
    eprintln!(
        "pre-training RBMs {} on {} images ({}), {} epochs each",
        names.join("-"),
        train.len(),
        config.describe(),
        config.epochs
    );
    let train_set = DeviceSplit::from_dataset(b, train, &prep)?;
    let test_set = DeviceSplit::from_dataset(b, loaded.test, &prep)?;
    println!("layer,epoch,seconds,recon_train,recon_test,free_energy_train,free_energy_test,gap");
    let stack = pretrain(
        b,
        &sizes,
        &train_set,
        Some(&test_set),
        &config,
        |layer, e| {
            let test = e.held_out.expect("pre-training measures the test set");
            println!(
                "{layer},{},{:.2},{:.3},{:.3},{:.2},{:.2},{:.2}",
                e.epoch,
                e.seconds,
                e.train.reconstruction_error,
                test.reconstruction_error,
                e.train.free_energy,
                test.free_energy,
                e.free_energy_gap().unwrap_or(f64::NAN)
            );
        },
    )?;
    let values = read_stack(b, &stack)?;
    file::save(&values, &args.out)?;
    eprintln!("saved {}", args.out.display());
    if let Some(path) = &args.filters {
        draw_filters(&stack[0], b, prep.shape, path)?;
        eprintln!("filters drawn to {}", path.display());
    }
    Ok(())
}

/// The first 100 hidden units' weights of `rbm`, each as an image of the input's shape.
fn draw_filters<B: Backend>(
    rbm: &Rbm<B>,
    b: &B,
    shape: nabla::layers::Shape,
    path: &std::path::Path,
) -> Result<()> {
    let values = rbm.read(b)?;
    let tiles: Vec<Vec<f32>> = values
        .weight
        .chunks(values.visible)
        .take(100)
        .map(|w| w.to_vec())
        .collect();
    let tile = (shape.width, shape.height * shape.channels);
    plot::write_tiles(path, &[tiles], tile, 10, 2)?;
    Ok(())
}
