//! PLAID multi-vector index: k-means residual quantisation, crash-safe immutable storage and
//! multithreaded late-interaction search. See `README.md` for the design, file format and
//! search stages.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod codec;
pub mod error;
mod filter;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod ids;
mod index;
pub mod kmeans;
mod manifest;
mod merge;
mod rng;
mod search;
mod segment;
mod snapshot;
pub mod standalone;
mod storage;
mod train;
mod writer;

pub use colbert_core::{Embeddings, EmbeddingsView};
pub use error::{PlaidError, Result};
pub use filter::Filter;
pub use format::{FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT};
pub use index::{DriftInfo, IndexInfo, PlaidIndex};
pub use manifest::IndexOptions;
pub use search::{Hit, SearchParams};
pub use segment::DocumentFields;
pub use storage::WriteTurn;
pub use train::MIN_OUTLIERS_FOR_EXPANSION;
pub use writer::{CommitInfo, Writer};
