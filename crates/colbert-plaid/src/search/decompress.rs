//! Stage 6: decompression of the final candidates: `normalize(centroid[code] + weights)`
//! through the codec's byte → weights lookup table.

use crate::error::{PlaidError, Result};
use crate::segment::{Codes, Segment};
use crate::snapshot::Codebook;

/// Decodes every token of a local document into `out` (resized, reused across calls).
pub(crate) fn decompress_doc(
    cb: &Codebook,
    seg: &Segment,
    local: u32,
    out: &mut Vec<f32>,
) -> Result<()> {
    let (a, b) = seg.token_range(local);
    seg.check_codes(a, b)?;
    seg.check_residuals(a, b)?;
    let dim = cb.dim;
    let rb = cb.codec.row_bytes();
    out.resize((b - a) * dim, 0.0);
    let codes = seg.codes()?;
    let res = seg.residuals();
    let bad = || {
        PlaidError::corrupt(format!(
            "{}: code or residual out of range",
            seg.meta.file.name
        ))
    };
    for (i, row) in out.chunks_exact_mut(dim).enumerate() {
        let t = a + i;
        let c = match codes {
            Codes::U16(c) => c.get(t).map(|&v| v as usize),
            Codes::U32(c) => c.get(t).map(|&v| v as usize),
        }
        .ok_or_else(bad)?;
        let cent = cb.centroid(c);
        let packed = res.get(t * rb..(t + 1) * rb).ok_or_else(bad)?;
        if cent.len() != dim {
            return Err(bad());
        }
        cb.codec.decompress_into(cent, packed, row);
    }
    Ok(())
}
