//! The PLAID search pipeline, one module per stage:
//!
//! 1. [`centroids`]: query–centroid scores `S = Q·Cᵀ` (`[K][Q]` layout);
//! 2. [`candidates`]: per-token top-`n_probe` centroids, union;
//! 3. [`candidates`]: union of the probed IVF lists (minus tombstones, ∩ subset);
//! 4. [`prune`]: approximate scores with centroid pruning (`t_cs`), top `ndocs`;
//! 5. [`prune`]: approximate scores without pruning, top `ndocs / 4` (at least `k`);
//! 6. [`maxsim`]: exact MaxSim of those documents from their stored codes (stage-1 scores plus
//!    the query against the residuals, times each token's stored inverse norm; nothing is
//!    decompressed), and the top `k`.
//!
//! A subset small enough (≤ the exact-scoring budget) skips stages 1–5: every subset
//! document is scored exactly.

pub(crate) mod candidates;
pub(crate) mod centroids;
pub(crate) mod maxsim;
pub(crate) mod prune;

use colbert_core::{CancelToken, EmbeddingsView, QueryPanel};
use rayon::prelude::*;

use crate::error::{PlaidError, Result};
use crate::snapshot::Snapshot;

/// Search knobs. `None` fields take ColBERT's defaults for `k`:
///
/// | k | `n_probe` (ncells) | `centroid_score_threshold` | `candidates` (ndocs) |
/// |---|---|---|---|
/// | ≤ 10 | 1 | 0.5 | 256 |
/// | ≤ 100 | 2 | 0.45 | 1024 |
/// | > 100 | 4 | 0.4 | max(4k, 4096) |
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    /// Results per query.
    pub k: usize,
    /// Centroids probed per query token.
    pub n_probe: Option<usize>,
    /// Pruning threshold of the first centroid-interaction pass (`f32::NEG_INFINITY`: none).
    pub centroid_score_threshold: Option<f32>,
    /// Documents kept by the pruned pass (`ndocs`).
    pub candidates: Option<usize>,
    /// Documents decompressed and scored exactly (default `max(candidates / 4, k)`).
    pub exact_candidates: Option<usize>,
}

impl SearchParams {
    pub fn new(k: usize) -> Self {
        SearchParams {
            k,
            n_probe: None,
            centroid_score_threshold: None,
            candidates: None,
            exact_candidates: None,
        }
    }

    /// The effective `(n_probe, threshold, ndocs, n_exact)`.
    pub fn resolve(&self) -> (usize, f32, usize, usize) {
        let k = self.k;
        let (p, t, n) = if k <= 10 {
            (1, 0.5, 256)
        } else if k <= 100 {
            (2, 0.45, 1024)
        } else {
            (4, 0.4, (k * 4).max(4096))
        };
        let ndocs = self.candidates.unwrap_or(n).max(1);
        let exact = self.exact_candidates.unwrap_or((ndocs / 4).max(k)).max(1);
        (
            self.n_probe.unwrap_or(p).max(1),
            self.centroid_score_threshold.unwrap_or(t),
            ndocs,
            exact,
        )
    }
}

impl Default for SearchParams {
    fn default() -> Self {
        Self::new(10)
    }
}

/// One result: the document's external id and its MaxSim score over decompressed embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// Runs every query (in parallel) against one snapshot. `subset_docs`: live documents only,
/// sorted and unique (see [`scope`]).
pub(crate) fn search(
    snap: &Snapshot,
    queries: EmbeddingsView<'_>,
    params: &SearchParams,
    subset_docs: Option<Vec<u32>>,
    cancel: &CancelToken,
) -> Result<Vec<Vec<Hit>>> {
    colbert_core::validate(queries.dim, queries.offsets, queries.data)
        .map_err(|e| PlaidError::invalid(e.to_string()))?;
    if params.k == 0 {
        return Err(PlaidError::invalid("k must be at least 1"));
    }
    if let Some(t) = params.centroid_score_threshold {
        if t.is_nan() {
            return Err(PlaidError::invalid("centroid_score_threshold is NaN"));
        }
    }
    let Some(cb) = &snap.codebook else {
        return Ok(vec![Vec::new(); queries.len()]);
    };
    if queries.dim != cb.dim {
        return Err(PlaidError::invalid(format!(
            "queries have dim {}, the index has dim {}",
            queries.dim, cb.dim
        )));
    }
    let (_, _, _, n_exact) = params.resolve();
    // So few live documents that exact scoring of all of them is within the exact-scoring
    // budget: score them all, so a search returns min(k, live documents) hits however sparse
    // the centroids' lists have become (e.g. after most documents were deleted).
    let subset_docs = match subset_docs {
        None if snap.manifest.live_docs <= n_exact as u64 => Some(
            (0..snap.manifest.next_doc)
                .filter(|&d| snap.is_live(d))
                .collect(),
        ),
        s => s,
    };
    let eligible: Option<Vec<bool>> = match &subset_docs {
        Some(docs) if docs.len() > n_exact => Some(eligible_centroids(snap, docs, cb.k)?),
        _ => None,
    };
    (0..queries.len())
        .into_par_iter()
        .map(|qi| {
            if cancel.is_cancelled() {
                return Err(PlaidError::Aborted);
            }
            search_one(
                snap,
                queries.item(qi),
                params,
                subset_docs.as_deref(),
                eligible.as_deref(),
                cancel,
            )
        })
        .collect()
}

/// The documents a search may return: live documents among `ids` (unknown ids ignored) whose
/// metadata matches `filter`; `None` when neither restricts the search. Sorted, unique.
pub(crate) fn scope(
    snap: &Snapshot,
    ids: Option<&[String]>,
    filter: Option<&crate::filter::Filter>,
) -> Result<Option<Vec<u32>>> {
    let mut docs: Option<Vec<u32>> = ids.map(|ids| {
        let mut v: Vec<u32> = ids.iter().filter_map(|id| snap.lookup(id)).collect();
        v.sort_unstable();
        v.dedup();
        v
    });
    if let Some(f) = filter {
        let all: Vec<u32> = match docs.take() {
            Some(v) => v,
            None => (0..snap.manifest.next_doc)
                .filter(|&d| snap.is_live(d))
                .collect(),
        };
        let keep: Vec<Result<bool>> = all
            .par_iter()
            .map(|&d| f.matches_stored(snap.fields(d)?.1))
            .collect();
        let mut v = Vec::with_capacity(all.len());
        for (d, k) in all.into_iter().zip(keep) {
            if k? {
                v.push(d);
            }
        }
        docs = Some(v);
    }
    Ok(docs)
}

fn eligible_centroids(snap: &Snapshot, docs: &[u32], k: usize) -> Result<Vec<bool>> {
    let mut e = vec![false; k];
    for &d in docs {
        if let Some((seg, l)) = snap.locate(d) {
            let (a, b) = seg.token_range(l);
            seg.check_codes(a, b)?;
            let mut mark = |c: usize| {
                if let Some(x) = e.get_mut(c) {
                    *x = true;
                }
            };
            match seg.codes()? {
                crate::segment::Codes::U16(c) => c
                    .get(a..b)
                    .unwrap_or(&[])
                    .iter()
                    .for_each(|&v| mark(v as usize)),
                crate::segment::Codes::U32(c) => c
                    .get(a..b)
                    .unwrap_or(&[])
                    .iter()
                    .for_each(|&v| mark(v as usize)),
            }
        }
    }
    Ok(e)
}

fn search_one(
    snap: &Snapshot,
    query: &[f32],
    params: &SearchParams,
    subset: Option<&[u32]>,
    eligible: Option<&[bool]>,
    cancel: &CancelToken,
) -> Result<Vec<Hit>> {
    let Some(cb) = &snap.codebook else {
        return Ok(Vec::new());
    };
    let dim = cb.dim;
    let nq = query.len() / dim;
    if nq == 0 {
        return Ok(Vec::new());
    }
    let (n_probe, threshold, ndocs, n_exact) = params.resolve();
    let panel = QueryPanel::new(query, dim);
    let mut table: Option<Vec<f32>> = None;
    // |q·c| ≤ ‖q‖·‖c‖: the range of every query–centroid score (for the byte table).
    let bound = query
        .chunks_exact(dim)
        .map(|q| colbert_core::kernels::dot(q, q))
        .fold(0.0f32, f32::max)
        .sqrt()
        * cb.max_norm;
    let finalists: Vec<u32> = match subset {
        Some(s) if s.len() <= n_exact => s.to_vec(),
        _ => {
            let (scores, full) = centroids::centroid_scores(cb.centroids(), &panel, bound);
            let scores = table.insert(scores);
            // A selective subset probes proportionally more (eligible) centroids, as
            // next-plaid does: n_probe × ceil(live documents / subset documents).
            let n_probe = match subset {
                Some(s) if !s.is_empty() => {
                    let scale = (snap.manifest.live_docs as usize).div_ceil(s.len()).max(1);
                    n_probe.saturating_mul(scale)
                }
                _ => n_probe,
            };
            // Probing too few centroids to find k documents (a sparse or selective scope)
            // probes four times as many, up to all of them.
            let wanted = params
                .k
                .min(subset.map_or(snap.manifest.live_docs as usize, <[u32]>::len));
            let mut n_probe = n_probe;
            let cands = loop {
                let probed = candidates::probe(scores, nq, cb.k, n_probe, eligible);
                let cands = candidates::candidates(snap, &probed, subset)?;
                if cands.len() >= wanted || n_probe >= cb.k {
                    break cands;
                }
                n_probe = n_probe.saturating_mul(4).min(cb.k);
            };
            if cancel.is_cancelled() {
                return Err(PlaidError::Aborted);
            }
            let mask: Option<Vec<bool>> = (threshold > f32::NEG_INFINITY).then(|| {
                centroids::max_per_centroid(scores, nq)
                    .iter()
                    .map(|&m| m >= threshold)
                    .collect()
            });
            let mut approx = prune::approx_scores(snap, &cands, &full, mask.as_deref())?;
            prune::top_n(&mut approx, ndocs);
            let mut docs: Vec<u32> = approx.iter().map(|p| p.1).collect();
            if mask.is_some() {
                let mut second = prune::approx_scores(snap, &docs, &full, None)?;
                prune::top_n(&mut second, n_exact);
                docs = second.iter().map(|p| p.1).collect();
            } else {
                docs.truncate(n_exact);
            }
            docs
        }
    };
    if cancel.is_cancelled() {
        return Err(PlaidError::Aborted);
    }
    let scorer = maxsim::ExactScorer {
        panel: &panel,
        codebook: cb,
        centroid_scores: table.as_deref(),
    };
    let scored: Vec<Result<(f32, u32)>> = finalists
        .par_iter()
        .map_init(maxsim::Scratch::default, |scratch, &d| {
            let score = match snap.locate(d) {
                Some((seg, local)) => scorer.score(seg, local, scratch)?,
                None => 0.0,
            };
            Ok((score, d))
        })
        .collect();
    let mut exact = scored.into_iter().collect::<Result<Vec<_>>>()?;
    prune::top_n(&mut exact, params.k);
    Ok(exact
        .into_iter()
        .map(|(score, d)| Hit {
            id: snap.external_id(d).to_string(),
            score,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn colbert_defaults_by_k() {
        assert_eq!(SearchParams::new(10).resolve(), (1, 0.5, 256, 64));
        assert_eq!(SearchParams::new(100).resolve(), (2, 0.45, 1024, 256));
        assert_eq!(SearchParams::new(1000).resolve(), (4, 0.4, 4096, 1024));
        assert_eq!(SearchParams::new(2000).resolve(), (4, 0.4, 8000, 2000));
        let p = SearchParams {
            candidates: Some(8),
            ..SearchParams::new(5)
        };
        assert_eq!(p.resolve().3, 5);
    }
}
