//! Stages 4–5: PLAID's centroid interaction. For each candidate, the approximate score is
//! `Σ_q max_{t ∈ doc} S[code_t][q]`, computed from stored codes only.
//!
//! * Pruned pass: tokens whose centroid's best score over the query is below
//!   `centroid_score_threshold` are skipped (ColBERT's `t_cs`); keep the top `ndocs`.
//! * Unpruned pass: re-score those without pruning; keep the top `ndocs / 4` (at least `k`).
//!
//! Per-token maxima start at −9999 as in ColBERT's `filter_pids.cpp`, so a document with no
//! surviving token ranks last. Parallel over candidates; one scratch buffer per rayon job.

use rayon::prelude::*;

use crate::error::Result;
use crate::segment::Codes;
use crate::snapshot::Snapshot;

const EMPTY: f32 = -9999.0;

#[inline]
fn approx<T: Copy + Into<u32>>(
    codes: &[T],
    scores: &[f32],
    nq: usize,
    mask: Option<&[bool]>,
    maxes: &mut [f32],
) -> f32 {
    maxes.fill(EMPTY);
    for &c in codes {
        let c = c.into() as usize;
        if let Some(m) = mask {
            if !m.get(c).copied().unwrap_or(false) {
                continue;
            }
        }
        let Some(row) = scores.get(c * nq..c * nq + nq) else {
            continue;
        };
        for (m, &s) in maxes.iter_mut().zip(row) {
            *m = m.max(s);
        }
    }
    maxes.iter().sum()
}

/// Approximate scores of `docs` (same order).
pub(crate) fn approx_scores(
    snap: &Snapshot,
    docs: &[u32],
    scores: &[f32],
    nq: usize,
    mask: Option<&[bool]>,
) -> Result<Vec<(f32, u32)>> {
    let chunks: Vec<Result<Vec<(f32, u32)>>> = docs
        .par_chunks(256)
        .map_init(
            || vec![0.0f32; nq],
            |maxes, chunk| {
                let mut out = Vec::with_capacity(chunk.len());
                for &d in chunk {
                    let Some((seg, local)) = snap.locate(d) else {
                        out.push((EMPTY * nq as f32, d));
                        continue;
                    };
                    let (a, b) = seg.token_range(local);
                    seg.check_codes(a, b)?;
                    let s = match seg.codes()? {
                        Codes::U16(c) => {
                            approx(c.get(a..b).unwrap_or(&[]), scores, nq, mask, maxes)
                        }
                        Codes::U32(c) => {
                            approx(c.get(a..b).unwrap_or(&[]), scores, nq, mask, maxes)
                        }
                    };
                    out.push((s, d));
                }
                Ok(out)
            },
        )
        .collect();
    let mut all = Vec::with_capacity(docs.len());
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}

/// Best first, ties toward the lower document number.
#[inline]
pub(crate) fn rank(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Keeps the `n` best in place (sorted best first).
pub(crate) fn top_n(v: &mut Vec<(f32, u32)>, n: usize) {
    if n < v.len() {
        if n == 0 {
            v.clear();
            return;
        }
        v.select_nth_unstable_by(n - 1, rank);
        v.truncate(n);
    }
    v.sort_unstable_by(rank);
}
