//! Exact MaxSim over `Embeddings` passed as typed arrays: synchronous (small inputs, e.g.
//! reranking) and as a task on the shared scheduler (whole corpora, e.g. evaluation).

use colbert_embeddings::{maxsim as plain, maxsim_zero_padded, EmbeddingsView};
use colbert_encode::schedule;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::embeddings_error;
use crate::tasks;

fn score(
    q: EmbeddingsView<'_>,
    d: EmbeddingsView<'_>,
    zero_padded: bool,
) -> std::result::Result<Vec<f32>, colbert_embeddings::EmbeddingsError> {
    if zero_padded {
        maxsim_zero_padded(q, d)
    } else {
        plain(q, d)
    }
}

/// Exact MaxSim over real tokens: a row-major nQueries × nDocuments matrix. `zeroPadded`:
/// PyLate's padded-batch semantics (see `colbert_embeddings::maxsim_zero_padded`).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn maxsim(
    query_dim: u32,
    query_offsets: &[u32],
    query_data: &[f32],
    document_dim: u32,
    document_offsets: &[u32],
    document_data: &[f32],
    zero_padded: Option<bool>,
) -> Result<Float32Array> {
    let q = EmbeddingsView::new(query_dim as usize, query_offsets, query_data)
        .map_err(embeddings_error)?;
    let d = EmbeddingsView::new(document_dim as usize, document_offsets, document_data)
        .map_err(embeddings_error)?;
    let scores = score(q, d, zero_padded.unwrap_or(false)).map_err(embeddings_error)?;
    Ok(Float32Array::new(scores))
}

/// [`maxsim`] off the JavaScript thread, holding the whole thread budget.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
#[allow(clippy::too_many_arguments)]
pub fn maxsim_task<'env>(
    env: &'env Env,
    query_dim: u32,
    query_offsets: Uint32Array,
    query_data: Float32Array,
    document_dim: u32,
    document_offsets: Uint32Array,
    document_data: Float32Array,
    zero_padded: Option<bool>,
) -> Result<Object<'env>> {
    // Copy before leaving the JavaScript thread: the caller may reuse its arrays.
    let (qo, qd) = (query_offsets.to_vec(), query_data.to_vec());
    let (dof, dd) = (document_offsets.to_vec(), document_data.to_vec());
    EmbeddingsView::new(query_dim as usize, &qo, &qd).map_err(embeddings_error)?;
    EmbeddingsView::new(document_dim as usize, &dof, &dd).map_err(embeddings_error)?;
    tasks::spawn(
        env,
        schedule::budget(),
        move || {
            // Validated above, on the JavaScript thread.
            let q = EmbeddingsView {
                dim: query_dim as usize,
                offsets: &qo,
                data: &qd,
            };
            let d = EmbeddingsView {
                dim: document_dim as usize,
                offsets: &dof,
                data: &dd,
            };
            score(q, d, zero_padded.unwrap_or(false)).map_err(embeddings_error)
        },
        |v| Ok(Float32Array::new(v)),
    )
}
