//! Exact MaxSim: every query against every document, on the SGEMM kernel ([`crate::kernels`]).

use rayon::prelude::*;

use crate::embeddings::{EmbeddingsError, EmbeddingsView};
use crate::kernels::{self, dot};

/// Exact MaxSim of one query against one document: for every query row, the largest dot product
/// with any document row, summed. A document with no rows scores 0 (every query row contributes
/// nothing), matching PyLate's treatment of all-padding documents.
pub fn maxsim_pair(dim: usize, query: &[f32], document: &[f32]) -> f32 {
    if document.is_empty() {
        return 0.0;
    }
    maxsim_pair_floor(dim, query, document, f32::NEG_INFINITY)
}

/// MaxSim where each query row's best score starts at `floor` (0 = a zero padding row).
fn maxsim_pair_floor(dim: usize, query: &[f32], document: &[f32], floor: f32) -> f32 {
    let mut total = 0.0f32;
    for q in query.chunks_exact(dim) {
        let mut best = floor;
        for d in document.chunks_exact(dim) {
            let s = dot(q, d);
            if s > best {
                best = s;
            }
        }
        total += best;
    }
    total
}

/// Exact MaxSim over real tokens for every (query, document) pair: a row-major
/// `queries.len() × documents.len()` matrix. Runs on the current rayon pool.
pub fn maxsim(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
) -> Result<Vec<f32>, EmbeddingsError> {
    if queries.dim != documents.dim {
        return Err(EmbeddingsError::Shape(format!(
            "queries have dim {} but documents have dim {}",
            queries.dim, documents.dim
        )));
    }
    maxsim_with(queries, documents, false)
}

/// MaxSim as PyLate computes it on a zero-padded batch (`rank.rerank`, the evaluator):
/// documents are padded with zero rows to the longest document of `documents`, so for a
/// document shorter than that every query row contributes `max(0, best dot product)`.
/// Documents of the maximal length score exactly as [`maxsim`].
pub fn maxsim_zero_padded(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
) -> Result<Vec<f32>, EmbeddingsError> {
    maxsim_with(queries, documents, true)
}

/// Document tokens per block of [`maxsim_with`]: blocks are scored in parallel, each against
/// every query, by one SGEMM per query group (large enough to run near the GEMM peak, small
/// enough that the similarity block stays in L2).
const BLOCK_TOKENS: usize = 512;
/// Query tokens per SGEMM of [`maxsim_with`].
const GROUP_TOKENS: usize = 256;

/// Cuts `items` into consecutive runs of at most `limit` rows (an item longer than `limit`
/// is a run alone).
fn runs(items: EmbeddingsView<'_>, limit: usize) -> Vec<std::ops::Range<usize>> {
    let rows = |i: usize| items.offsets[i] as usize;
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || rows(i + 1) - rows(start) > limit {
            out.push(start..i);
            start = i;
        }
    }
    out
}

fn maxsim_with(
    queries: EmbeddingsView<'_>,
    documents: EmbeddingsView<'_>,
    zero_padded: bool,
) -> Result<Vec<f32>, EmbeddingsError> {
    if queries.dim != documents.dim {
        return Err(EmbeddingsError::Shape(format!(
            "queries have dim {} but documents have dim {}",
            queries.dim, documents.dim
        )));
    }
    let (nq, nd, dim) = (queries.len(), documents.len(), queries.dim);
    let mut out = vec![0.0f32; nq * nd];
    if nd == 0 || nq == 0 || dim == 0 {
        return Ok(out);
    }
    let rows = |v: &EmbeddingsView<'_>, i: usize| v.offsets[i] as usize;
    let longest = (0..nd)
        .map(|d| rows(&documents, d + 1) - rows(&documents, d))
        .max()
        .unwrap_or(0);
    // Consecutive queries whose tokens fit one SGEMM, and consecutive documents of about
    // BLOCK_TOKENS tokens (a longer item is a run alone).
    let groups = runs(queries, GROUP_TOKENS);
    let blocks = runs(documents, BLOCK_TOKENS);
    // Each block yields its scores query-major (`nq × block length`); scattered below.
    let scored: Vec<Vec<f32>> = blocks
        .par_iter()
        .map(|block| {
            let (t0, t1) = (rows(&documents, block.start), rows(&documents, block.end));
            let doc_rows = &documents.data[t0 * dim..t1 * dim];
            let n_tokens = t1 - t0;
            let mut scores = vec![0.0f32; nq * block.len()];
            let mut sims = Vec::new();
            let mut best = Vec::new();
            for group in &groups {
                let (u0, u1) = (rows(&queries, group.start), rows(&queries, group.end));
                let width = u1 - u0;
                if width == 0 || n_tokens == 0 {
                    continue;
                }
                // sims[t × width + u] = document token t · query token u.
                sims.clear();
                sims.resize(n_tokens * width, 0.0);
                kernels::dots_into(doc_rows, &queries.data[u0 * dim..u1 * dim], dim, &mut sims);
                for (j, d) in block.clone().enumerate() {
                    let (a, b) = (rows(&documents, d) - t0, rows(&documents, d + 1) - t0);
                    if a == b {
                        continue; // no tokens: 0 for every query
                    }
                    // A zero-padded shorter document also offers the padding rows' 0.
                    let floor = if zero_padded && b - a < longest {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    };
                    best.clear();
                    best.resize(width, floor);
                    for row in sims[a * width..b * width].chunks_exact(width) {
                        for (m, &s) in best.iter_mut().zip(row) {
                            if s > *m {
                                *m = s;
                            }
                        }
                    }
                    for q in group.clone() {
                        let (c0, c1) = (rows(&queries, q) - u0, rows(&queries, q + 1) - u0);
                        scores[q * block.len() + j] = best[c0..c1].iter().sum();
                    }
                }
            }
            scores
        })
        .collect();
    for (block, scores) in blocks.iter().zip(&scored) {
        for q in 0..nq {
            out[q * nd + block.start..q * nd + block.end]
                .copy_from_slice(&scores[q * block.len()..(q + 1) * block.len()]);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kernels::normalize_rows;
    use crate::Embeddings;

    fn batch(dim: usize, items: &[&[f32]]) -> Embeddings {
        Embeddings::from_items(dim, items.iter().map(|s| s.to_vec()).collect())
    }

    #[test]
    fn maxsim_matches_hand_computation() {
        // query 0: rows (1,0), (0,1); documents: d0 rows (1,0),(0.5,0.5); d1 row (-1,0)
        let q = batch(2, &[&[1.0, 0.0, 0.0, 1.0]]);
        let d = batch(2, &[&[1.0, 0.0, 0.5, 0.5], &[-1.0, 0.0]]);
        let s = maxsim(q.view(), d.view()).expect("shapes agree");
        // d0: max(1, .5) + max(0, .5) = 1.5 ; d1: -1 + 0 = -1 (no zero clamp over real tokens)
        assert_eq!(s, vec![1.5, -1.0]);
    }

    #[test]
    fn zero_padded_clamps_only_shorter_documents() {
        // d0 has 2 rows (the longest), d1 one row (-1,0): padded to 2 rows with a zero row.
        let q = batch(2, &[&[1.0, 0.0, 0.0, 1.0]]);
        let d = batch(2, &[&[1.0, 0.0, 0.5, 0.5], &[-1.0, 0.0]]);
        let s = maxsim_zero_padded(q.view(), d.view()).expect("shapes agree");
        // d0 unchanged (1.5); d1: max(-1, 0) + max(0, 0) = 0
        assert_eq!(s, vec![1.5, 0.0]);
        // d0 alone is the longest of its batch: plain MaxSim (-1 + 0), negative rows kept.
        let d = batch(2, &[&[-1.0, 0.0, -1.0, 0.0]]);
        assert_eq!(
            maxsim_zero_padded(q.view(), d.view()).expect("ok"),
            vec![-1.0]
        );
    }

    #[test]
    fn empty_document_scores_zero() {
        let q = batch(2, &[&[1.0, 0.0]]);
        let d = batch(2, &[&[]]);
        assert_eq!(maxsim(q.view(), d.view()).expect("ok"), vec![0.0]);
    }

    #[test]
    fn dim_mismatch_is_an_error() {
        let q = batch(2, &[&[1.0, 0.0]]);
        let d = batch(3, &[&[1.0, 0.0, 0.0]]);
        assert!(maxsim(q.view(), d.view()).is_err());
    }

    /// A deterministic batch of `n` items of 0..max_rows rows (some empty), unit rows.
    fn random_batch(seed: u32, dim: usize, n: usize, max_rows: usize) -> Embeddings {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let items = (0..n)
            .map(|_| {
                let r = next() as usize;
                let rows = if r.is_multiple_of(5) {
                    0
                } else {
                    r % (max_rows + 1)
                };
                let mut v: Vec<f32> = (0..rows * dim)
                    .map(|_| next() as f32 / u32::MAX as f32 - 0.5)
                    .collect();
                normalize_rows(dim, &mut v);
                v
            })
            .collect();
        Embeddings::from_items(dim, items)
    }

    /// The blocked SGEMM path agrees with the pair-by-pair definition (within float rounding
    /// of a reordered sum), across block and group boundaries, long items, empty items and
    /// padding; and an item's score does not depend on the batch it came in.
    #[test]
    fn blocked_maxsim_equals_the_definition() {
        let dim = 8;
        // Queries up to 300 rows straddle GROUP_TOKENS; documents up to 700 rows straddle
        // BLOCK_TOKENS.
        let q = random_batch(1, dim, 6, 300);
        let d = random_batch(2, dim, 24, 700);
        let (nq, nd) = (q.len(), d.len());
        for padded in [false, true] {
            let got = maxsim_with(q.view(), d.view(), padded).unwrap();
            let longest = (0..nd).map(|j| d.item(j).len()).max().unwrap();
            for i in 0..nq {
                for j in 0..nd {
                    let (qi, dj) = (q.item(i), d.item(j));
                    let want = if dj.is_empty() {
                        0.0
                    } else if padded && dj.len() < longest {
                        maxsim_pair_floor(dim, qi, dj, 0.0)
                    } else {
                        maxsim_pair(dim, qi, dj)
                    };
                    let tol = 1e-5 * (qi.len() / dim).max(1) as f32;
                    assert!(
                        (got[i * nd + j] - want).abs() <= tol,
                        "padded {padded} q{i} d{j}: {} vs {want}",
                        got[i * nd + j]
                    );
                }
            }
        }
        // The same pair alone and in the batch: bit-identical.
        let all = maxsim(q.view(), d.view()).unwrap();
        for (i, j) in [(0, 0), (3, 17), (5, 23), (4, 11)] {
            let qi = Embeddings::from_items(dim, vec![q.item(i).to_vec()]);
            let dj = Embeddings::from_items(dim, vec![d.item(j).to_vec()]);
            let one = maxsim(qi.view(), dj.view()).unwrap();
            assert_eq!(one[0].to_bits(), all[i * nd + j].to_bits(), "q{i} d{j}");
        }
    }
}
