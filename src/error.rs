//! The library's error type: every failure says what was wrong and what to do about it.

use std::path::PathBuf;

/// Errors returned by nabla. Bad user input never panics; it comes back as one of these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two tensors (or a tensor and an operation) disagree about shape.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A data file is missing, truncated, corrupt or of the wrong kind.
    #[error("bad data in {path}: {reason}")]
    Data {
        /// The offending file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// No GPU adapter, a request over the device's limits, or a failed device operation.
    #[error("GPU device: {0}")]
    Device(String),
    /// A value that cannot be used (a label out of range, a non-finite loss, a bad hyper-parameter).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// Training diverged: the loss became NaN or infinite.
    #[error(
        "the training loss became {loss} in epoch {epoch} by step {step}: the weights diverged. Lower \
         the learning rate (or check the data); nothing was saved from this run"
    )]
    Diverged {
        /// The non-finite loss.
        loss: f32,
        /// The epoch it happened in.
        epoch: usize,
        /// Steps into that epoch.
        step: usize,
    },
    /// An operating-system I/O failure, with the path it concerned. The message carries the cause, so
    /// the cause is not also reported as this error's source (which would print it twice in a chain).
    #[error("I/O error on {path}: {cause}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
}

/// Shorthand for `std::result::Result<T, nabla::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds an [`Error::Shape`] from anything printable.
    pub fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }
}
