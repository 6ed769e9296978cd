//! PyLate-compatible ColBERT encoding on ONNX Runtime.
//!
//! The pipeline, one module per stage:
//! 1. [`runtime`] loads the ONNX Runtime shared library (once per process);
//! 2. [`config`] reads a model folder: files, PyLate settings, tokenizer;
//! 3. [`text`] + [`tokenize`] turn a text into PyLate's token ids, masks and kept rows;
//! 4. [`session`] runs padded batches through the ONNX graph (Dense layers and L2 norm inside);
//! 5. [`encode`] batches, drops padding/skiplisted rows, normalises and restores input order,
//!    scheduled on the process-wide thread budget of `colbert_core::schedule`.
//!
//! [`file_lock`] holds the cross-process locks of the Hugging Face cache (shared with Python).

pub mod config;
pub mod encode;
pub mod error;
pub mod file_lock;
#[doc(hidden)]
pub mod fuzzing;
pub mod runtime;
pub mod session;
pub mod text;
pub mod tokenize;

pub use config::{ConfigOverrides, ModelConfig, Precision};
pub use encode::{EncodeRequest, Encoder, LoadOptions, ProgressFn};
pub use error::{EncodeError, Result};
pub use session::ExecutionProvider;
pub use tokenize::{Kind, Tokenized};
