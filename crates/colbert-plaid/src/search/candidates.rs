//! Stages 2–3: per-token probing (the `n_probe` best centroids of each query token, optionally
//! restricted to centroids that hold subset documents) and the candidate set: the union of the
//! probed IVF lists over all segments, minus tombstones, intersected with the subset.

use crate::error::Result;
use crate::snapshot::Snapshot;

/// The union over query tokens of each token's `n_probe` best centroids (sorted, unique).
/// `eligible`, when given, restricts the choice to centroids marked `true`. Ties go to the
/// lower centroid id.
///
/// One pass over `scores` in its `[K][Q]` layout (contiguous per centroid) keeps, per query
/// token, its best `n_probe` so far; a centroid is only looked at token by token when it beats
/// some token's current worst (a vectorisable check), which is rare after the first few
/// hundred centroids.
pub(crate) fn probe(
    scores: &[f32],
    nq: usize,
    k: usize,
    n_probe: usize,
    eligible: Option<&[bool]>,
) -> Vec<u32> {
    let mut mark = vec![false; k];
    let is_eligible = |c: usize| eligible.is_none_or(|e| e.get(c).copied().unwrap_or(false));
    let pool = (0..k).filter(|&c| is_eligible(c)).count();
    let n = n_probe.min(pool);
    if n == 0 || nq == 0 {
        return Vec::new();
    }
    // Per query token: its best n scores (descending) and their centroids.
    let mut vals = vec![f32::NEG_INFINITY; nq * n];
    let mut ids = vec![u32::MAX; nq * n];
    // The current n-th best of each token (NEG_INFINITY until it has n).
    let mut worst = vec![f32::NEG_INFINITY; nq];
    let mut filled = vec![0usize; nq];
    for c in 0..k {
        if !is_eligible(c) {
            continue;
        }
        let Some(row) = scores.get(c * nq..c * nq + nq) else {
            break;
        };
        let mut any = false;
        for (s, w) in row.iter().zip(&worst) {
            any |= *s > *w;
        }
        if !any && filled.iter().all(|&f| f == n) {
            continue;
        }
        for q in 0..nq {
            let sc = row[q];
            let (v, id) = (&mut vals[q * n..q * n + n], &mut ids[q * n..q * n + n]);
            if filled[q] == n && sc <= v[n - 1] {
                continue;
            }
            // Insert after every score ≥ sc (earlier centroids win ties).
            let len = filled[q];
            let mut at = len.min(n - 1);
            while at > 0 && v[at - 1] < sc {
                at -= 1;
            }
            let end = if len < n { len } else { n - 1 };
            for j in (at..end).rev() {
                v[j + 1] = v[j];
                id[j + 1] = id[j];
            }
            v[at] = sc;
            id[at] = c as u32;
            filled[q] = (len + 1).min(n);
            if filled[q] == n {
                worst[q] = v[n - 1];
            }
        }
    }
    for &c in &ids {
        if let Some(m) = mark.get_mut(c as usize) {
            *m = true;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The definition: per token, sort eligible centroids by score (desc, lower id first).
    fn reference(scores: &[f32], nq: usize, k: usize, n: usize, e: Option<&[bool]>) -> Vec<u32> {
        let mut mark = vec![false; k];
        for q in 0..nq {
            let mut c: Vec<u32> = (0..k as u32)
                .filter(|&c| e.is_none_or(|e| e[c as usize]))
                .collect();
            c.sort_by(|&a, &b| {
                scores[b as usize * nq + q]
                    .total_cmp(&scores[a as usize * nq + q])
                    .then(a.cmp(&b))
            });
            for &x in c.iter().take(n) {
                mark[x as usize] = true;
            }
        }
        (0..k as u32).filter(|&c| mark[c as usize]).collect()
    }

    #[test]
    fn probe_matches_the_definition() {
        let mut rng = Rng::new(5);
        for trial in 0..200 {
            let (nq, k) = (1 + rng.below(9), 1 + rng.below(300));
            let n = 1 + rng.below(6);
            // Coarse values so that ties are common.
            let scores: Vec<f32> = (0..nq * k)
                .map(|_| (rng.below(7) as f32) / 4.0 - 0.5)
                .collect();
            let e: Vec<bool> = (0..k).map(|_| rng.below(3) > 0).collect();
            let elig = (trial % 2 == 0).then_some(e.as_slice());
            assert_eq!(
                probe(&scores, nq, k, n, elig),
                reference(&scores, nq, k, n, elig),
                "trial {trial}"
            );
        }
    }
}
