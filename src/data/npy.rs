//! NumPy arrays (placeholder: being written).

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// True for `.npy` and `.npz` paths.
pub fn is_npy(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".npy") || name.ends_with(".npz")
}

/// Reads a set from NumPy arrays.
pub fn load(path: &Path, _targets: &[String]) -> Result<(Dataset, Option<Dataset>, bool)> {
    Err(Error::Data {
        path: path.to_path_buf(),
        reason: "not yet".into(),
    })
}
