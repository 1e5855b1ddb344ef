//! Folders of PNG images (placeholder: being written).

use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// Reads a set from class folders.
pub fn load(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    Err(Error::Data {
        path: dir.to_path_buf(),
        reason: "not yet".into(),
    })
}
