//! Stages 2–3: per-token probing (the `n_probe` best centroids of each query token, optionally
//! restricted to centroids that hold subset documents) and the candidate set: the union of the
//! probed IVF lists over all segments, minus tombstones, intersected with the subset.

use crate::error::Result;
use crate::snapshot::Snapshot;

/// The union over query tokens of each token's `n_probe` best centroids (sorted, unique).
/// `eligible`, when given, restricts the choice to centroids marked `true`.
pub(crate) fn probe(
    scores: &[f32],
    nq: usize,
    k: usize,
    n_probe: usize,
    eligible: Option<&[bool]>,
) -> Vec<u32> {
    let mut mark = vec![false; k];
    let pool: Vec<u32> = match eligible {
        Some(e) => (0..k as u32)
            .filter(|&c| e.get(c as usize).copied().unwrap_or(false))
            .collect(),
        None => (0..k as u32).collect(),
    };
    let n = n_probe.min(pool.len());
    if n == 0 {
        return Vec::new();
    }
    let mut idx = pool.clone();
    for q in 0..nq {
        let sc = |c: u32| scores[c as usize * nq + q];
        if n < idx.len() {
            // Best first; ties toward the lower centroid id.
            idx.select_nth_unstable_by(n - 1, |&a, &b| sc(b).total_cmp(&sc(a)).then(a.cmp(&b)));
        }
        for &c in &idx[..n] {
            mark[c as usize] = true;
        }
    }
    (0..k as u32).filter(|&c| mark[c as usize]).collect()
}

/// Live candidate documents (sorted, unique) from the IVF lists of `probed`.
pub(crate) fn candidates(
    snap: &Snapshot,
    probed: &[u32],
    subset: Option<&[u32]>,
) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for seg in &snap.segments {
        for &c in probed {
            out.extend_from_slice(seg.ivf_list(c as usize)?);
        }
    }
    out.sort_unstable();
    out.dedup();
    out.retain(|&d| snap.is_live(d) && subset.is_none_or(|s| s.binary_search(&d).is_ok()));
    Ok(out)
}
