//! Dense kernels: dot products between many points and many rows (centroids or query tokens).
//!
//! [`dots_into`] is one SGEMM through `matrixmultiply` (via ndarray), which picks AVX2/FMA, AVX
//! or SSE2 kernels at run time; [`dots_into_tiled`] is the portable register-tiled reference
//! (4 points × 4 rows, 4-lane accumulators). They serve exhaustive MaxSim ([`crate::maxsim()`]),
//! and in the PLAID engine k-means, encoding (nearest centroid), the outlier search of
//! centroid expansion, query–centroid scoring and the exact MaxSim of its last stage.

use rayon::prelude::*;

/// Points per register tile.
const TP: usize = 4;

/// Dot products of `P` points with four rows each (a P×4 register tile, 4 lanes per
/// accumulator).
#[inline(always)]
fn tile<const P: usize>(xs: [&[f32]; P], c: &[f32], dim: usize) -> [[f32; 4]; P] {
    let (c0, rest) = c.split_at(dim);
    let (c1, rest) = rest.split_at(dim);
    let (c2, c3) = rest.split_at(dim);
    let cs = [c0, c1, c2, &c3[..dim]];
    let mut acc = [[[0.0f32; 4]; 4]; P];
    let n4 = dim / 4 * 4;
    let mut j = 0;
    while j < n4 {
        let ys: [&[f32]; 4] = [
            &cs[0][j..j + 4],
            &cs[1][j..j + 4],
            &cs[2][j..j + 4],
            &cs[3][j..j + 4],
        ];
        for p in 0..P {
            let a = &xs[p][j..j + 4];
            for ci in 0..4 {
                for l in 0..4 {
                    acc[p][ci][l] += a[l] * ys[ci][l];
                }
            }
        }
        j += 4;
    }
    let mut out = [[0.0f32; 4]; P];
    for p in 0..P {
        for ci in 0..4 {
            let v = &acc[p][ci];
            out[p][ci] = (v[0] + v[2]) + (v[1] + v[3]);
            for jj in n4..dim {
                out[p][ci] += xs[p][jj] * cs[ci][jj];
            }
        }
    }
    out
}

/// `out[i * k + c] = points[i] · centroids[c]` for `n` points and `k` centroids (`out` row
/// stride `k`): one SGEMM through `matrixmultiply` (via ndarray), which picks AVX2/FMA, AVX or
/// SSE2 kernels at run time. Each output is accumulated over `dim` in the same order wherever
/// the point sits in the batch, so a point's scores do not depend on its neighbours.
pub fn dots_into(points: &[f32], centroids: &[f32], dim: usize, out: &mut [f32]) {
    use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2};
    let k = centroids.len() / dim;
    let n = points.len() / dim;
    if k == 0 || n == 0 {
        return;
    }
    let views = (
        ArrayView2::from_shape((n, dim), &points[..n * dim]),
        ArrayView2::from_shape((k, dim), &centroids[..k * dim]),
        ArrayViewMut2::from_shape((n, k), &mut out[..n * k]),
    );
    match views {
        (Ok(a), Ok(b), Ok(mut c)) => general_mat_mul(1.0, &a, &b.t(), 0.0, &mut c),
        // Unreachable: the shapes are cut to fit above. Fall back to the portable kernel.
        _ => dots_into_tiled(points, centroids, dim, out),
    }
}

/// The portable register-tiled kernel (4 points × 4 centroids), kept as the reference and
/// fallback of [`dots_into`].
pub fn dots_into_tiled(points: &[f32], centroids: &[f32], dim: usize, out: &mut [f32]) {
    let k = centroids.len() / dim;
    let n = points.len() / dim;
    if k == 0 || n == 0 {
        return;
    }
    let k4 = k / 4 * 4;
    let mut i = 0;
    while i + TP <= n {
        let xs: [&[f32]; TP] = std::array::from_fn(|p| &points[(i + p) * dim..(i + p + 1) * dim]);
        let rows = &mut out[i * k..(i + TP) * k];
        let mut c = 0;
        while c < k4 {
            let t = tile::<TP>(xs, &centroids[c * dim..(c + 4) * dim], dim);
            for p in 0..TP {
                rows[p * k + c..p * k + c + 4].copy_from_slice(&t[p]);
            }
            c += 4;
        }
        for c in k4..k {
            let y = &centroids[c * dim..(c + 1) * dim];
            for p in 0..TP {
                rows[p * k + c] = dot(xs[p], y);
            }
        }
        i += TP;
    }
    while i < n {
        let x = &points[i * dim..(i + 1) * dim];
        let row = &mut out[i * k..(i + 1) * k];
        let mut c = 0;
        while c < k4 {
            // Same arithmetic as the full tiles, so a point's scores never depend on its
            // position in the batch.
            let t = tile::<1>([x], &centroids[c * dim..(c + 4) * dim], dim);
            row[c..c + 4].copy_from_slice(&t[0]);
            c += 4;
        }
        for c in k4..k {
            row[c] = dot(x, &centroids[c * dim..(c + 1) * dim]);
        }
        i += 1;
    }
}

/// For every point, the centroid maximising `scale · (x · c) + bias[c]` and that value.
///
/// With `scale = 1, bias = None` this is PLAID's nearest centroid (inner product on normalised
/// centroids); with `scale = 2, bias = -‖c‖²` it is the nearest centroid in L2 (k-means).
/// Parallel over blocks of points; ties go to the lowest centroid index.
pub fn argmax_centroids(
    points: &[f32],
    centroids: &[f32],
    dim: usize,
    scale: f32,
    bias: Option<&[f32]>,
) -> Vec<(u32, f32)> {
    // Blocks large enough for the SGEMM to run near peak, small enough to stay in L2.
    const POINT_BLOCK: usize = 256;
    const CENTROID_BLOCK: usize = 512;
    let n = points.len() / dim;
    let k = centroids.len() / dim;
    let mut best = vec![(0u32, f32::NEG_INFINITY); n];
    if k == 0 {
        return best;
    }
    best.par_chunks_mut(POINT_BLOCK)
        .zip(points.par_chunks(POINT_BLOCK * dim))
        .for_each(|(best, pts)| {
            let np = pts.len() / dim;
            let mut scratch = vec![0.0f32; POINT_BLOCK * CENTROID_BLOCK];
            let mut c0 = 0;
            while c0 < k {
                let c1 = (c0 + CENTROID_BLOCK).min(k);
                let w = c1 - c0;
                let s = &mut scratch[..np * w];
                dots_into(pts, &centroids[c0 * dim..c1 * dim], dim, s);
                for (row, b) in s.chunks_exact(w).zip(best.iter_mut()) {
                    for (j, &v) in row.iter().enumerate() {
                        let c = c0 + j;
                        let v = scale * v + bias.map_or(0.0, |bb| bb[c]);
                        if v > b.1 {
                            *b = (c as u32, v);
                        }
                    }
                }
                c0 = c1;
            }
        });
    best
}

/// Dot product, written so that the compiler vectorises it (eight independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for k in chunks * 8..a.len() {
        s += a[k] * b[k];
    }
    s
}

/// In-place L2 normalisation of each row, as `torch.nn.functional.normalize(p=2, eps=1e-12)`:
/// `x / max(‖x‖₂, 1e-12)`.
pub fn normalize_rows(dim: usize, data: &mut [f32]) {
    for row in data.chunks_exact_mut(dim) {
        let norm = dot(row, row).sqrt().max(1e-12);
        for v in row.iter_mut() {
            *v /= norm;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_torch_semantics() {
        let mut v = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(2, &mut v);
        assert_eq!(v, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let expect: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), expect);
    }

    #[test]
    fn dots_match_naive() {
        let dim = 13;
        let pts: Vec<f32> = (0..3 * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let cs: Vec<f32> = (0..7 * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![0.0; 21];
        dots_into(&pts, &cs, dim, &mut out);
        let mut out2 = vec![0.0; 14];
        dots_into(&pts[..2 * dim], &cs, dim, &mut out2);
        assert_eq!(&out[..14], &out2[..]);
        // Bit-identical whatever the position of a point in the batch (tile or tail).
        let many: Vec<f32> = (0..9 * dim).map(|i| (i as f32 * 0.53).sin()).collect();
        let mut all = vec![0.0; 9 * 7];
        dots_into(&many, &cs, dim, &mut all);
        for i in 0..9 {
            let mut one = vec![0.0; 7];
            dots_into(&many[i * dim..(i + 1) * dim], &cs, dim, &mut one);
            assert_eq!(&all[i * 7..i * 7 + 7], &one[..]);
        }
        for i in 0..3 {
            for c in 0..7 {
                let e: f32 = (0..dim).map(|j| pts[i * dim + j] * cs[c * dim + j]).sum();
                assert!((out[i * 7 + c] - e).abs() < 1e-4);
            }
        }
        let best = argmax_centroids(&pts, &cs, dim, 1.0, None);
        #[cfg(not(debug_assertions))]
        {
            // Throughput probe: `cargo test --release -p colbert-plaid kernels -- --nocapture`.
            let (n, k, d) = (8192, 2048, 128);
            let p: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.37).sin()).collect();
            let c: Vec<f32> = (0..k * d).map(|i| (i as f32 * 0.11).cos()).collect();
            let t = std::time::Instant::now();
            let b = argmax_centroids(&p, &c, d, 1.0, None);
            let s = t.elapsed().as_secs_f64();
            eprintln!(
                "argmax: {:.1} GFLOP/s ({})",
                2.0 * (n * k * d) as f64 / s / 1e9,
                b.len()
            );
        }
        for i in 0..3 {
            let row = &out[i * 7..i * 7 + 7];
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(row[best[i].0 as usize], m);
        }
    }
}
