//! Seeded k-means as PLAID runs it: document sampling, the `K` heuristic, point subsampling to
//! at most `K × max_points_per_centroid`, random-point initialisation, Lloyd iterations in
//! squared L2, empty clusters re-seeded with random points, and L2-normalised output.

use crate::error::{PlaidError, Result};
use crate::rng::Rng;
use colbert_core::kernels::{argmax_centroids, dot};
use colbert_core::CancelToken;

/// Documents sampled for k-means: `min(1 + 16·sqrt(120·N), N)` (ColBERT `_sample_pids`).
pub fn sample_docs_count(n_docs: usize) -> usize {
    let s = 16.0 * (120.0 * n_docs as f64).sqrt();
    (1 + s as usize).min(n_docs)
}

/// `K = 2^floor(log2(16·sqrt(E)))` for `E` estimated embeddings (at least 1).
pub fn num_centroids_for(estimated_embeddings: f64) -> usize {
    let x = 16.0 * estimated_embeddings.max(1.0).sqrt();
    1usize << (x.log2().floor().max(0.0) as u32)
}

/// Parameters of one k-means run.
#[derive(Debug, Clone, Copy)]
pub struct KMeansConfig {
    pub k: usize,
    pub iterations: usize,
    pub seed: u64,
    pub max_points_per_centroid: usize,
}

/// Runs k-means on row-major `data` (`dim` columns) and returns `k` L2-normalised centroids
/// (fewer rows than `k` are an error: callers clamp `k` to the number of points).
/// `cancel` is polled between iterations; `on_iteration(i)` reports finished iterations.
pub fn kmeans(
    data: &[f32],
    dim: usize,
    cfg: KMeansConfig,
    cancel: &CancelToken,
    on_iteration: &(dyn Fn(usize) + Sync),
) -> Result<Vec<f32>> {
    kmeans_rows(data, None, dim, cfg, cancel, on_iteration)
}

/// Rows assigned per parallel job (gathered into a per-job buffer when `rows` is given).
const ASSIGN_CHUNK: usize = 4096;

/// [`kmeans`] over the rows `rows` of `data` (all rows when `None`), read in place: the points
/// are never copied as a whole, so memory is 16 bytes per point (row number, assignment) plus
/// one chunk per thread, whether `data` is in memory or a memory-mapped spill file. Same result
/// as copying the rows first (assignment is per row; sums run in row order).
pub fn kmeans_rows(
    data: &[f32],
    rows: Option<&[usize]>,
    dim: usize,
    cfg: KMeansConfig,
    cancel: &CancelToken,
    on_iteration: &(dyn Fn(usize) + Sync),
) -> Result<Vec<f32>> {
    use rayon::prelude::*;

    let all = data.len() / dim.max(1);
    let n = rows.map_or(all, <[usize]>::len);
    let k = cfg.k;
    if k == 0 || n < k {
        return Err(PlaidError::invalid(format!(
            "k-means needs at least k = {k} points, got {n}"
        )));
    }
    if rows.is_some_and(|r| r.iter().any(|&i| i >= all)) {
        return Err(PlaidError::Internal("k-means row out of range".into()));
    }
    let mut rng = Rng::new(cfg.seed);
    // Subsample to at most k * max_points_per_centroid points (as row numbers).
    let cap = k.saturating_mul(cfg.max_points_per_centroid.max(1));
    let owned: Vec<usize>;
    let points: Option<&[usize]> = if n > cap {
        let mut idx = rng.sample_indices(n, cap);
        idx.sort_unstable();
        owned = match rows {
            Some(r) => idx.into_iter().map(|i| r[i]).collect(),
            None => idx,
        };
        Some(&owned)
    } else {
        rows
    };
    let n = points.map_or(all, <[usize]>::len);
    let row = |i: usize| -> &[f32] {
        let r = points.map_or(i, |p| p[i]);
        &data[r * dim..(r + 1) * dim]
    };
    let mut centroids = Vec::with_capacity(k * dim);
    for i in rng.sample_indices(n, k) {
        centroids.extend_from_slice(row(i));
    }
    let mut sums = vec![0.0f64; k * dim];
    let mut counts = vec![0usize; k];
    let mut assign: Vec<(u32, f32)> = Vec::new();
    for it in 0..cfg.iterations {
        if cancel.is_cancelled() {
            return Err(PlaidError::Aborted);
        }
        let bias: Vec<f32> = centroids.chunks_exact(dim).map(|c| -dot(c, c)).collect();
        match points {
            None => assign = argmax_centroids(data, &centroids, dim, 2.0, Some(&bias)),
            Some(p) => {
                // Written in place, chunk by chunk: no second copy of the assignments.
                assign.resize(n, (0, 0.0));
                assign
                    .par_chunks_mut(ASSIGN_CHUNK)
                    .zip(p.par_chunks(ASSIGN_CHUNK))
                    .for_each_init(Vec::new, |buf: &mut Vec<f32>, (out, chunk)| {
                        buf.clear();
                        for &r in chunk {
                            buf.extend_from_slice(&data[r * dim..(r + 1) * dim]);
                        }
                        out.copy_from_slice(&argmax_centroids(
                            buf,
                            &centroids,
                            dim,
                            2.0,
                            Some(&bias),
                        ));
                    });
            }
        }
        sums.fill(0.0);
        counts.fill(0);
        for (i, &(c, _)) in assign.iter().enumerate() {
            let c = c as usize;
            counts[c] += 1;
            for (s, v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row(i)) {
                *s += *v as f64;
            }
        }
        for c in 0..k {
            let dst = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                let i = rng.below(n);
                dst.copy_from_slice(row(i));
            } else {
                let inv = 1.0 / counts[c] as f64;
                for (r, s) in dst.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *r = (*s * inv) as f32;
                }
            }
        }
        on_iteration(it + 1);
    }
    colbert_core::normalize_rows(dim, &mut centroids);
    Ok(centroids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn blobs(seed: u64, dim: usize, centers: usize, per: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let cs: Vec<f32> = (0..centers * dim).map(|_| rng.gauss()).collect();
        let mut v = vec![];
        for c in 0..centers {
            for _ in 0..per {
                for j in 0..dim {
                    v.push(cs[c * dim + j] + 0.05 * rng.gauss());
                }
            }
        }
        v
    }

    #[test]
    fn heuristics_match_colbert() {
        assert_eq!(num_centroids_for(1e5), 4096);
        assert_eq!(num_centroids_for(1e6), 8192);
        assert_eq!(num_centroids_for(1e7), 32768);
        assert_eq!(num_centroids_for(1e8), 131072);
        assert_eq!(sample_docs_count(5183), 5183);
        assert_eq!(sample_docs_count(57638), 42079);
        assert_eq!(sample_docs_count(522931), 126746);
    }

    #[test]
    fn deterministic_for_a_seed_and_normalised() {
        let dim = 8;
        let data = blobs(3, dim, 5, 40);
        let cfg = KMeansConfig {
            k: 5,
            iterations: 6,
            seed: 9,
            max_points_per_centroid: 256,
        };
        let a = kmeans(&data, dim, cfg, &CancelToken::new(), &|_| {}).unwrap();
        let b = kmeans(&data, dim, cfg, &CancelToken::new(), &|_| {}).unwrap();
        assert_eq!(a, b);
        for c in a.chunks_exact(dim) {
            assert!((dot(c, c) - 1.0).abs() < 1e-5);
        }
        // Different thread pools give the same answer.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let c = pool.install(|| kmeans(&data, dim, cfg, &CancelToken::new(), &|_| {}).unwrap());
        assert_eq!(a, c);
        // Reading the rows in place (by row number) gives the same centroids as a copy.
        let rows: Vec<usize> = (0..data.len() / dim).rev().step_by(2).collect();
        let copy: Vec<f32> = rows
            .iter()
            .flat_map(|&r| data[r * dim..(r + 1) * dim].to_vec())
            .collect();
        let by_copy = kmeans(&copy, dim, cfg, &CancelToken::new(), &|_| {}).unwrap();
        let in_place =
            kmeans_rows(&data, Some(&rows), dim, cfg, &CancelToken::new(), &|_| {}).unwrap();
        assert_eq!(by_copy, in_place);
        let other = KMeansConfig { seed: 10, ..cfg };
        let d = kmeans(&data, dim, other, &CancelToken::new(), &|_| {}).unwrap();
        assert_eq!(d.len(), a.len());
    }

    #[test]
    fn subsamples_and_cancels() {
        let dim = 4;
        let data = blobs(1, dim, 4, 100);
        let cfg = KMeansConfig {
            k: 4,
            iterations: 3,
            seed: 1,
            max_points_per_centroid: 10,
        };
        assert_eq!(
            kmeans(&data, dim, cfg, &CancelToken::new(), &|_| {})
                .unwrap()
                .len(),
            16
        );
        assert!(matches!(
            kmeans(&data, dim, cfg, &CancelToken::cancelled_after(0), &|_| {}),
            Err(PlaidError::Aborted)
        ));
        let too_many = KMeansConfig { k: 1000, ..cfg };
        assert!(kmeans(&data, dim, too_many, &CancelToken::new(), &|_| {}).is_err());
    }
}
