//! Training a codebook, and growing it (commit steps 1 and 2 of [`crate::Writer`]).
//!
//! - [`train`] (untrained index, or a rebuild): samples documents, runs k-means on most of the
//!   sampled rows and trains the residual codec on the held-out rest.
//! - [`expand`] (trained index): finds the new rows that fit no centroid (outliers) and
//!   clusters them into new centroids appended to the codebook (fast-plaid/next-plaid's
//!   update), keeping every row's nearest centroid so that compression need not search again.

use colbert_core::kernels::{argmax_centroids, dot};
use colbert_core::{CancelToken, OnProgress, Progress, Stage};

use crate::codec::{quantiles, Codebook, ResidualCodec};
use crate::error::{PlaidError, Result};
use crate::kmeans::{kmeans, kmeans_rows, num_centroids_for, sample_docs_count, KMeansConfig};
use crate::manifest::Manifest;
use crate::rng::Rng;

/// Tokens compressed per chunk.
pub(crate) const CHUNK_TOKENS: usize = 32_768;
/// Outlier rows kept (reservoir) for expansion k-means; residual norms kept for the threshold.
pub(crate) const RESERVOIR: usize = 65_536;
/// Fewer outliers than this in one commit do not create centroids.
pub const MIN_OUTLIERS_FOR_EXPANSION: usize = 64;
/// Up to this many new rows, the expansion scan's nearest centroids are kept for encoding
/// (8 B each: code and score).
const KEEP_CODES: usize = 1 << 24;

pub(crate) struct Trained {
    pub centroids: Vec<f32>,
    pub codec: ResidualCodec,
    pub threshold: f32,
    pub heldout: usize,
    /// Mean residual norm of the held-out rows.
    pub mean_norm: f32,
}

pub(crate) fn train(
    m: &Manifest,
    data: &[f32],
    dim: usize,
    doc_rows: &[usize],
    cancel: &CancelToken,
    progress: OnProgress<'_>,
) -> Result<Trained> {
    let o = &m.options;
    let n_docs = doc_rows.len() - 1;
    let mut rng = Rng::new(o.seed);
    let mut docs = rng.sample_indices(n_docs, sample_docs_count(n_docs));
    docs.sort_unstable();
    // The sample as global row numbers into the spill (8 bytes per row, not 4·dim): only
    // the rows k-means and the codec actually use are ever copied.
    let mut sample: Vec<usize> = Vec::new();
    for &d in &docs {
        sample.extend(doc_rows[d]..doc_rows[d + 1]);
    }
    let rows = sample.len();
    progress(Progress::new(Stage::Sample, docs.len(), n_docs));
    let est = rows as f64 / docs.len().max(1) as f64 * n_docs as f64;
    // Shuffle, hold out min(5 %, 50k) rows for the codec; the rest trains k-means.
    let perm = rng.sample_indices(rows, rows);
    let heldout = ((rows as f64 * 0.05) as usize).min(50_000);
    let train_rows = rows - heldout;
    let k = o
        .num_centroids
        .unwrap_or_else(|| num_centroids_for(est))
        .clamp(1, train_rows.max(1));
    // k-means uses at most k × max_points_per_centroid of the training rows.
    let cap = k.saturating_mul(o.max_points_per_centroid.max(1));
    let mut train_idx: Vec<usize> = perm[..train_rows].to_vec();
    if train_idx.len() > cap {
        let keep = rng.sample_indices(train_idx.len(), cap);
        train_idx = keep.into_iter().map(|i| train_idx[i]).collect();
    }
    // k-means reads its rows in place from the (memory-mapped) spill: only their row numbers
    // are held. The held-out rows (at most 50,000) are copied.
    let train_rows_global: Vec<usize> = train_idx.iter().map(|&i| sample[i]).collect();
    drop(train_idx);
    let gather = |rows: &mut dyn Iterator<Item = usize>| {
        let mut v = Vec::new();
        for r in rows {
            v.extend_from_slice(&data[r * dim..(r + 1) * dim]);
        }
        v
    };
    let mut held = gather(&mut perm[train_rows..].iter().map(|&i| sample[i]));
    drop(perm);
    drop(sample);
    if held.is_empty() {
        held = gather(&mut train_rows_global.iter().copied());
    }
    let iterations = o.kmeans_iterations;
    let cfg = KMeansConfig {
        k,
        iterations,
        seed: o.seed,
        max_points_per_centroid: o.max_points_per_centroid,
    };
    let centroids = kmeans_rows(data, Some(&train_rows_global), dim, cfg, cancel, &|i| {
        progress(Progress::new(Stage::KMeans, i, iterations))
    })?;
    drop(train_rows_global);
    let assign = argmax_centroids(&held, &centroids, dim, 1.0, None);
    let mut residuals = Vec::with_capacity(held.len());
    let mut norms = Vec::with_capacity(assign.len());
    for (x, &(c, _)) in held.chunks_exact(dim).zip(&assign) {
        let cent = &centroids[c as usize * dim..(c as usize + 1) * dim];
        let mut n2 = 0.0f32;
        for (a, b) in x.iter().zip(cent) {
            residuals.push(a - b);
            n2 += (a - b) * (a - b);
        }
        norms.push(n2.sqrt());
    }
    let codec = ResidualCodec::train(o.nbits, dim, &residuals)?;
    let threshold = quantiles(&norms, &[0.75])[0];
    let mean_norm = norms.iter().map(|&n| n as f64).sum::<f64>() / norms.len().max(1) as f64;
    Ok(Trained {
        centroids,
        codec,
        threshold,
        heldout: norms.len(),
        mean_norm: mean_norm as f32,
    })
}

/// Finds outliers among the new rows and clusters them into new, normalised centroids
/// (returned row-major; empty when there are too few outliers), and counts the outliers. The scan computes every
/// row's nearest centroid (inner product, as encoding does); when no centroid is added and
/// the transaction is not huge, those codes are returned so encoding need not recompute them.
pub(crate) fn expand(
    m: &Manifest,
    cb: &Codebook,
    data: &[f32],
    dim: usize,
    gen: u64,
    cancel: &CancelToken,
    progress: OnProgress<'_>,
) -> Result<(Vec<f32>, Option<Vec<u32>>, usize)> {
    let t2 = m.cluster_threshold * m.cluster_threshold;
    let n_rows = data.len() / dim;
    // Nearest centroid and its score per row, kept (up to KEEP_CODES rows) for encoding.
    let mut best_rows: Option<Vec<(u32, f32)>> =
        (n_rows <= KEEP_CODES).then(|| Vec::with_capacity(n_rows));
    let cents = cb.centroids();
    let cnorm: Vec<f32> = cents.chunks_exact(dim).map(|c| dot(c, c)).collect();
    let mut rng = Rng::new(m.options.seed ^ gen.rotate_left(17));
    let mut sample: Vec<f32> = Vec::new();
    let mut outliers = 0usize;
    for chunk in data.chunks(CHUNK_TOKENS * dim) {
        if cancel.is_cancelled() {
            return Err(PlaidError::Aborted);
        }
        // Centroids are unit-norm, so the inner-product nearest centroid is the L2-nearest.
        let best = argmax_centroids(chunk, cents, dim, 1.0, None);
        if let Some(b) = best_rows.as_mut() {
            b.extend_from_slice(&best);
        }
        for (x, &(c, s)) in chunk.chunks_exact(dim).zip(&best) {
            let d2 = dot(x, x) + cnorm.get(c as usize).copied().unwrap_or(1.0) - 2.0 * s;
            if d2 > t2 {
                outliers += 1;
                if sample.len() < RESERVOIR * dim {
                    sample.extend_from_slice(x);
                } else {
                    let j = rng.below(outliers);
                    if j < RESERVOIR {
                        sample[j * dim..(j + 1) * dim].copy_from_slice(x);
                    }
                }
            }
        }
    }
    let mut k_new = 0;
    let mut new = Vec::new();
    if outliers >= MIN_OUTLIERS_FOR_EXPANSION {
        let rows = sample.len() / dim;
        let mpc = m.options.max_points_per_centroid.max(1);
        k_new = (outliers.div_ceil(mpc).max(1) * 4).min(rows);
        let cfg = KMeansConfig {
            k: k_new,
            iterations: m.options.kmeans_iterations,
            seed: m.options.seed ^ gen,
            max_points_per_centroid: mpc,
        };
        new = kmeans(&sample, dim, cfg, cancel, &|_| {})?;
        // The kept rows only need comparing with the new centroids: a new one wins where it
        // scores strictly higher (as in a scan of the grown codebook, where the old centroids
        // come first and win ties).
        if let Some(best) = best_rows.as_mut() {
            update_nearest(data, dim, best, &new, cents.len() / dim, cancel)?;
        }
    }
    let codes = best_rows.map(|b| b.into_iter().map(|(c, _)| c).collect());
    progress(Progress::new(Stage::Expand, k_new, k_new));
    Ok((new, codes, outliers))
}

/// Updates each row's nearest centroid `best` (code, score) for `new` centroids appended after
/// `k_old` existing ones. Same result as a scan of the grown codebook: a new centroid wins only
/// where it scores strictly higher.
fn update_nearest(
    data: &[f32],
    dim: usize,
    best: &mut [(u32, f32)],
    new: &[f32],
    k_old: usize,
    cancel: &CancelToken,
) -> Result<()> {
    for (chunk, b) in data
        .chunks(CHUNK_TOKENS * dim)
        .zip(best.chunks_mut(CHUNK_TOKENS))
    {
        if cancel.is_cancelled() {
            return Err(PlaidError::Aborted);
        }
        let nearest_new = argmax_centroids(chunk, new, dim, 1.0, None);
        for (old, (c, s)) in b.iter_mut().zip(nearest_new) {
            if s > old.1 {
                *old = ((k_old + c as usize) as u32, s);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use colbert_core::CodedError;

    /// Updating the scan's nearest centroids for appended centroids gives the same codes as
    /// scanning the grown codebook, ties included (duplicated centroids: the old one wins).
    #[test]
    fn nearest_centroid_update_equals_a_full_scan() {
        let dim = 24;
        let mut rng = Rng::new(5);
        let mut unit = |n: usize| {
            let mut v: Vec<f32> = (0..n * dim).map(|_| rng.gauss()).collect();
            colbert_core::normalize_rows(dim, &mut v);
            v
        };
        let old = unit(40);
        let mut new = unit(9);
        new[..dim].copy_from_slice(&old[3 * dim..4 * dim]); // a tie with old centroid 3
        let mut rows = unit(3000);
        rows[..dim].copy_from_slice(&old[3 * dim..4 * dim]);
        let mut best = argmax_centroids(&rows, &old, dim, 1.0, None);
        update_nearest(&rows, dim, &mut best, &new, 40, &CancelToken::new()).unwrap();
        let grown: Vec<f32> = old.iter().chain(&new).copied().collect();
        let full = argmax_centroids(&rows, &grown, dim, 1.0, None);
        assert_eq!(best, full);
        assert_eq!(best[0].0, 3);
        assert!(
            best.iter().any(|b| b.0 >= 40),
            "some rows move to new centroids"
        );
        assert_eq!(
            update_nearest(
                &rows,
                dim,
                &mut best,
                &new,
                40,
                &CancelToken::cancelled_after(0)
            )
            .unwrap_err()
            .code(),
            "ABORTED"
        );
    }
}
