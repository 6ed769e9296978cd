//! The crate's single error type with stable, machine-readable codes.

use std::path::Path;

/// Every failure the engine reports. Its `colbert_core::CodedError::code` gives a stable string for bindings.
#[derive(Debug, thiserror::Error)]
pub enum PlaidError {
    /// `open` on a directory without an index.
    #[error("no index found at {0}")]
    NotFound(String),
    /// `create` without `overwrite` on a directory that is not empty.
    #[error("{0} is not empty (pass overwrite to replace it)")]
    Exists(String),
    /// The index was written by an incompatible version of the format.
    #[error(
        "index format version {found} is not supported: this build reads versions {oldest} to {newest}. An index written by a newer release opens with that release; rebuild an older one from its documents"
    )]
    FormatUnsupported {
        found: u64,
        oldest: u32,
        newest: u32,
    },
    /// A checksum or structural check failed.
    #[error("index is corrupt: {0}")]
    Corrupt(String),
    /// Another writer (in this or another process) holds the index lock.
    #[error("the index is locked by another writer: {0}")]
    Locked(String),
    /// A caller-supplied value is unusable (wrong dim, non-finite value, duplicate id, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation was cancelled; nothing changed on disk.
    #[error("operation aborted")]
    Aborted,
    /// The index was closed.
    #[error("the index is closed")]
    Closed,
    /// Any other I/O failure.
    #[error("I/O error: {0}")]
    Io(String),
    /// A broken invariant inside the engine.
    #[error("internal error: {0}")]
    Internal(String),
}

impl colbert_core::CodedError for PlaidError {
    /// Stable code for bindings: `INDEX_NOT_FOUND`, `INDEX_EXISTS`, `INDEX_FORMAT_UNSUPPORTED`,
    /// `INDEX_CORRUPT`, `INDEX_LOCKED`, `INVALID_ARGUMENT`, `ABORTED`, `CLOSED`, `IO`, `INTERNAL`.
    fn code(&self) -> &'static str {
        match self {
            PlaidError::NotFound(_) => "INDEX_NOT_FOUND",
            PlaidError::Exists(_) => "INDEX_EXISTS",
            PlaidError::FormatUnsupported { .. } => "INDEX_FORMAT_UNSUPPORTED",
            PlaidError::Corrupt(_) => "INDEX_CORRUPT",
            PlaidError::Locked(_) => "INDEX_LOCKED",
            PlaidError::InvalidArgument(_) => "INVALID_ARGUMENT",
            PlaidError::Aborted => "ABORTED",
            PlaidError::Closed => "CLOSED",
            PlaidError::Io(_) => "IO",
            PlaidError::Internal(_) => "INTERNAL",
        }
    }
}

impl PlaidError {
    /// A file or manifest of format `found`, outside what this build reads.
    pub(crate) fn format_unsupported(found: u64) -> Self {
        PlaidError::FormatUnsupported {
            found,
            oldest: crate::format::OLDEST_SUPPORTED_FORMAT,
            newest: crate::format::FORMAT_VERSION,
        }
    }

    pub(crate) fn io(context: &str, path: &Path, e: std::io::Error) -> Self {
        PlaidError::Io(format!("{context} {}: {e}", path.display()))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        PlaidError::InvalidArgument(msg.into())
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        PlaidError::Corrupt(msg.into())
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, PlaidError>;
