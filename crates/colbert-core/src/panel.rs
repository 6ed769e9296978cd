//! Row scoring against one query without per-call packing: the query is laid out once as a
//! transposed, lane-padded panel ([`QueryPanel`]); then any number of row matrices (the
//! codebook's centroids, a document's residual rows) are scored against it straight from
//! where they lie, row-major, with `out[r * nq + q] = rows[r] · query[q]`.
//!
//! A general SGEMM (`matrixmultiply`) packs both operands on every call; for PLAID's shapes
//! (a 32-token query against 16,384 centroids or a few hundred document tokens) the packing of
//! the large operand is pure overhead: its rows are read once. Here the small operand (the
//! query, 16 KiB at 32 × 128) is the one prepared, and it stays in L1.
//!
//! On x86-64 with AVX2 and FMA (detected at run time) a register-blocked kernel broadcasts one
//! value of each of 3 rows and multiplies it with 4 eight-lane vectors of the panel (12
//! accumulators); elsewhere a portable loop the compiler vectorises. Every output is
//! accumulated over `dim` in order, one fused (or unfused, portable) multiply–add per element,
//! so a row's scores never depend on the rows scored with it.

/// Lanes per vector in the panel (AVX2: eight f32).
const LANES: usize = 8;

/// A query prepared for [`QueryPanel::scores`]: `qt[j * stride + q] = query[q][j]`, with `stride`
/// the number of query tokens rounded up to a multiple of eight (padding lanes are zero).
#[derive(Debug, Clone)]
pub struct QueryPanel {
    qt: Vec<f32>,
    nq: usize,
    stride: usize,
    dim: usize,
}

impl QueryPanel {
    /// Lays out `query` (`nq × dim`, row-major).
    pub fn new(query: &[f32], dim: usize) -> Self {
        let nq = query.len().checked_div(dim).unwrap_or(0);
        let stride = nq.div_ceil(LANES) * LANES;
        let mut qt = vec![0.0f32; dim * stride];
        for (q, row) in query.chunks_exact(dim.max(1)).take(nq).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                qt[j * stride + q] = v;
            }
        }
        QueryPanel {
            qt,
            nq,
            stride,
            dim,
        }
    }

    /// Query tokens.
    pub fn nq(&self) -> usize {
        self.nq
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `out[r * nq + q] = rows[r] · query[q]` for every row of `rows` (`n × dim`); `out` must
    /// hold `n * nq` values.
    pub fn scores(&self, rows: &[f32], out: &mut [f32]) {
        let dim = self.dim;
        if dim == 0 || self.nq == 0 {
            return;
        }
        let n = rows.len() / dim;
        let out = &mut out[..n * self.nq];
        #[cfg(target_arch = "x86_64")]
        {
            if avx2_fma() {
                // SAFETY: AVX2 and FMA are available (checked above); every pointer the kernel
                // reads or writes stays inside `self.qt`, `rows` and `out` (see `x86::scores`).
                unsafe { x86::scores(self, &rows[..n * dim], out) };
                return;
            }
        }
        portable(self, &rows[..n * dim], out);
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// The reference: per row, per query token, `Σ_j row[j] · q[j]` accumulated in order over `j`
/// in lanes of the panel (the same order as the AVX2 kernel, without fusing).
fn portable(p: &QueryPanel, rows: &[f32], out: &mut [f32]) {
    let (dim, nq, stride) = (p.dim, p.nq, p.stride);
    if dim == 0 || nq == 0 {
        return;
    }
    let mut acc = vec![0.0f32; stride];
    for (row, o) in rows.chunks_exact(dim).zip(out.chunks_exact_mut(nq)) {
        acc.fill(0.0);
        for (j, &x) in row.iter().enumerate() {
            let qrow = &p.qt[j * stride..(j + 1) * stride];
            for (a, &q) in acc.iter_mut().zip(qrow) {
                *a += x * q;
            }
        }
        o.copy_from_slice(&acc[..nq]);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{QueryPanel, LANES};
    use std::arch::x86_64::*;

    /// Rows per register block (3 rows × 4 vectors = 12 accumulators + 4 panel vectors).
    const ROWS: usize = 3;

    /// # Safety
    /// The CPU has AVX2 and FMA; `rows.len() == n * p.dim` and `out.len() == n * p.nq`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores(p: &QueryPanel, rows: &[f32], out: &mut [f32]) {
        let (dim, nq) = (p.dim, p.nq);
        let n = rows.len() / dim;
        // Query tokens in chunks of up to 4 vectors (32 tokens), each chunk over all rows.
        let mut q0 = 0;
        while q0 < nq {
            let width = (nq - q0).min(4 * LANES);
            let vecs = width.div_ceil(LANES);
            let mut r = 0;
            // SAFETY (for every call below): rows r..r+R exist; the panel holds `vecs` vectors
            // from column q0 in each of its `dim` rows (stride ≥ q0 + 8·vecs); the kernel
            // writes `width` values at out[row * nq + q0 ..].
            unsafe {
                while r + ROWS <= n {
                    match vecs {
                        4 => block::<4, ROWS>(p, rows, r, q0, width, out),
                        3 => block::<3, ROWS>(p, rows, r, q0, width, out),
                        2 => block::<2, ROWS>(p, rows, r, q0, width, out),
                        _ => block::<1, ROWS>(p, rows, r, q0, width, out),
                    }
                    r += ROWS;
                }
                while r < n {
                    match vecs {
                        4 => block::<4, 1>(p, rows, r, q0, width, out),
                        3 => block::<3, 1>(p, rows, r, q0, width, out),
                        2 => block::<2, 1>(p, rows, r, q0, width, out),
                        _ => block::<1, 1>(p, rows, r, q0, width, out),
                    }
                    r += 1;
                }
            }
            q0 += width;
        }
    }

    /// Scores rows `r .. r + R` against query tokens `q0 .. q0 + width` (`V` vectors).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const V: usize, const R: usize>(
        p: &QueryPanel,
        rows: &[f32],
        r: usize,
        q0: usize,
        width: usize,
        out: &mut [f32],
    ) {
        // SAFETY: the caller guarantees rows r..r+R, panel columns q0..q0+8V and output
        // columns q0..q0+width exist (see `scores`).
        unsafe {
            let (dim, nq, stride) = (p.dim, p.nq, p.stride);
            let mut acc = [[_mm256_setzero_ps(); V]; R];
            let qt = p.qt.as_ptr().add(q0);
            let base = rows.as_ptr().add(r * dim);
            for j in 0..dim {
                let qrow = qt.add(j * stride);
                let mut qv = [_mm256_setzero_ps(); V];
                for (v, x) in qv.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(qrow.add(v * LANES));
                }
                for (i, a) in acc.iter_mut().enumerate() {
                    let b = _mm256_broadcast_ss(&*base.add(i * dim + j));
                    for v in 0..V {
                        a[v] = _mm256_fmadd_ps(b, qv[v], a[v]);
                    }
                }
            }
            for (i, a) in acc.iter().enumerate() {
                let o = out.as_mut_ptr().add((r + i) * nq + q0);
                for (v, x) in a.iter().enumerate() {
                    let lanes = (width - v * LANES).min(LANES);
                    if lanes == LANES {
                        _mm256_storeu_ps(o.add(v * LANES), *x);
                    } else {
                        let mut tmp = [0.0f32; LANES];
                        _mm256_storeu_ps(tmp.as_mut_ptr(), *x);
                        std::ptr::copy_nonoverlapping(tmp.as_ptr(), o.add(v * LANES), lanes);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn naive(rows: &[f32], query: &[f32], dim: usize) -> Vec<f32> {
        let nq = query.len() / dim;
        rows.chunks_exact(dim)
            .flat_map(|r| {
                query
                    .chunks_exact(dim)
                    .map(|q| {
                        r.iter()
                            .zip(q)
                            .map(|(a, b)| (*a as f64) * (*b as f64))
                            .sum::<f64>() as f32
                    })
                    .collect::<Vec<_>>()
            })
            .take(rows.len() / dim * nq)
            .collect()
    }

    #[test]
    fn scores_match_naive_for_every_shape() {
        for &(n, nq, dim) in &[
            (1, 1, 1),
            (7, 32, 128),
            (5, 33, 64),
            (4, 8, 16),
            (10, 17, 24),
            (3, 40, 128),
            (0, 5, 8),
            (9, 0, 8),
        ] {
            let rows: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let query: Vec<f32> = (0..nq * dim).map(|i| (i as f32 * 0.11).cos()).collect();
            let p = QueryPanel::new(&query, dim);
            assert_eq!(p.nq(), nq);
            let mut out = vec![f32::NAN; n * nq];
            p.scores(&rows, &mut out);
            let mut port = vec![f32::NAN; n * nq];
            portable(&p, &rows, &mut port);
            for ((a, b), e) in out.iter().zip(&port).zip(naive(&rows, &query, dim)) {
                assert!(
                    (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{n} {nq} {dim}: {a} vs {e}"
                );
                assert!(
                    (b - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{n} {nq} {dim}: {b} vs {e}"
                );
            }
        }
    }

    #[test]
    fn a_rows_scores_do_not_depend_on_its_neighbours() {
        let (n, nq, dim) = (11, 32, 128);
        let rows: Vec<f32> = (0..n * dim).map(|i| (i as f32 * 0.53).sin()).collect();
        let query: Vec<f32> = (0..nq * dim).map(|i| (i as f32 * 0.07).cos()).collect();
        let p = QueryPanel::new(&query, dim);
        let mut all = vec![0.0; n * nq];
        p.scores(&rows, &mut all);
        for r in 0..n {
            let mut one = vec![0.0; nq];
            p.scores(&rows[r * dim..(r + 1) * dim], &mut one);
            assert_eq!(&all[r * nq..(r + 1) * nq], &one[..], "row {r}");
        }
    }
}

#[cfg(all(test, not(debug_assertions)))]
#[allow(clippy::unwrap_used)]
mod probe {
    /// Throughput probe against the SGEMM on PLAID's centroid shape:
    /// `cargo test --release -p colbert-core panel::probe -- --nocapture`.
    #[test]
    fn panel_against_sgemm() {
        let (k, nq, dim) = (16384, 32, 128);
        let c: Vec<f32> = (0..k * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let q: Vec<f32> = (0..nq * dim).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![0.0f32; k * nq];
        let flop = 2.0 * (k * nq * dim) as f64;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                let p = super::QueryPanel::new(&q, dim);
                p.scores(&c, &mut out);
            }
            let panel = flop * 10.0 / t.elapsed().as_secs_f64() / 1e9;
            let t = std::time::Instant::now();
            for _ in 0..10 {
                for (o, cs) in out.chunks_mut(64 * nq).zip(c.chunks(64 * dim)) {
                    crate::kernels::dots_into(cs, &q, dim, o);
                }
            }
            let sgemm = flop * 10.0 / t.elapsed().as_secs_f64() / 1e9;
            eprintln!(
                "one thread: panel {panel:.1} GFLOP/s, sgemm (64-row blocks) {sgemm:.1} GFLOP/s"
            );
        }
    }
}
