//! Stages 4–5: PLAID's centroid interaction. For each candidate, the approximate score is
//! `Σ_q max_{t ∈ doc} S[code_t][q]`, computed from stored codes only.
//!
//! * Pruned pass: tokens whose centroid's best score over the query is below
//!   `centroid_score_threshold` are skipped (ColBERT's `t_cs`); keep the top `ndocs`.
//! * Unpruned pass: re-score those without pruning; keep the top `ndocs / 4` (at least `k`).
//!
//! The passes read an 8-bit copy of `S` ([`ApproxTable`], filled by stage 1 block by block
//! while the scores are in cache): each score is mapped monotonically to 1..=255 over
//! `[-B, B]`, `B` = the largest query-token norm times the largest centroid norm, a bound on
//! every score (`0` = no token, ColBERT's −9999 start of `filter_pids.cpp`, so a document with
//! no surviving token ranks last), one row per centroid padded to 32 lanes. A max over bytes is
//! the byte of the max, so a document's score is exact up to the quantisation step
//! (`2B / 254`, 0.008 for unit vectors, per query token); these scores only choose which documents
//! stage 6 scores exactly, and the rows are a quarter of the f32 table's size (a row is one
//! cache line). A pruned token is skipped on its centroid's flag before its row is read.
//! Parallel over candidates; one scratch buffer per rayon job.

use rayon::prelude::*;

use crate::error::Result;
use crate::segment::Codes;
use crate::snapshot::Snapshot;

const EMPTY: f32 = -9999.0;
/// Lanes per row of the byte table.
const LANES: usize = 32;

/// How scores map to bytes: `1 + round((v − lo) / step)`, rows of `nq` scores padded to
/// `stride` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quantizer {
    pub stride: usize,
    nq: usize,
    lo: f32,
    step: f32,
}

impl Quantizer {
    /// Quantises the scores `s` (`[_][nq]`) into the byte rows `out` (`[_][stride]`).
    pub fn fill(&self, s: &[f32], out: &mut [u8]) {
        let (nq, lo, inv) = (self.nq, self.lo, 1.0 / self.step);
        if nq == 0 {
            return;
        }
        for (o, r) in out.chunks_exact_mut(self.stride).zip(s.chunks_exact(nq)) {
            for (d, &v) in o.iter_mut().zip(r) {
                // 1 + round((v − lo) / step) ∈ 1..=255, rounded by the float adder: adding
                // 2^23 leaves the integer in the low mantissa bits (clamped first, so nothing
                // wraps to 0, "no token").
                *d = (((v - lo) * inv).clamp(0.0, 254.0) + (1.0 + 8_388_608.0)).to_bits() as u8;
            }
        }
    }
}

/// `S` quantised to bytes, `[K][stride]`, for the approximate passes.
pub(crate) struct ApproxTable {
    bytes: Vec<u8>,
    q: Quantizer,
}

impl ApproxTable {
    /// An empty table for `k` centroids and `nq` query tokens whose scores lie in
    /// `[-bound, bound]` (values outside are clamped), filled block by block through
    /// [`Self::quantizer`] and [`Self::rows_mut`] as stage 1 computes the scores.
    pub fn with_bound(k: usize, nq: usize, bound: f32) -> Self {
        let stride = nq.div_ceil(LANES).max(1) * LANES;
        let bound = if bound.is_finite() && bound > 0.0 {
            bound
        } else {
            1.0
        };
        ApproxTable {
            bytes: vec![0u8; k * stride],
            q: Quantizer {
                stride,
                nq,
                lo: -bound,
                step: 2.0 * bound / 254.0,
            },
        }
    }

    pub fn quantizer(&self) -> Quantizer {
        self.q
    }

    /// The byte rows, `stride` bytes each.
    pub fn rows_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// `Σ_q max_t` over the tokens `codes`, dequantised; `acc` is scratch (`stride` long).
    #[inline]
    fn score<T: Copy + Into<u32>>(
        &self,
        codes: &[T],
        keep: Option<&[bool]>,
        acc: &mut [u8],
    ) -> f32 {
        let Quantizer {
            stride,
            nq,
            lo,
            step,
        } = self.q;
        acc.fill(0);
        for &c in codes {
            let c = c.into() as usize;
            // A pruned token is skipped before its row is touched (the mask is small and
            // cached; most rows are not).
            if keep.is_some_and(|k| !k.get(c).copied().unwrap_or(false)) {
                continue;
            }
            let Some(row) = self.bytes.get(c * stride..(c + 1) * stride) else {
                continue;
            };
            let (acc, _) = acc.as_chunks_mut::<LANES>();
            let (row, _) = row.as_chunks::<LANES>();
            for (a, r) in acc.iter_mut().zip(row) {
                max_bytes(a, r);
            }
        }
        acc[..nq]
            .iter()
            .map(|&m| {
                if m == 0 {
                    EMPTY
                } else {
                    lo + (m - 1) as f32 * step
                }
            })
            .sum()
    }
}

/// `a = max(a, r)` lane by lane: whole-vector byte maxima (SSE2, present on every x86-64), so
/// a row costs two loads and independent rows' loads overlap.
#[inline(always)]
fn max_bytes(a: &mut [u8; LANES], r: &[u8; LANES]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_max_epu8, _mm_storeu_si128};
        // SAFETY: SSE2 is part of the x86-64 baseline; each pointer covers 16 of the 32 bytes
        // of an array it belongs to.
        unsafe {
            for h in 0..2 {
                let pa = a.as_mut_ptr().add(16 * h) as *mut __m128i;
                let pr = r.as_ptr().add(16 * h) as *const __m128i;
                _mm_storeu_si128(pa, _mm_max_epu8(_mm_loadu_si128(pa), _mm_loadu_si128(pr)));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for l in 0..LANES {
        a[l] = a[l].max(r[l]);
    }
}

/// Approximate scores of `docs` (same order); tokens whose centroid has `keep[c] == false` are
/// pruned.
pub(crate) fn approx_scores(
    snap: &Snapshot,
    docs: &[u32],
    table: &ApproxTable,
    keep: Option<&[bool]>,
) -> Result<Vec<(f32, u32)>> {
    let (nq, stride) = (table.q.nq, table.q.stride);
    let chunks: Vec<Result<Vec<(f32, u32)>>> = docs
        .par_chunks(256)
        .map_init(
            || vec![0u8; stride],
            |acc, chunk| {
                let mut out = Vec::with_capacity(chunk.len());
                for &d in chunk {
                    let Some((seg, local)) = snap.locate(d) else {
                        out.push((EMPTY * nq as f32, d));
                        continue;
                    };
                    let (a, b) = seg.token_range(local);
                    seg.check_codes(a, b)?;
                    let s = match seg.codes()? {
                        Codes::U16(c) => table.score(c.get(a..b).unwrap_or(&[]), keep, acc),
                        Codes::U32(c) => table.score(c.get(a..b).unwrap_or(&[]), keep, acc),
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
