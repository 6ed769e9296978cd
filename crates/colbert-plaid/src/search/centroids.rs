//! Stage 1: query–centroid scores `S = Q · Cᵀ`, stored transposed as `[K][Q]` so that the
//! scores of one code are contiguous for the approximate scoring loops and the exact stage.
//! The query is the prepared panel of the core's row kernel, so the codebook is read where it
//! lies: no per-query packing of the `K × dim` matrix.

use colbert_core::QueryPanel;

use super::prune::ApproxTable;
use rayon::prelude::*;

/// Returns `s[c * nq + q] = centroid_c · query_q`, and the same scores quantised for stages
/// 4–5 (each block quantised right after it is computed, while it is in cache); `bound`
/// bounds every score's magnitude.
pub(crate) fn centroid_scores(
    centroids: &[f32],
    panel: &QueryPanel,
    bound: f32,
) -> (Vec<f32>, ApproxTable) {
    let (nq, dim) = (panel.nq(), panel.dim());
    let k = centroids.len().checked_div(dim).unwrap_or(0);
    let mut s = vec![0.0f32; k * nq];
    let mut table = ApproxTable::with_bound(k, nq, bound);
    if nq == 0 {
        return (s, table);
    }
    const BLOCK: usize = 256;
    let quant = table.quantizer();
    s.par_chunks_mut(BLOCK * nq)
        .zip(centroids.par_chunks(BLOCK * dim))
        .zip(table.rows_mut().par_chunks_mut(BLOCK * quant.stride))
        .for_each(|((out, cents), q)| {
            panel.scores(cents, out);
            quant.fill(out, q);
        });
    (s, table)
}

/// For each centroid, its best score over the query tokens.
pub(crate) fn max_per_centroid(scores: &[f32], nq: usize) -> Vec<f32> {
    scores
        .chunks_exact(nq.max(1))
        .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect()
}
