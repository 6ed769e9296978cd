//! Token pooling: PyLate's `pool_embeddings_hierarchical` (pylate 1.4.0, `encode(...,
//! pool_factor=k)`), so a document keeps about `1/k` of its token vectors.
//!
//! For each document, the first `protected_tokens` rows (the CLS token) are kept as they are and
//! the other `n` rows are clustered:
//!
//! 1. `M = 1 − X·Xᵀ` in float32 (the rows' cosine distances, as PyLate computes them);
//! 2. PyLate hands the *square* `M` to `scipy.cluster.hierarchy.linkage(M, method="ward")`, which
//!    reads a 2-D array as `n` observations of `n` features: the distances clustered are the
//!    Euclidean distances between the rows of `M` (scipy's `pdist`, summed in float64 in feature
//!    order), not `M` itself;
//! 3. Ward linkage by the nearest-neighbour chain (scipy's `nn_chain`, with its tie rules), the
//!    merges sorted stably by distance and relabelled (scipy's `label`);
//! 4. `fcluster(Z, t=max(n / k, 1), criterion="maxclust")`: the lowest merge distance whose cut
//!    leaves at most `t` flat clusters, numbered in scipy's traversal order (`cluster_monocrit`);
//! 5. each cluster's rows averaged in float32, **not** re-normalised, emitted in label order, and
//!    the protected rows appended **after** them.
//!
//! Every step follows scipy's own loops and comparisons, so ties (equal distances) resolve the
//! same way; only `X·Xᵀ` is computed differently from PyTorch's SGEMM (here: each entry summed in
//! float64, rounded once), which can differ in the last bit. Documents with fewer than two rows
//! to pool are returned unchanged (PyLate raises on them).

use rayon::prelude::*;

use crate::{CancelToken, CodedError, Embeddings, EmbeddingsError, EmbeddingsView};

/// The largest pool factor accepted (a document never has more tokens than this anyway).
pub const MAX_POOL_FACTOR: usize = 65_536;

/// The most rows one document may have to be pooled: clustering holds two `n × n` matrices
/// (512 MiB at this size) and costs O(n³) (minutes per document here), as PyLate's does.
pub const MAX_POOL_ROWS: usize = 8_192;

/// Errors of [`pool`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PoolError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Embeddings(#[from] EmbeddingsError),
    #[error("pooling was aborted")]
    Aborted,
}

impl CodedError for PoolError {
    fn code(&self) -> &'static str {
        match self {
            PoolError::Invalid(_) | PoolError::Embeddings(_) => "INVALID_ARGUMENT",
            PoolError::Aborted => "ABORTED",
        }
    }
}

/// How to pool: keep about `1 / pool_factor` of each document's unprotected tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// 1 leaves documents unchanged.
    pub pool_factor: usize,
    /// Leading rows kept as they are (PyLate's default: 1, the CLS token).
    pub protected_tokens: usize,
}

impl PoolOptions {
    pub fn new(pool_factor: usize) -> Self {
        PoolOptions {
            pool_factor,
            protected_tokens: 1,
        }
    }

    fn check(&self) -> Result<(), PoolError> {
        if self.pool_factor == 0 || self.pool_factor > MAX_POOL_FACTOR {
            return Err(PoolError::Invalid(format!(
                "poolFactor must be an integer from 1 to {MAX_POOL_FACTOR}, got {}",
                self.pool_factor
            )));
        }
        Ok(())
    }
}

/// Pools every document of a batch, documents in parallel (on the calling thread's rayon pool).
/// Polls `cancel` between documents. A pool factor of 1 returns the batch unchanged.
pub fn pool(
    documents: EmbeddingsView<'_>,
    options: PoolOptions,
    cancel: &CancelToken,
) -> Result<Embeddings, PoolError> {
    options.check()?;
    let documents = EmbeddingsView::new(documents.dim, documents.offsets, documents.data)?;
    let dim = documents.dim;
    if options.pool_factor > 1 {
        let long = documents
            .offsets
            .windows(2)
            .position(|w| (w[1] - w[0]) as usize > MAX_POOL_ROWS);
        if let Some(i) = long {
            return Err(PoolError::Invalid(format!(
                "document {i} has {} token embeddings; pooling takes at most {MAX_POOL_ROWS} per \
                 document (its memory grows with the square and its time with the cube of the \
                 length): split long documents into passages first",
                documents.offsets[i + 1] - documents.offsets[i]
            )));
        }
    }
    // A document skipped because of a cancel makes the whole collection `None`.
    let items = (0..documents.len())
        .into_par_iter()
        .map(|i| (!cancel.is_cancelled()).then(|| pool_document(dim, documents.item(i), options)))
        .collect::<Option<Vec<Vec<f32>>>>()
        .ok_or(PoolError::Aborted)?;
    if cancel.is_cancelled() {
        return Err(PoolError::Aborted);
    }
    Ok(Embeddings::from_items(dim, items))
}

/// Pools one document's rows (`rows.len() / dim` of them, row-major); see the module docs.
pub fn pool_document(dim: usize, rows: &[f32], options: PoolOptions) -> Vec<f32> {
    let total = rows.len() / dim.max(1);
    let protected = options.protected_tokens.min(total);
    let n = total - protected;
    if options.pool_factor <= 1 || n < 2 {
        return rows.to_vec();
    }
    let to_pool = &rows[protected * dim..];
    let clusters = (n / options.pool_factor).max(1);
    let distances = row_distances(&cosine_distances(to_pool, dim, n), n);
    let labels = fcluster_maxclust(&ward_linkage(distances, n), n, clusters);

    let mut out = Vec::with_capacity((clusters + protected) * dim);
    let mut sum = vec![0f32; dim];
    for label in 1..=clusters {
        sum.fill(0.0);
        let mut count = 0usize;
        for (row, _) in labels.iter().enumerate().filter(|(_, &l)| l == label) {
            for (s, v) in sum.iter_mut().zip(&to_pool[row * dim..(row + 1) * dim]) {
                *s += v;
            }
            count += 1;
        }
        if count > 0 {
            out.extend(sum.iter().map(|s| s / count as f32));
        }
    }
    out.extend_from_slice(&rows[..protected * dim]);
    out
}

/// `1 − X·Xᵀ` (n × n, float32): each dot summed in float64 (four partial sums) and rounded once.
fn cosine_distances(x: &[f32], dim: usize, n: usize) -> Vec<f32> {
    let mut m = vec![0f32; n * n];
    for i in 0..n {
        let a = &x[i * dim..(i + 1) * dim];
        for j in i..n {
            let b = &x[j * dim..(j + 1) * dim];
            let mut acc = [0f64; 4];
            let mut pa = a.chunks_exact(4);
            let mut pb = b.chunks_exact(4);
            for (ca, cb) in (&mut pa).zip(&mut pb) {
                for l in 0..4 {
                    acc[l] += ca[l] as f64 * cb[l] as f64;
                }
            }
            let tail: f64 = pa
                .remainder()
                .iter()
                .zip(pb.remainder())
                .map(|(p, q)| *p as f64 * *q as f64)
                .sum();
            let dot = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
            let d = 1.0f32 - dot as f32;
            m[i * n + j] = d;
            m[j * n + i] = d;
        }
    }
    m
}

/// Index of the pair `i < j` in a condensed distance vector (scipy's `condensed_index`).
#[inline]
fn condensed(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// scipy's `pdist(M, "euclidean")` over the rows of the square float32 matrix `m`, in float64:
/// each squared difference added in feature order, then the square root. Four pairs are summed
/// side by side (independent accumulators, as scipy's own loop does), each in scipy's order.
fn row_distances(m: &[f32], n: usize) -> Vec<f64> {
    let mut d = vec![0f64; n * (n - 1) / 2];
    let mut at = 0usize;
    for i in 0..n {
        let a = &m[i * n..(i + 1) * n];
        let mut j = i + 1;
        while j + 4 <= n {
            let rows = [
                &m[j * n..(j + 1) * n],
                &m[(j + 1) * n..(j + 2) * n],
                &m[(j + 2) * n..(j + 3) * n],
                &m[(j + 3) * n..(j + 4) * n],
            ];
            let mut s = [0f64; 4];
            for (f, &p) in a.iter().enumerate() {
                for l in 0..4 {
                    let diff = (p as f64 - rows[l][f] as f64).abs();
                    s[l] += diff * diff;
                }
            }
            for l in 0..4 {
                d[at + l] = s[l].sqrt();
            }
            at += 4;
            j += 4;
        }
        for j in j..n {
            let b = &m[j * n..(j + 1) * n];
            let mut s = 0f64;
            for (p, q) in a.iter().zip(b) {
                let diff = (*p as f64 - *q as f64).abs();
                s += diff * diff;
            }
            d[at] = s.sqrt();
            at += 1;
        }
    }
    d
}

/// One merge of the linkage matrix: clusters `a < b` joined at `distance` into `size` points.
#[derive(Debug, Clone, Copy)]
struct Merge {
    a: usize,
    b: usize,
    distance: f64,
    size: usize,
}

/// The Lance–Williams update for Ward linkage, as scipy's `_ward` evaluates it.
#[inline]
fn ward(d_xi: f64, d_yi: f64, d_xy: f64, size_x: usize, size_y: usize, size_i: usize) -> f64 {
    let t = 1.0 / (size_x + size_y + size_i) as f64;
    ((size_i + size_x) as f64 * t * d_xi * d_xi + (size_i + size_y) as f64 * t * d_yi * d_yi
        - size_i as f64 * t * d_xy * d_xy)
        .sqrt()
}

/// scipy's `nn_chain` with Ward's update, then its stable sort by distance and `label`.
fn ward_linkage(mut d: Vec<f64>, n: usize) -> Vec<Merge> {
    let mut z = Vec::with_capacity(n - 1);
    let mut size = vec![1usize; n];
    let mut chain = vec![0usize; n];
    let mut chain_len = 0usize;
    let mut y = 0usize;
    for _ in 0..n - 1 {
        if chain_len == 0 {
            chain_len = 1;
            chain[0] = size.iter().position(|&s| s > 0).unwrap_or(0);
        }
        let mut x;
        let mut current_min;
        loop {
            x = chain[chain_len - 1];
            // Prefer the previous element of the chain, so the chain cannot cycle.
            if chain_len > 1 {
                y = chain[chain_len - 2];
                current_min = d[condensed(n, x, y)];
            } else {
                current_min = f64::INFINITY;
            }
            for (i, &s) in size.iter().enumerate() {
                if s == 0 || i == x {
                    continue;
                }
                let dist = d[condensed(n, x, i)];
                if dist < current_min {
                    current_min = dist;
                    y = i;
                }
            }
            if chain_len > 1 && y == chain[chain_len - 2] {
                break;
            }
            chain[chain_len] = y;
            chain_len += 1;
        }
        chain_len -= 2;
        let (x, y) = if x > y { (y, x) } else { (x, y) };
        let (nx, ny) = (size[x], size[y]);
        z.push(Merge {
            a: x,
            b: y,
            distance: current_min,
            size: nx + ny,
        });
        size[x] = 0;
        size[y] = nx + ny;
        for i in 0..n {
            let ni = size[i];
            if ni == 0 || i == y {
                continue;
            }
            let updated = ward(
                d[condensed(n, i, x)],
                d[condensed(n, i, y)],
                current_min,
                nx,
                ny,
                ni,
            );
            d[condensed(n, i, y)] = updated;
        }
    }
    // numpy's stable argsort (NaN last), then union-find relabelling.
    z.sort_by(|p, q| match (p.distance.is_nan(), q.distance.is_nan()) {
        (false, false) => p
            .distance
            .partial_cmp(&q.distance)
            .unwrap_or(std::cmp::Ordering::Equal),
        (a, b) => a.cmp(&b),
    });
    label(&mut z, n);
    z
}

/// scipy's `label`: turns point indices of the sorted merges into cluster ids (`n + k` for the
/// cluster made by merge `k`) and recomputes the sizes.
fn label(z: &mut [Merge], n: usize) {
    let mut parent: Vec<usize> = (0..2 * n - 1).collect();
    let mut sizes = vec![1usize; 2 * n - 1];
    let mut next = n;
    let find = |parent: &mut Vec<usize>, mut x: usize| {
        let mut p = x;
        while parent[x] != x {
            x = parent[x];
        }
        while parent[p] != x {
            let up = parent[p];
            parent[p] = x;
            p = up;
        }
        x
    };
    for m in z.iter_mut() {
        let (xr, yr) = (find(&mut parent, m.a), find(&mut parent, m.b));
        (m.a, m.b) = if xr < yr { (xr, yr) } else { (yr, xr) };
        parent[xr] = next;
        parent[yr] = next;
        sizes[next] = sizes[xr] + sizes[yr];
        m.size = sizes[next];
        next += 1;
    }
}

/// scipy's `fcluster(Z, t, criterion="maxclust")`: flat cluster labels `1..` of the `n` points.
fn fcluster_maxclust(z: &[Merge], n: usize, max_nc: usize) -> Vec<usize> {
    if max_nc >= n {
        return (1..=n).collect();
    }
    let mc = max_dist_per_cluster(z, n);
    let root_id = 2 * n - 2;
    let mut stack = vec![0usize; n];
    let mut visited = vec![false; 2 * n - 1];
    // Binary search for the lowest merge distance whose cut leaves at most `max_nc` clusters
    // (scipy's `cluster_maxclust_monocrit`; index -1 stands for minus infinity).
    let (mut lower, mut upper) = (-1isize, n as isize - 1);
    while upper - lower > 1 {
        let i = (lower + upper) >> 1;
        let thresh = mc[i as usize];
        visited.fill(false);
        let mut nc = 0usize;
        let mut k = 0isize;
        stack[0] = root_id;
        'walk: while k >= 0 {
            let root = stack[k as usize] - n;
            let (lc, rc) = (z[root].a, z[root].b);
            if mc[root] <= thresh {
                nc += 1;
                if nc > max_nc {
                    break;
                }
                k -= 1;
                visited[lc] = true;
                visited[rc] = true;
                continue;
            }
            for child in [lc, rc] {
                if !visited[child] {
                    visited[child] = true;
                    if child >= n {
                        k += 1;
                        stack[k as usize] = child;
                        continue 'walk;
                    }
                    nc += 1;
                    if nc > max_nc {
                        break 'walk;
                    }
                }
            }
            k -= 1;
        }
        if nc > max_nc {
            lower = i;
        } else {
            upper = i;
        }
    }
    cluster_monocrit(z, &mc, mc[upper as usize], n)
}

/// scipy's `get_max_dist_for_each_cluster`: per merge, the largest distance in its subtree.
fn max_dist_per_cluster(z: &[Merge], n: usize) -> Vec<f64> {
    let mut md = vec![0f64; n - 1];
    let mut visited = vec![false; 2 * n - 1];
    let mut stack = vec![2 * n - 2];
    while let Some(&top) = stack.last() {
        let root = top - n;
        let (lc, rc) = (z[root].a, z[root].b);
        if lc >= n && !visited[lc] {
            visited[lc] = true;
            stack.push(lc);
            continue;
        }
        if rc >= n && !visited[rc] {
            visited[rc] = true;
            stack.push(rc);
            continue;
        }
        let mut max = z[root].distance;
        for child in [lc, rc] {
            if child >= n && md[child - n] > max {
                max = md[child - n];
            }
        }
        md[root] = max;
        stack.pop();
    }
    md
}

/// scipy's `cluster_monocrit`: the flat clusters below `cutoff`, numbered in its depth-first
/// order (left before right).
fn cluster_monocrit(z: &[Merge], mc: &[f64], cutoff: f64, n: usize) -> Vec<usize> {
    let mut t = vec![0usize; n];
    let mut visited = vec![false; 2 * n - 1];
    let mut stack = vec![2 * n - 2];
    let mut n_cluster = 0usize;
    let mut leader: Option<usize> = None;
    while let Some(&top) = stack.last() {
        let root = top - n;
        let (lc, rc) = (z[root].a, z[root].b);
        if leader.is_none() && mc[root] <= cutoff {
            leader = Some(root);
            n_cluster += 1;
        }
        if lc >= n && !visited[lc] {
            visited[lc] = true;
            stack.push(lc);
            continue;
        }
        if rc >= n && !visited[rc] {
            visited[rc] = true;
            stack.push(rc);
            continue;
        }
        for child in [lc, rc] {
            if child < n {
                if leader.is_none() {
                    n_cluster += 1;
                }
                t[child] = n_cluster;
            }
        }
        if leader == Some(root) {
            leader = None;
        }
        stack.pop();
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn two_tight_groups_pool_to_their_means_with_cls_last() {
        // CLS, then two groups of two nearly equal vectors.
        let cls = unit(&[0.0, 0.0, 1.0]);
        let a1 = unit(&[1.0, 0.01, 0.0]);
        let a2 = unit(&[1.0, -0.01, 0.0]);
        let b1 = unit(&[0.01, 1.0, 0.0]);
        let b2 = unit(&[-0.01, 1.0, 0.0]);
        let rows: Vec<f32> = [&cls, &a1, &b1, &a2, &b2]
            .iter()
            .flat_map(|r| r.to_vec())
            .collect();
        let out = pool_document(3, &rows, PoolOptions::new(2));
        assert_eq!(out.len(), 3 * 3);
        let mean = |p: &[f32], q: &[f32]| -> Vec<f32> {
            p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect()
        };
        // scipy numbers the cluster holding point 0 (a1) first here.
        let expect: Vec<f32> = [mean(&a1, &a2), mean(&b1, &b2), cls].concat();
        for (o, e) in out.iter().zip(&expect) {
            assert!((o - e).abs() < 1e-6, "{out:?} vs {expect:?}");
        }
    }

    #[test]
    fn short_documents_and_factor_one_are_unchanged() {
        let rows = vec![1.0f32, 0.0, 0.0, 1.0];
        assert_eq!(pool_document(2, &rows, PoolOptions::new(2)), rows);
        let three = vec![1.0f32, 0.0, 0.0, 1.0, 0.6, 0.8];
        assert_eq!(pool_document(2, &three, PoolOptions::new(1)), three);
        let e = Embeddings::from_items(2, vec![rows.clone(), three.clone()]);
        let none = CancelToken::new();
        assert_eq!(pool(e.view(), PoolOptions::new(1), &none).unwrap(), e);
    }

    #[test]
    fn bad_factors_and_cancellation_are_errors() {
        let e = Embeddings::from_items(2, vec![vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]]);
        let none = CancelToken::new();
        let err = pool(e.view(), PoolOptions::new(0), &none).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        let long = Embeddings::from_items(1, vec![vec![1.0; MAX_POOL_ROWS + 1]]);
        let err = pool(long.view(), PoolOptions::new(2), &none).unwrap_err();
        assert!(err.to_string().contains("at most 8192"), "{err}");
        assert!(pool(long.view(), PoolOptions::new(1), &none).is_ok());
        let cancelled = CancelToken::new();
        cancelled.cancel();
        assert_eq!(
            pool(e.view(), PoolOptions::new(2), &cancelled).unwrap_err(),
            PoolError::Aborted
        );
    }

    #[test]
    fn every_label_is_used_and_clusters_never_exceed_the_target() {
        // Pseudo-random unit vectors, many sizes and factors: labels are 1..=m with m ≤ target.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for n in 2..40usize {
            let x: Vec<f32> = (0..n)
                .flat_map(|_| unit(&[next(), next(), next(), next()]))
                .collect();
            let d = row_distances(&cosine_distances(&x, 4, n), n);
            let z = ward_linkage(d, n);
            for k in 2..5 {
                let target = (n / k).max(1);
                let labels = fcluster_maxclust(&z, n, target);
                let m = *labels.iter().max().unwrap();
                assert!(m <= target, "n {n} k {k}: {m} clusters > {target}");
                assert!(
                    (1..=m).all(|l| labels.contains(&l)),
                    "n {n} k {k}: {labels:?}"
                );
            }
        }
    }
}
