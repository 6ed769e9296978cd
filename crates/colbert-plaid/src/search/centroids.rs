//! Stage 1: query–centroid scores `S = Q · Cᵀ`, stored transposed as `[K][Q]` so that the
//! scores of one code are contiguous for the approximate scoring loops.

use rayon::prelude::*;

use colbert_core::kernels::dots_into;

/// Returns `s[c * nq + q] = centroid_c · query_q`.
pub(crate) fn centroid_scores(centroids: &[f32], query: &[f32], dim: usize) -> Vec<f32> {
    let nq = query.len() / dim;
    let k = centroids.len() / dim;
    let mut s = vec![0.0f32; k * nq];
    if nq == 0 {
        return s;
    }
    const BLOCK: usize = 64;
    s.par_chunks_mut(BLOCK * nq)
        .zip(centroids.par_chunks(BLOCK * dim))
        .for_each(|(out, cents)| dots_into(cents, query, dim, out));
    s
}

/// For each centroid, its best score over the query tokens.
pub(crate) fn max_per_centroid(scores: &[f32], nq: usize) -> Vec<f32> {
    scores
        .chunks_exact(nq.max(1))
        .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect()
}
