//! Exact MaxSim over `Embeddings` passed as typed arrays.

use colbert_embeddings::EmbeddingsView;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::embeddings_error;

/// Exact MaxSim over real tokens: a row-major nQueries × nDocuments matrix.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn maxsim(
    query_dim: u32,
    query_offsets: &[u32],
    query_data: &[f32],
    document_dim: u32,
    document_offsets: &[u32],
    document_data: &[f32],
) -> Result<Float32Array> {
    let q = EmbeddingsView::new(query_dim as usize, query_offsets, query_data)
        .map_err(embeddings_error)?;
    let d = EmbeddingsView::new(document_dim as usize, document_offsets, document_data)
        .map_err(embeddings_error)?;
    let scores = colbert_embeddings::maxsim(q, d).map_err(embeddings_error)?;
    Ok(Float32Array::new(scores))
}
