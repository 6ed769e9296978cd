//! Stage 6: exact MaxSim of the query against the finalists, scored from their stored codes
//! without decoding them.
//!
//! A token decodes to `d = (c + r) / ‖c + r‖` (centroid `c`, residual `r` = the codec's bucket
//! weights), so for a query token `q`
//!
//! ```text
//! q · d = (q · c + q · r) · inv,   inv = 1 / ‖c + r‖
//! ```
//!
//! `q · c` is the query–centroid score of stage 1 (`S[code][q]`), `inv` is stored per token
//! (format ≥ 3), and `q · r` is one pass of the core's panel kernel over the packed residual
//! bytes, each broadcast from the codec's byte → weights table; the epilogue (add `S`, scale by
//! `inv`, column max) runs on the kernel's registers. No centroid is gathered, nothing is
//! normalised, no row is expanded in memory.
//! The value is MaxSim over the decoded vectors up to float rounding (tested against
//! decompress-then-score). Without stage-1 scores (a subset small enough to skip stages 1–5)
//! or without stored norms (a format-2 segment), the token is reconstructed as `c + r` and
//! its norm computed, as decoding does.

use colbert_core::panel::Rows;
use colbert_core::{QueryPanel, RowAffine};

use crate::codec::Codebook;
use crate::error::{PlaidError, Result};
use crate::segment::{Codes, Segment};

/// Per-thread buffers, reused across documents.
#[derive(Default)]
pub(crate) struct Scratch {
    rows: Vec<f32>,
    inv: Vec<f32>,
    codes: Vec<usize>,
    best: Vec<f32>,
}

/// Scores documents against one query.
pub(crate) struct ExactScorer<'a> {
    pub panel: &'a QueryPanel,
    pub codebook: &'a Codebook,
    /// Stage 1's `[K][nq]` query–centroid scores, when computed.
    pub centroid_scores: Option<&'a [f32]>,
}

impl ExactScorer<'_> {
    /// `Σ_q max_t q · d_t` over the tokens of local document `local` of `seg`; 0 for a
    /// document without tokens.
    pub fn score(&self, seg: &Segment, local: u32, s: &mut Scratch) -> Result<f32> {
        let cb = self.codebook;
        let (dim, nq) = (cb.dim, self.panel.nq());
        let (a, b) = seg.token_range(local);
        let n = b - a;
        if n == 0 || nq == 0 {
            return Ok(0.0);
        }
        seg.check_codes(a, b)?;
        seg.check_residuals(a, b)?;
        seg.check_inv_norms(a, b)?;
        let bad = || {
            PlaidError::corrupt(format!(
                "{}: code or residual out of range",
                seg.meta.file.name
            ))
        };
        s.codes.clear();
        match seg.codes()? {
            Codes::U16(c) => s
                .codes
                .extend(c.get(a..b).ok_or_else(bad)?.iter().map(|&v| v as usize)),
            Codes::U32(c) => s
                .codes
                .extend(c.get(a..b).ok_or_else(bad)?.iter().map(|&v| v as usize)),
        }
        if s.codes.iter().any(|&c| c >= cb.k) {
            return Err(bad());
        }
        let rb = cb.codec.row_bytes();
        let packed = seg.residuals().get(a * rb..b * rb).ok_or_else(bad)?;
        let stored = match seg.inv_norms()? {
            Some(v) => Some(v.get(a..b).ok_or_else(bad)?),
            None => None,
        };
        // With stage-1 scores and stored norms: the packed residuals, read through the codec's
        // table by the kernel. Otherwise: `c + r` rows, whose norms are computed here when not
        // stored.
        let residual_only = self.centroid_scores.is_some() && stored.is_some();
        if !residual_only {
            s.rows.resize(n * dim, 0.0);
            s.inv.clear();
            for ((row, p), &c) in s
                .rows
                .chunks_exact_mut(dim)
                .zip(packed.chunks_exact(rb))
                .zip(&s.codes)
            {
                let inv = cb.codec.reconstruct_into(cb.centroid(c), p, row);
                if stored.is_none() {
                    s.inv.push(inv);
                }
            }
        }
        let inv: &[f32] = stored.unwrap_or(&s.inv);
        s.best.clear();
        s.best.resize(self.panel.lanes(), f32::NEG_INFINITY);
        let affine = RowAffine {
            bias: self
                .centroid_scores
                .filter(|_| residual_only)
                .map(|table| (table, &s.codes[..])),
            scale: inv,
        };
        let rows = if residual_only {
            Rows::Packed {
                bytes: packed,
                lut: cb.codec.lut(),
                per_byte: 8 / cb.codec.nbits() as usize,
            }
        } else {
            Rows::Dense(&s.rows)
        };
        if !self.panel.max_scores(rows, &affine, &mut s.best) {
            return Err(PlaidError::Internal(
                "exact scoring inputs do not fit together".into(),
            ));
        }
        let best = &s.best[..nq];
        Ok(best.iter().sum())
    }
}
