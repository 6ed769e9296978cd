//! What every engine error offers its callers: a stable code (`INDEX_LOCKED`, `ABORTED`, …)
//! besides its message. The bindings turn any [`CodedError`] into a JavaScript error in one place.

/// An error with a stable, documented code.
pub trait CodedError: std::error::Error {
    /// The code, one of the list in ARCHITECTURE.md (and `ERROR_CODES` in `src/errors.ts`).
    fn code(&self) -> &'static str;
}

impl CodedError for crate::EmbeddingsError {
    fn code(&self) -> &'static str {
        "INVALID_ARGUMENT"
    }
}
