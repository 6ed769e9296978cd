//! The core every engine shares.
//!
//! - [`embeddings`]: token-embedding batches ([`Embeddings`], [`EmbeddingsView`]), the one data
//!   shape from the encoder through the TypeScript API to the index;
//! - [`kernels`]: the dot kernels (SGEMM and the tiled reference), and [`maxsim()`]: exact MaxSim on them;
//! - [`panel`]: row scoring against one prepared query ([`QueryPanel`]), no per-call packing;
//! - [`pool`]: token pooling, PyLate's hierarchical (Ward) clustering of a document's tokens;
//! - [`schedule`]: the process's threads: one budget of permits for bulk work, a search pool and
//!   a write pool sized to it;
//! - [`cancel`]: the cancellation token every long call takes;
//! - [`progress`]: the progress event every long call reports;
//! - [`error`]: the coded-error trait every engine's error implements.

pub mod cancel;
pub mod embeddings;
pub mod error;
pub mod kernels;
pub mod maxsim;
pub mod panel;
pub mod pool;
pub mod progress;
pub mod schedule;

pub use cancel::CancelToken;
pub use embeddings::{validate, Embeddings, EmbeddingsError, EmbeddingsView};
pub use error::CodedError;
pub use kernels::{dot, normalize_rows};
pub use maxsim::{maxsim, maxsim_pair, maxsim_zero_padded};
pub use panel::{QueryPanel, RowAffine};
pub use pool::{pool, PoolError, PoolOptions, MAX_POOL_ROWS};
pub use progress::{OnProgress, Progress, Stage};
