//! Errors of the encoder, each with a stable machine-readable code.

use std::path::Path;

/// Everything that can go wrong between a model folder and token embeddings.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A folder or file the model needs does not exist.
    #[error("{0}")]
    ModelNotFound(String),
    /// A model file exists but is malformed (bad JSON, missing keys, an ONNX graph without the
    /// expected inputs/outputs, ...).
    #[error("{0}")]
    ModelInvalid(String),
    /// The ONNX Runtime library could not be loaded or is not usable.
    #[error("{0}")]
    OrtLoad(String),
    /// The caller passed something unusable.
    #[error("{0}")]
    InvalidArgument(String),
    /// The tokenizer failed on a text.
    #[error("{0}")]
    Tokenize(String),
    /// ONNX Runtime failed while running the model.
    #[error("{0}")]
    Inference(String),
    /// The operation was cancelled.
    #[error("the operation was aborted")]
    Aborted,
    /// A bug: an invariant did not hold. Reported instead of crashing the process.
    #[error("internal error: {0}")]
    Internal(String),
}

impl colbert_core::CodedError for EncodeError {
    /// The stable code that reaches JavaScript as `error.code`.
    fn code(&self) -> &'static str {
        match self {
            Self::ModelNotFound(_) => "MODEL_NOT_FOUND",
            Self::ModelInvalid(_) => "MODEL_INVALID",
            Self::OrtLoad(_) => "ORT_LOAD_FAILED",
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::Tokenize(_) => "TOKENIZE_FAILED",
            Self::Inference(_) => "INFERENCE_FAILED",
            Self::Aborted => "ABORTED",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl EncodeError {
    pub(crate) fn invalid_file(path: &Path, what: impl std::fmt::Display) -> Self {
        Self::ModelInvalid(format!("{}: {what}", path.display()))
    }
}

pub type Result<T, E = EncodeError> = std::result::Result<T, E>;
