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

/// Decodes one PNG into channel-first bytes.
pub fn read_png(path: &Path) -> Result<(crate::layers::Shape, Vec<u8>)> {
    Err(Error::Data {
        path: path.to_path_buf(),
        reason: "not yet".into(),
    })
}
