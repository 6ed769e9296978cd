//! Exact MaxSim over `Embeddings` passed as typed arrays: synchronous (small inputs, e.g.
//! reranking) and as a task on the shared scheduler (whole corpora, e.g. evaluation). Both check
//! their inputs once (`EmbeddingsView::new`) and run `colbert_core::maxsim` (blocked SGEMM).
//! [`OwnedEmbeddings`] is how every task takes embeddings off the JavaScript thread. Token
//! pooling (`poolEmbeddings`) is a task here too.

use colbert_core::{
    maxsim as plain, maxsim_zero_padded, pool, schedule, EmbeddingsError, EmbeddingsView,
    PoolOptions,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::model::{CancelToken, NativeEmbeddings};
use crate::tasks;

/// MaxSim of two checked batches, plain or zero-padded.
fn score(
    q: EmbeddingsView<'_>,
    d: EmbeddingsView<'_>,
    zero_padded: Option<bool>,
) -> std::result::Result<Vec<f32>, EmbeddingsError> {
    if zero_padded.unwrap_or(false) {
        maxsim_zero_padded(q, d)
    } else {
        plain(q, d)
    }
}

/// Embeddings copied out of JavaScript's typed arrays (the caller may reuse them); the engine
/// validates them where it uses them.
pub struct OwnedEmbeddings {
    dim: usize,
    offsets: Vec<u32>,
    data: Vec<f32>,
}

impl OwnedEmbeddings {
    pub fn copy(dim: u32, offsets: &Uint32Array, data: &Float32Array) -> Self {
        OwnedEmbeddings {
            dim: dim as usize,
            offsets: offsets.to_vec(),
            data: data.to_vec(),
        }
    }

    /// The copy as a checked batch (`INVALID_ARGUMENT` when malformed).
    pub fn checked(&self) -> std::result::Result<EmbeddingsView<'_>, EmbeddingsError> {
        EmbeddingsView::new(self.dim, &self.offsets, &self.data)
    }

    /// The copy as a batch, unchecked: the engine that takes it validates it.
    pub fn view(&self) -> EmbeddingsView<'_> {
        EmbeddingsView {
            dim: self.dim,
            offsets: &self.offsets,
            data: &self.data,
        }
    }
}

/// Exact MaxSim over real tokens: a row-major nQueries × nDocuments matrix. `zeroPadded`:
/// PyLate's padded-batch semantics (see `colbert_core::maxsim_zero_padded`).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // one JavaScript call's positional arguments
pub fn maxsim(
    query_dim: u32,
    query_offsets: &[u32],
    query_data: &[f32],
    document_dim: u32,
    document_offsets: &[u32],
    document_data: &[f32],
    zero_padded: Option<bool>,
) -> Result<Float32Array> {
    let q = EmbeddingsView::new(query_dim as usize, query_offsets, query_data).or_throw()?;
    let d =
        EmbeddingsView::new(document_dim as usize, document_offsets, document_data).or_throw()?;
    let scores = score(q, d, zero_padded).or_throw()?;
    Ok(Float32Array::new(scores))
}

/// [`maxsim`] off the JavaScript thread, holding the whole thread budget.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // one JavaScript call's positional arguments
pub fn maxsim_task<'env>(
    env: &'env Env,
    query_dim: u32,
    query_offsets: Uint32Array,
    query_data: Float32Array,
    document_dim: u32,
    document_offsets: Uint32Array,
    document_data: Float32Array,
    zero_padded: Option<bool>,
) -> Result<PromiseRaw<'env, Float32Array>> {
    // Copied before leaving the JavaScript thread (the caller may reuse its arrays), checked in
    // the task.
    let q = OwnedEmbeddings::copy(query_dim, &query_offsets, &query_data);
    let d = OwnedEmbeddings::copy(document_dim, &document_offsets, &document_data);
    tasks::spawn(
        env,
        schedule::budget(),
        move || Ok(score(q.checked()?, d.checked()?, zero_padded)?),
        Float32Array::new,
    )
}

/// Token pooling (PyLate's `pool_embeddings_hierarchical`, `colbert_core::pool`) off the
/// JavaScript thread: a bulk task holding the whole budget, documents pooled in parallel on the
/// write pool, cancellable between documents.
#[napi(catch_unwind)]
pub fn pool_embeddings<'env>(
    env: &'env Env,
    dim: u32,
    offsets: Uint32Array,
    data: Float32Array,
    pool_factor: u32,
    protected_tokens: u32,
    cancel: &CancelToken,
) -> Result<PromiseRaw<'env, NativeEmbeddings>> {
    let documents = OwnedEmbeddings::copy(dim, &offsets, &data);
    let token = cancel.inner.clone();
    let options = PoolOptions {
        pool_factor: pool_factor as usize,
        protected_tokens: protected_tokens as usize,
    };
    tasks::spawn(
        env,
        schedule::budget(),
        move || {
            let run = || pool(documents.view(), options, &token);
            Ok(match schedule::write_pool() {
                Some(threads) => threads.install(run),
                None => run(),
            }?)
        },
        NativeEmbeddings::from,
    )
}
