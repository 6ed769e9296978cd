//! Stage 1: query–centroid scores `S = Q · Cᵀ`, stored transposed as `[K][Q]` so that the
//! scores of one code are contiguous for the approximate scoring loops and the exact stage.
//! The query is the prepared panel of the core's row kernel, so the codebook is read where it
//! lies: no per-query packing of the `K × dim` matrix.

use colbert_core::QueryPanel;
use rayon::prelude::*;

/// Returns `s[c * nq + q] = centroid_c · query_q`.
pub(crate) fn centroid_scores(centroids: &[f32], panel: &QueryPanel) -> Vec<f32> {
    let (nq, dim) = (panel.nq(), panel.dim());
    let k = centroids.len().checked_div(dim).unwrap_or(0);
    let mut s = vec![0.0f32; k * nq];
    if nq == 0 {
        return s;
    }
    const BLOCK: usize = 256;
    s.par_chunks_mut(BLOCK * nq)
        .zip(centroids.par_chunks(BLOCK * dim))
        .for_each(|(out, cents)| panel.scores(cents, out));
    s
}

/// For each centroid, its best score over the query tokens.
pub(crate) fn max_per_centroid(scores: &[f32], nq: usize) -> Vec<f32> {
    scores
        .chunks_exact(nq.max(1))
        .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect()
}
