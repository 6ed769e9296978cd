//! Exact MaxSim over `Embeddings` passed as typed arrays: synchronous (small inputs, e.g.
//! reranking) and as a task on the shared scheduler (whole corpora, e.g. evaluation). Both run
//! `colbert_core::maxsim` (blocked SGEMM), which checks its inputs.

use colbert_core::{
    maxsim as plain, maxsim_zero_padded, schedule, EmbeddingsError, EmbeddingsView,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::tasks;

/// Scores checked batches (`EmbeddingsView::new` validates each once).
fn score(
    (q_dim, q_offsets, q_data): (u32, &[u32], &[f32]),
    (d_dim, d_offsets, d_data): (u32, &[u32], &[f32]),
    zero_padded: Option<bool>,
) -> std::result::Result<Vec<f32>, EmbeddingsError> {
    let q = EmbeddingsView::new(q_dim as usize, q_offsets, q_data)?;
    let d = EmbeddingsView::new(d_dim as usize, d_offsets, d_data)?;
    if zero_padded.unwrap_or(false) {
        maxsim_zero_padded(q, d)
    } else {
        plain(q, d)
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
    let scores = score(
        (query_dim, query_offsets, query_data),
        (document_dim, document_offsets, document_data),
        zero_padded,
    )
    .or_throw()?;
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
    // Copy before leaving the JavaScript thread: the caller may reuse its arrays.
    let (qo, qd) = (query_offsets.to_vec(), query_data.to_vec());
    let (dof, dd) = (document_offsets.to_vec(), document_data.to_vec());
    tasks::spawn(
        env,
        schedule::budget(),
        move || {
            Ok(score(
                (query_dim, &qo, &qd),
                (document_dim, &dof, &dd),
                zero_padded,
            )?)
        },
        Float32Array::new,
    )
}
