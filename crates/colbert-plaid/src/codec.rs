//! PLAID's residual codec: nearest-centroid codes plus `nbits`-bit scalar-quantised residuals.
//!
//! * Training ([`ResidualCodec::train`]): residuals of held-out vectors against their nearest
//!   centroid, flattened over all dimensions; bucket cutoffs are the quantiles at `i / 2^nbits`
//!   (`i = 1..2^nbits-1`), bucket weights the quantiles at `(i + 0.5) / 2^nbits`
//!   (`i = 0..2^nbits-1`), with linear interpolation as `torch.quantile`.
//! * Encoding: bucket `b_j` = number of cutoffs strictly below `r_j` (`torch.bucketize`,
//!   `right=False`); the `nbits` bits of each `b_j` are emitted LSB first, dimension after
//!   dimension, and packed 8 per byte MSB first (numpy `packbits`).
//! * Decoding: a 256-entry table maps each byte to its `8 / nbits` bucket weights; the vector is
//!   `centroid + weights`, then L2-normalised.

use std::path::Path;

use crate::error::{PlaidError, Result};
use crate::format::{Container, ContainerWriter, FileRef, Kind};
use crate::manifest::Manifest;
use crate::segment::{Codes, Segment};
use crate::storage::unique_name;

/// A trained codec (cutoffs, weights) and its byte → weights lookup table.
#[derive(Debug, Clone)]
pub struct ResidualCodec {
    nbits: u8,
    dim: usize,
    cutoffs: Vec<f32>,
    weights: Vec<f32>,
    /// `lut[byte * per_byte + slot]`: the weight of the `slot`-th dimension stored in `byte`.
    lut: Vec<f32>,
}

/// Checks `nbits ∈ {1, 2, 4}` and that a row packs into whole bytes.
pub fn check_nbits(nbits: u8, dim: usize) -> Result<()> {
    if !matches!(nbits, 1 | 2 | 4) {
        return Err(PlaidError::invalid(format!(
            "nbits must be 1, 2 or 4, got {nbits}"
        )));
    }
    if dim == 0 || !(dim * nbits as usize).is_multiple_of(8) {
        return Err(PlaidError::invalid(format!(
            "dim {dim} times nbits {nbits} must be a positive multiple of 8"
        )));
    }
    Ok(())
}

/// `torch.quantile` (linear interpolation) of sorted values at `q ∈ [0, 1]`.
fn quantile_sorted(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Quantiles of arbitrary values (sorts a copy).
pub(crate) fn quantiles(values: &[f32], qs: &[f64]) -> Vec<f32> {
    let mut v = values.to_vec();
    v.sort_unstable_by(f32::total_cmp);
    qs.iter().map(|&q| quantile_sorted(&v, q)).collect()
}

impl ResidualCodec {
    /// Builds a codec from stored cutoffs (`2^nbits - 1`) and weights (`2^nbits`).
    pub fn new(nbits: u8, dim: usize, cutoffs: Vec<f32>, weights: Vec<f32>) -> Result<Self> {
        check_nbits(nbits, dim)?;
        let b = 1usize << nbits;
        if cutoffs.len() != b - 1 || weights.len() != b {
            return Err(PlaidError::corrupt(format!(
                "codec for nbits {nbits} needs {} cutoffs and {b} weights, got {} and {}",
                b - 1,
                cutoffs.len(),
                weights.len()
            )));
        }
        if cutoffs.iter().chain(&weights).any(|v| !v.is_finite()) {
            return Err(PlaidError::corrupt("codec has non-finite values"));
        }
        let per_byte = 8 / nbits as usize;
        let mut lut = vec![0.0f32; 256 * per_byte];
        for byte in 0..256usize {
            for slot in 0..per_byte {
                let mut bucket = 0usize;
                for k in 0..nbits as usize {
                    let bit = (byte >> (7 - (slot * nbits as usize + k))) & 1;
                    bucket |= bit << k;
                }
                lut[byte * per_byte + slot] = weights[bucket];
            }
        }
        Ok(Self {
            nbits,
            dim,
            cutoffs,
            weights,
            lut,
        })
    }

    /// Trains cutoffs and weights from flattened residuals (`x - nearest centroid`).
    pub fn train(nbits: u8, dim: usize, residuals: &[f32]) -> Result<Self> {
        check_nbits(nbits, dim)?;
        if residuals.is_empty() {
            return Err(PlaidError::invalid(
                "cannot train the codec without residuals",
            ));
        }
        let b = 1usize << nbits;
        let cut_q: Vec<f64> = (1..b).map(|i| i as f64 / b as f64).collect();
        let w_q: Vec<f64> = (0..b).map(|i| (i as f64 + 0.5) / b as f64).collect();
        let mut sorted = residuals.to_vec();
        sorted.sort_unstable_by(f32::total_cmp);
        let cutoffs = cut_q.iter().map(|&q| quantile_sorted(&sorted, q)).collect();
        let weights = w_q.iter().map(|&q| quantile_sorted(&sorted, q)).collect();
        Self::new(nbits, dim, cutoffs, weights)
    }

    pub fn nbits(&self) -> u8 {
        self.nbits
    }
    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn cutoffs(&self) -> &[f32] {
        &self.cutoffs
    }
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The byte → weights table: `lut()[byte * per_byte + slot]` is the weight of the
    /// `slot`-th of the `per_byte = 8 / nbits` dimensions a packed byte holds.
    pub fn lut(&self) -> &[f32] {
        &self.lut
    }

    /// Packed bytes per token: `dim * nbits / 8`.
    pub fn row_bytes(&self) -> usize {
        self.dim * self.nbits as usize / 8
    }

    /// Bucket index of one residual value.
    #[inline]
    pub fn bucketize(&self, r: f32) -> u8 {
        self.cutoffs.partition_point(|&c| c < r) as u8
    }

    /// Packs bucket indices (one per dimension) into `out` (`row_bytes` long).
    pub fn pack(&self, buckets: &[u8], out: &mut [u8]) {
        pack_buckets(self.nbits, buckets, out);
    }

    /// Encodes the residual `x - centroid` into `out` (`row_bytes` long).
    pub fn encode_residual(&self, x: &[f32], centroid: &[f32], out: &mut [u8]) {
        out.fill(0);
        let nb = self.nbits as usize;
        let mut bitpos = 0usize;
        for (v, c) in x.iter().zip(centroid) {
            let b = self.bucketize(v - c);
            for k in 0..nb {
                if (b >> k) & 1 == 1 {
                    out[bitpos / 8] |= 1 << (7 - bitpos % 8);
                }
                bitpos += 1;
            }
        }
    }

    /// `centroid + weights[buckets]` (not normalised) into `out`; returns the inverse of its
    /// norm, `1 / max(‖out‖, 1e-12)`: the factor that decoding and stored norms both use.
    #[inline]
    pub fn reconstruct_into(&self, centroid: &[f32], packed: &[u8], out: &mut [f32]) -> f32 {
        match self.nbits {
            4 => add_residual::<2>(&self.lut, centroid, packed, out),
            2 => add_residual::<4>(&self.lut, centroid, packed, out),
            _ => add_residual::<8>(&self.lut, centroid, packed, out),
        }
        1.0 / colbert_core::kernels::dot(out, out).sqrt().max(1e-12)
    }

    /// Decodes one token: `normalize(centroid + weights[buckets])` into `out` (`dim` long).
    #[inline]
    pub fn decompress_into(&self, centroid: &[f32], packed: &[u8], out: &mut [f32]) {
        let inv = self.reconstruct_into(centroid, packed, out);
        for v in out.iter_mut() {
            *v *= inv;
        }
    }

    /// The inverse reconstruction norm of each token (`codes[i]`, `packed` row `i`) into
    /// `out`, as [`Self::reconstruct_into`] computes it; `centroids` is the `[K × dim]`
    /// codebook. `None` when a code or row is out of range.
    pub fn inv_norms(
        &self,
        centroids: &[f32],
        codes: impl IntoIterator<Item = usize>,
        packed: &[u8],
        out: &mut Vec<f32>,
    ) -> Option<()> {
        let (dim, rb) = (self.dim, self.row_bytes());
        let mut row = vec![0.0f32; dim];
        out.clear();
        for (c, p) in codes.into_iter().zip(packed.chunks_exact(rb)) {
            let cent = centroids.get(c * dim..(c + 1) * dim)?;
            out.push(self.reconstruct_into(cent, p, &mut row));
        }
        (out.len() * rb == packed.len()).then_some(())
    }
}

/// `out = centroid + weights[buckets]`, `P = 8 / nbits` values per packed byte: a compile-time
/// width, so each byte's values are moved as one small fixed-size copy.
#[inline(always)]
fn add_residual<const P: usize>(lut: &[f32], centroid: &[f32], packed: &[u8], out: &mut [f32]) {
    let (table, _) = lut.as_chunks::<P>();
    for ((o, c), &byte) in out
        .chunks_exact_mut(P)
        .zip(centroid.chunks_exact(P))
        .zip(packed)
    {
        let w = &table[byte as usize];
        for s in 0..P {
            o[s] = c[s] + w[s];
        }
    }
}

/// LSB-first within a dimension, MSB-first within a byte.
pub fn pack_buckets(nbits: u8, buckets: &[u8], out: &mut [u8]) {
    out.fill(0);
    let nb = nbits as usize;
    let mut bitpos = 0usize;
    for &b in buckets {
        for k in 0..nb {
            if (b >> k) & 1 == 1 {
                out[bitpos / 8] |= 1 << (7 - bitpos % 8);
            }
            bitpos += 1;
        }
    }
}

/// Codebook container sections: 0 centroids `[K × dim]` f32, 1 cutoffs f32, 2 weights f32.
pub(crate) struct Codebook {
    c: Container,
    pub codec: ResidualCodec,
    pub dim: usize,
    pub k: usize,
    /// The largest centroid norm (1 for a trained codebook, whose centroids are normalised):
    /// bounds every query–centroid score by the query token's norm times this.
    pub max_norm: f32,
}

impl Codebook {
    pub fn write(
        dir: &Path,
        generation: u64,
        centroids: &[f32],
        codec: &ResidualCodec,
    ) -> Result<FileRef> {
        let mut w = ContainerWriter::create(
            dir,
            unique_name("cbk-", generation, "plaid"),
            Kind::Codebook,
            3,
        )?;
        w.section(bytemuck::cast_slice(centroids))?;
        w.section(bytemuck::cast_slice(codec.cutoffs()))?;
        w.section(bytemuck::cast_slice(codec.weights()))?;
        w.finish()
    }

    pub fn open(dir: &Path, fref: &FileRef, m: &Manifest) -> Result<Self> {
        let c = Container::open(dir, fref, Kind::Codebook)?;
        Self::from_container(c, m)
    }

    /// Checks an opened codebook container against the manifest.
    pub fn from_container(c: Container, m: &Manifest) -> Result<Self> {
        let dim = m.dim.unwrap_or(0);
        let k = m.num_centroids;
        if c.n_sections() != 3 {
            return Err(PlaidError::corrupt("codebook: wrong number of sections"));
        }
        for i in 0..3 {
            c.verify_section(i)?;
        }
        let cents = c.typed::<f32>(0)?;
        if dim == 0 || k.checked_mul(dim) != Some(cents.len()) || k == 0 {
            return Err(PlaidError::corrupt("codebook: wrong centroid count"));
        }
        let codec = ResidualCodec::new(
            m.options.nbits,
            dim,
            c.typed::<f32>(1)?.to_vec(),
            c.typed::<f32>(2)?.to_vec(),
        )
        .map_err(|e| PlaidError::corrupt(format!("codebook: {e}")))?;
        let max_norm = cents
            .chunks_exact(dim)
            .map(|c| colbert_core::kernels::dot(c, c))
            .fold(0.0f32, f32::max)
            .sqrt();
        Ok(Codebook {
            c,
            codec,
            dim,
            k,
            max_norm,
        })
    }

    pub fn centroids(&self) -> &[f32] {
        self.c.typed::<f32>(0).unwrap_or(&[])
    }

    pub fn centroid(&self, c: usize) -> &[f32] {
        self.centroids()
            .get(c * self.dim..(c + 1) * self.dim)
            .unwrap_or(&[])
    }

    /// Stage 6 of a search: decodes every token of local document `local` of `seg` into `out`
    /// (resized, reused across calls): `normalize(centroid[code] + weights)` through the
    /// codec's byte → weights lookup table.
    pub fn decompress_doc(&self, seg: &Segment, local: u32, out: &mut Vec<f32>) -> Result<()> {
        let cb = self;
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn packing_matches_hand_computed_bytes() {
        // nbits 2, buckets [1, 2, 3, 0] -> bits (LSB first) 10 01 11 00 -> 0b1001_1100
        let mut out = [0u8; 1];
        pack_buckets(2, &[1, 2, 3, 0], &mut out);
        assert_eq!(out, [0x9C]);
        // nbits 1: [1,0,0,0,0,0,0,1, 0,1,...] -> 0x81, 0x40
        let mut out = [0u8; 2];
        pack_buckets(
            1,
            &[1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
            &mut out,
        );
        assert_eq!(out, [0x81, 0x40]);
        // nbits 4: bucket 1 -> 1000, bucket 12 (1100) -> 0011 => 0b1000_0011
        let mut out = [0u8; 1];
        pack_buckets(4, &[1, 12], &mut out);
        assert_eq!(out, [0x83]);
    }

    #[test]
    fn lut_inverts_packing() {
        for nbits in [1u8, 2, 4] {
            let b = 1usize << nbits;
            let cut: Vec<f32> = (1..b).map(|i| i as f32).collect();
            let w: Vec<f32> = (0..b).map(|i| i as f32 * 10.0).collect();
            let codec = ResidualCodec::new(nbits, 16, cut, w).unwrap();
            let buckets: Vec<u8> = (0..16).map(|i| (i * 7 % b) as u8).collect();
            let mut packed = vec![0u8; codec.row_bytes()];
            codec.pack(&buckets, &mut packed);
            let per = 8 / nbits as usize;
            for (j, &bk) in buckets.iter().enumerate() {
                let byte = packed[j / per] as usize;
                assert_eq!(codec.lut[byte * per + j % per], bk as f32 * 10.0);
            }
        }
    }

    #[test]
    fn quantiles_follow_torch_linear_interpolation() {
        let v = [4.0, 1.0, 3.0, 2.0];
        // torch.quantile([1,2,3,4], [0.25, 0.5, 0.125]) = [1.75, 2.5, 1.375]
        assert_eq!(quantiles(&v, &[0.25, 0.5, 0.125]), vec![1.75, 2.5, 1.375]);
        let codec = ResidualCodec::train(2, 4, &v).unwrap();
        assert_eq!(codec.cutoffs(), &[1.75, 2.5, 3.25]);
        assert_eq!(codec.weights(), &[1.375, 2.125, 2.875, 3.625]);
        // bucketize right=False: equal to a cutoff stays in the lower bucket
        assert_eq!(codec.bucketize(1.75), 0);
        assert_eq!(codec.bucketize(1.76), 1);
        assert_eq!(codec.bucketize(9.0), 3);
    }

    #[test]
    fn round_trip_within_bucket_bounds() {
        let dim = 32;
        let mut rng = Rng::new(7);
        let mut errors = vec![];
        for nbits in [1u8, 2, 4] {
            let centroid: Vec<f32> = (0..dim).map(|_| rng.gauss() * 0.2).collect();
            let xs: Vec<Vec<f32>> = (0..200)
                .map(|_| centroid.iter().map(|c| c + rng.gauss() * 0.05).collect())
                .collect();
            let residuals: Vec<f32> = xs
                .iter()
                .flat_map(|x| x.iter().zip(&centroid).map(|(a, b)| a - b))
                .collect();
            let codec = ResidualCodec::train(nbits, dim, &residuals).unwrap();
            let mut packed = vec![0u8; codec.row_bytes()];
            let mut out = vec![0.0f32; dim];
            let mut total_err = 0.0f32;
            let per = 8 / nbits as usize;
            for x in &xs {
                codec.encode_residual(x, &centroid, &mut packed);
                for j in 0..dim {
                    // Each residual lies in its bucket (lo, hi], and the decoded weight is the
                    // weight of that bucket, itself inside the bucket's range.
                    let r = x[j] - centroid[j];
                    let b = codec.bucketize(r) as usize;
                    let w = codec.lut[packed[j / per] as usize * per + j % per];
                    assert_eq!(w, codec.weights()[b]);
                    let lo = if b == 0 {
                        f32::NEG_INFINITY
                    } else {
                        codec.cutoffs()[b - 1]
                    };
                    let hi = codec.cutoffs().get(b).copied().unwrap_or(f32::INFINITY);
                    assert!(r > lo && r <= hi);
                    assert!(w >= lo && w <= hi);
                }
                codec.decompress_into(&centroid, &packed, &mut out);
                let n: f32 = out.iter().map(|v| v * v).sum();
                assert!((n - 1.0).abs() < 1e-4);
                let xn: f32 = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                let err: f32 = out.iter().zip(x).map(|(a, b)| (a - b / xn).powi(2)).sum();
                total_err += err.sqrt();
            }
            errors.push(total_err / xs.len() as f32);
        }
        // More bits, smaller reconstruction error.
        assert!(errors[0] > errors[1] && errors[1] > errors[2], "{errors:?}");
        assert!(errors[2] < 0.1, "{errors:?}");
    }

    #[test]
    fn rejects_bad_nbits() {
        assert!(check_nbits(3, 128).is_err());
        assert!(check_nbits(1, 12).is_err());
        assert!(check_nbits(2, 12).is_ok());
    }
}
