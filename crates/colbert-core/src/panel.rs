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
//! value of each of a few rows and multiplies it with up to 4 eight-lane vectors of the panel
//! (8–10 accumulators, all in registers); elsewhere a portable loop the compiler vectorises. Every output is
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

    /// Query tokens rounded up to whole lanes: the length [`Self::max_scores`] needs of `best`.
    pub fn lanes(&self) -> usize {
        self.stride
    }

    /// MaxSim's inner step with an affine epilogue, without materialising the scores:
    /// `best[q] = max(best[q], max_r (bias_r[q] + rows[r] · query[q]) · scale[r])`, where
    /// `bias_r` is row `index[r]` of the `[_][nq]` table `bias` (none: 0). `best` holds
    /// [`Self::lanes`] values (lanes past `nq` are scratch); `scale` one per row.
    ///
    /// Returns `false`, changing nothing, when the inputs do not fit together (a bias index
    /// outside its table, `best` shorter than the lanes, a malformed packed-row table).
    #[must_use]
    pub fn max_scores(&self, rows: Rows<'_>, affine: &RowAffine<'_>, best: &mut [f32]) -> bool {
        let dim = self.dim;
        if dim == 0 || self.nq == 0 {
            return true;
        }
        if best.len() < self.stride {
            return false;
        }
        let n = rows.count(dim).min(affine.scale.len());
        let rows = rows.first(n, dim);
        if let Rows::Packed { lut, per_byte, .. } = rows {
            if !matches!(per_byte, 1 | 2 | 4 | 8)
                || !dim.is_multiple_of(per_byte)
                || lut.len() != 256 * per_byte
            {
                return false;
            }
        }
        if let Some((table, index)) = affine.bias {
            // Every bias row must exist: checked once here, so the kernels index freely.
            let rows_in_table = table.len() / self.nq;
            if index.len() < n || index[..n].iter().any(|&i| i >= rows_in_table) {
                return false;
            }
        }
        let best = &mut best[..self.stride];
        #[cfg(target_arch = "x86_64")]
        {
            if avx2_fma() {
                // SAFETY: AVX2 and FMA are available; rows, bias rows and `best` were checked
                // to cover what the kernel touches.
                unsafe { x86::run_all(self, rows, Sink::Max { affine, best }) };
                return true;
            }
        }
        let expanded = rows.expand(dim);
        let mut dots = vec![0.0f32; n * self.nq];
        portable(self, &expanded, &mut dots);
        for (r, d) in dots.chunks_exact(self.nq).enumerate() {
            let bias = affine
                .bias
                .map(|(t, i)| &t[i[r] * self.nq..(i[r] + 1) * self.nq]);
            let w = affine.scale[r];
            for (q, (&x, b)) in d.iter().zip(best.iter_mut()).enumerate() {
                let v = (bias.map_or(0.0, |b| b[q]) + x) * w;
                *b = b.max(v);
            }
        }
        true
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
                // reads or writes stays inside `self.qt`, `rows` and `out` (see `x86::run_all`).
                unsafe { x86::run_all(self, Rows::Dense(&rows[..n * dim]), Sink::Store(out)) };
                return;
            }
        }
        portable(self, &rows[..n * dim], out);
    }
}

/// The rows [`QueryPanel::max_scores`] scores.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// `n × dim` values, row-major.
    Dense(&'a [f32]),
    /// Rows stored as bytes, each byte standing for `per_byte` consecutive values
    /// `lut[byte * per_byte ..][..per_byte]` (a quantised codec's byte → values table), so the
    /// kernel reads the values straight from the table: nothing is expanded in memory.
    Packed {
        bytes: &'a [u8],
        lut: &'a [f32],
        per_byte: usize,
    },
}

impl<'a> Rows<'a> {
    fn row_bytes(per_byte: usize, dim: usize) -> usize {
        dim / per_byte.max(1)
    }

    fn count(&self, dim: usize) -> usize {
        match *self {
            Rows::Dense(v) => v.len() / dim,
            Rows::Packed {
                bytes, per_byte, ..
            } => bytes.len() / Self::row_bytes(per_byte, dim).max(1),
        }
    }

    fn first(self, n: usize, dim: usize) -> Rows<'a> {
        match self {
            Rows::Dense(v) => Rows::Dense(&v[..n * dim]),
            Rows::Packed {
                bytes,
                lut,
                per_byte,
            } => Rows::Packed {
                bytes: &bytes[..n * Self::row_bytes(per_byte, dim)],
                lut,
                per_byte,
            },
        }
    }

    /// The values, row-major (the portable path).
    fn expand(self, dim: usize) -> std::borrow::Cow<'a, [f32]> {
        match self {
            Rows::Dense(v) => std::borrow::Cow::Borrowed(v),
            Rows::Packed {
                bytes,
                lut,
                per_byte,
            } => {
                let mut out = Vec::with_capacity(bytes.len() * per_byte);
                for &b in bytes {
                    out.extend_from_slice(&lut[b as usize * per_byte..(b as usize + 1) * per_byte]);
                }
                debug_assert_eq!(out.len() % dim.max(1), 0);
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

/// The epilogue of [`QueryPanel::max_scores`].
#[derive(Debug, Clone, Copy)]
pub struct RowAffine<'a> {
    /// `(table, index)`: row `r`'s scores get row `index[r]` of `table` (`[_][nq]`) added.
    pub bias: Option<(&'a [f32], &'a [usize])>,
    /// Row `r`'s scores are multiplied by `scale[r]` (after the bias).
    pub scale: &'a [f32],
}

/// Where a kernel block's scores go.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Sink<'a, 'b> {
    /// `out[r * nq + q]`.
    Store(&'b mut [f32]),
    /// Folded into `best` (`lanes` long) through the affine epilogue.
    Max {
        affine: &'b RowAffine<'a>,
        best: &'b mut [f32],
    },
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
    use super::{QueryPanel, Rows, Sink, LANES};
    use std::arch::x86_64::*;

    /// Writes a block's accumulators to `sink` (a macro, so that they stay in registers: a
    /// `target_feature` function cannot be forced inline, and passing the array by reference
    /// made the compiler spill it). Expands inside an `unsafe` block of `block*`.
    macro_rules! finish {
        ($p:expr, $acc:expr, $r:expr, $q0:expr, $width:expr, $sink:expr) => {{
            let (p, acc, r, q0, width, sink) = ($p, $acc, $r, $q0, $width, $sink);
            let nq = p.nq;
            match sink {
                Sink::Store(out) => {
                    for (i, a) in acc.iter().enumerate() {
                        let o = out.as_mut_ptr().add((r + i) * nq + q0);
                        for (v, x) in a.iter().enumerate() {
                            let lanes = (width - v * LANES).min(LANES);
                            if lanes == LANES {
                                _mm256_storeu_ps(o.add(v * LANES), *x);
                            } else {
                                _mm256_maskstore_ps(o.add(v * LANES), first_lanes(lanes), *x);
                            }
                        }
                    }
                }
                Sink::Max { affine, best } => {
                    let bp = best.as_mut_ptr().add(q0);
                    for (i, a) in acc.iter().enumerate() {
                        let w = _mm256_set1_ps(*affine.scale.get_unchecked(r + i));
                        let bias = affine
                            .bias
                            .map(|(t, idx)| t.as_ptr().add(*idx.get_unchecked(r + i) * nq + q0));
                        for (v, x) in a.iter().enumerate() {
                            let lanes = (width - v * LANES).min(LANES);
                            let mut y = *x;
                            if let Some(bias) = bias {
                                let bv = if lanes == LANES {
                                    _mm256_loadu_ps(bias.add(v * LANES))
                                } else {
                                    _mm256_maskload_ps(bias.add(v * LANES), first_lanes(lanes))
                                };
                                y = _mm256_add_ps(bv, y);
                            }
                            y = _mm256_mul_ps(y, w);
                            let slot = bp.add(v * LANES);
                            _mm256_storeu_ps(slot, _mm256_max_ps(_mm256_loadu_ps(slot), y));
                        }
                    }
                }
            }
        }};
    }

    /// Whole blocks of `R` rows (`V` panel vectors): returns the first row not scored.
    /// `R × V` accumulators plus `V` panel vectors and one broadcast must fit the 16 vector
    /// registers, or accumulators spill to the stack (measured: a third of the kernel's time
    /// at 3 × 4): 2 × 4, 3 × 3, 5 × 2, 8 × 1.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const V: usize, const R: usize>(
        p: &QueryPanel,
        rows: Rows<'_>,
        n: usize,
        q0: usize,
        width: usize,
        sink: &mut Sink<'_, '_>,
        start: usize,
    ) -> usize {
        let mut r = start;
        while r + R <= n {
            // SAFETY: as for `block` (rows r..r+R exist).
            unsafe {
                match rows {
                    Rows::Dense(v) => block::<V, R>(p, v, r, q0, width, sink),
                    Rows::Packed {
                        bytes,
                        lut,
                        per_byte,
                    } => match per_byte {
                        2 => block_packed::<V, R, 2>(p, bytes, lut, r, q0, width, sink),
                        4 => block_packed::<V, R, 4>(p, bytes, lut, r, q0, width, sink),
                        8 => block_packed::<V, R, 8>(p, bytes, lut, r, q0, width, sink),
                        _ => block_packed::<V, R, 1>(p, bytes, lut, r, q0, width, sink),
                    },
                }
            };
            r += R;
        }
        r
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; `rows.len() == n * p.dim`; a `Store` sink holds `n * p.nq`
    /// values, a `Max` sink `p.stride` and its bias index covers `n` rows of its table.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run_all(p: &QueryPanel, rows: Rows<'_>, mut sink: Sink<'_, '_>) {
        let (dim, nq) = (p.dim, p.nq);
        let n = rows.count(dim);
        // Query tokens in chunks of up to 4 vectors (32 tokens), each chunk over all rows.
        let mut q0 = 0;
        while q0 < nq {
            let width = (nq - q0).min(4 * LANES);
            let vecs = width.div_ceil(LANES);
            let s = &mut sink;
            // SAFETY (for every call below): rows r..r+R exist; the panel holds `vecs` vectors
            // from column q0 in each of its `dim` rows (stride ≥ q0 + 8·vecs); the sink covers
            // columns q0..q0+width of those rows.
            unsafe {
                let r = match vecs {
                    4 => run::<4, 2>(p, rows, n, q0, width, s, 0),
                    3 => run::<3, 3>(p, rows, n, q0, width, s, 0),
                    2 => run::<2, 5>(p, rows, n, q0, width, s, 0),
                    _ => run::<1, 8>(p, rows, n, q0, width, s, 0),
                };
                match vecs {
                    4 => run::<4, 1>(p, rows, n, q0, width, s, r),
                    3 => run::<3, 1>(p, rows, n, q0, width, s, r),
                    2 => run::<2, 1>(p, rows, n, q0, width, s, r),
                    _ => run::<1, 1>(p, rows, n, q0, width, s, r),
                };
            }
            q0 += width;
        }
    }

    /// A load mask of the first `lanes` lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn first_lanes(lanes: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(lanes as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// Scores rows `r .. r + R` (dense) against query tokens `q0 .. q0 + width` (`V` vectors)
    /// into `sink`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const V: usize, const R: usize>(
        p: &QueryPanel,
        rows: &[f32],
        r: usize,
        q0: usize,
        width: usize,
        sink: &mut Sink<'_, '_>,
    ) {
        // SAFETY: the caller guarantees rows r..r+R, panel columns q0..q0+8V and sink columns
        // q0..q0+width exist (see `run_all`).
        unsafe {
            let (dim, stride) = (p.dim, p.stride);
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
            finish!(p, &acc, r, q0, width, sink);
        }
    }

    /// [`block`] for packed rows: each row byte stands for `P` values of `lut`, broadcast
    /// straight from the table (no expanded copy of the rows).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_packed<const V: usize, const R: usize, const P: usize>(
        p: &QueryPanel,
        bytes: &[u8],
        lut: &[f32],
        r: usize,
        q0: usize,
        width: usize,
        sink: &mut Sink<'_, '_>,
    ) {
        // SAFETY: as for `block`; `max_scores` checked `lut` has 256·P values and that `dim`
        // is a multiple of P, so every byte's values exist and rows are `dim / P` bytes.
        unsafe {
            let (dim, stride) = (p.dim, p.stride);
            let rb = dim / P;
            let mut acc = [[_mm256_setzero_ps(); V]; R];
            let qt = p.qt.as_ptr().add(q0);
            let base = bytes.as_ptr().add(r * rb);
            let table = lut.as_ptr();
            for jb in 0..rb {
                let mut vals = [table; R];
                for (i, v) in vals.iter_mut().enumerate() {
                    *v = table.add(*base.add(i * rb + jb) as usize * P);
                }
                for s in 0..P {
                    let qrow = qt.add((jb * P + s) * stride);
                    let mut qv = [_mm256_setzero_ps(); V];
                    for (v, x) in qv.iter_mut().enumerate() {
                        *x = _mm256_loadu_ps(qrow.add(v * LANES));
                    }
                    for (i, a) in acc.iter_mut().enumerate() {
                        let b = _mm256_broadcast_ss(&*vals[i].add(s));
                        for v in 0..V {
                            a[v] = _mm256_fmadd_ps(b, qv[v], a[v]);
                        }
                    }
                }
            }
            finish!(p, &acc, r, q0, width, sink);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `len` values `f(i · step)`: deterministic test data.
    pub(super) fn wave(len: usize, step: f32, f: fn(f32) -> f32) -> Vec<f32> {
        (0..len).map(|i| f(i as f32 * step)).collect()
    }

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
            let rows: Vec<f32> = wave(n * dim, 0.37, f32::sin);
            let query: Vec<f32> = wave(nq * dim, 0.11, f32::cos);
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
    fn max_scores_equal_scores_then_the_epilogue() {
        for &(n, nq, dim) in &[
            (7, 23, 128),
            (10, 32, 64),
            (4, 40, 16),
            (1, 5, 8),
            (13, 9, 24),
        ] {
            let rows: Vec<f32> = wave(n * dim, 0.29, f32::sin);
            let query: Vec<f32> = wave(nq * dim, 0.13, f32::cos);
            let table: Vec<f32> = wave(5 * nq, 0.7, f32::sin);
            let index: Vec<usize> = (0..n).map(|r| (r * 3) % 5).collect();
            let scale: Vec<f32> = (0..n).map(|r| 0.5 + r as f32 * 0.1).collect();
            let p = QueryPanel::new(&query, dim);
            let mut dots = vec![0.0; n * nq];
            p.scores(&rows, &mut dots);
            for bias in [None, Some((&table[..], &index[..]))] {
                let affine = RowAffine {
                    bias,
                    scale: &scale,
                };
                let mut best = vec![f32::NEG_INFINITY; p.lanes()];
                assert!(p.max_scores(Rows::Dense(&rows), &affine, &mut best));
                for q in 0..nq {
                    let want = (0..n)
                        .map(|r| {
                            let b = bias.map_or(0.0, |(t, i)| t[i[r] * nq + q]);
                            (b + dots[r * nq + q]) * scale[r]
                        })
                        .fold(f32::NEG_INFINITY, f32::max);
                    assert!(
                        (best[q] - want).abs() <= 1e-5,
                        "{n} {nq} {dim} q{q}: {} vs {want}",
                        best[q]
                    );
                }
            }
        }
    }

    #[test]
    fn packed_rows_score_as_their_expansion() {
        for per_byte in [1usize, 2, 4, 8] {
            for &(n, nq) in &[(7usize, 23usize), (11, 32), (2, 9), (1, 40)] {
                let dim = 64;
                let lut: Vec<f32> = wave(256 * per_byte, 0.173, f32::sin);
                let bytes: Vec<u8> = (0..n * dim / per_byte)
                    .map(|i| (i * 37 % 251) as u8)
                    .collect();
                let query: Vec<f32> = wave(nq * dim, 0.31, f32::cos);
                let table: Vec<f32> = wave(3 * nq, 0.9, f32::cos);
                let index: Vec<usize> = (0..n).map(|r| r % 3).collect();
                let scale: Vec<f32> = (0..n).map(|r| 1.0 - r as f32 * 0.05).collect();
                let rows = Rows::Packed {
                    bytes: &bytes,
                    lut: &lut,
                    per_byte,
                };
                let dense = rows.expand(dim);
                let p = QueryPanel::new(&query, dim);
                let affine = RowAffine {
                    bias: Some((&table, &index)),
                    scale: &scale,
                };
                let mut a = vec![f32::NEG_INFINITY; p.lanes()];
                let mut b = vec![f32::NEG_INFINITY; p.lanes()];
                assert!(p.max_scores(rows, &affine, &mut a));
                assert!(p.max_scores(Rows::Dense(&dense), &affine, &mut b));
                // A bias index outside the table is refused, not read.
                let far = vec![7usize; n];
                let bad = RowAffine {
                    bias: Some((&table, &far)),
                    scale: &scale,
                };
                assert!(!p.max_scores(rows, &bad, &mut a));
                assert_eq!(&a[..nq], &b[..nq], "per_byte {per_byte}, {n}×{nq}");
            }
        }
    }

    #[test]
    fn a_rows_scores_do_not_depend_on_its_neighbours() {
        let (n, nq, dim) = (11, 32, 128);
        let rows: Vec<f32> = wave(n * dim, 0.53, f32::sin);
        let query: Vec<f32> = wave(nq * dim, 0.07, f32::cos);
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
    use super::tests::wave;
    /// Throughput probe against the SGEMM on PLAID's centroid shape:
    /// `cargo test --release -p colbert-core panel::probe -- --nocapture`.
    #[test]
    fn panel_against_sgemm() {
        let (k, nq, dim) = (16384, 32, 128);
        let c: Vec<f32> = wave(k * dim, 0.37, f32::sin);
        let q: Vec<f32> = wave(nq * dim, 0.11, f32::cos);
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
