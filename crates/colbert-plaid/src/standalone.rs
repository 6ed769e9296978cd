//! A codebook that lives outside a local index, for indexes whose storage is a search cluster
//! (`colbert/opensearch`): the cluster stores, routes, replicates and filters; this codebook
//! trains (as a local index's first commit does), compresses each document into one
//! self-contained blob plus its set of centroid ids, probes queries (stage 2 of a local search)
//! and scores candidate blobs exactly (stage 6), so the cluster's ranking has the local
//! engine's semantics: MaxSim over the decoded token vectors.
//!
//! Codebook bytes: `table_crc u32 LE`, `nbits u8`, three zero bytes, then a codebook container
//! (the local codebook file's format: centroids, cutoffs, weights, checksummed).
//!
//! Document blob, format [`BLOB_FORMAT`]:
//!
//! ```text
//! 0  u8   blob format (1)
//! 1  u8   nbits
//! 2  u8   bytes per code: 2 (codebooks of ≤ 65,536 centroids) or 4
//! 3  u8   0
//! 4  u32  tokens n (LE)
//! 8  n codes (LE), then n inverse reconstruction norms (f32 LE), then n packed residual rows
//! ```

use colbert_core::{CancelToken, EmbeddingsView, OnProgress, QueryPanel};
use rayon::prelude::*;

use crate::codec::{Codebook, ResidualCodec};
use crate::error::{PlaidError, Result};
use crate::format::{memory, Container, Kind};
use crate::manifest::{IndexOptions, Manifest};
use crate::train::train;
use crate::writer::encode_rows;

/// The document-blob format this build writes (and the newest it reads).
pub const BLOB_FORMAT: u8 = 1;
/// The oldest document-blob format this build reads.
pub const OLDEST_BLOB_FORMAT: u8 = 1;
const HEAD: usize = 8;

/// A trained codebook: centroids and residual codec, with no index folder.
#[derive(Debug, Clone)]
pub struct StandaloneCodebook {
    centroids: Vec<f32>,
    codec: ResidualCodec,
    dim: usize,
}

/// One compressed document: its blob and the sorted, unique ids of its tokens' centroids (the
/// terms a cluster indexes for candidate generation).
#[derive(Debug, Clone, PartialEq)]
pub struct CompressedDocument {
    pub blob: Vec<u8>,
    pub centroids: Vec<u32>,
}

/// A query token's probed centroids, best first, and their scores `q · c`.
pub type ProbedToken = Vec<(u32, f32)>;

impl StandaloneCodebook {
    /// Trains on `sample` exactly as a local index's first commit trains on its documents
    /// (document sample, k-means, residual codec on held-out rows), with `options`.
    pub fn train(
        sample: EmbeddingsView<'_>,
        options: &IndexOptions,
        cancel: &CancelToken,
        progress: OnProgress<'_>,
    ) -> Result<Self> {
        colbert_core::validate(sample.dim, sample.offsets, sample.data)
            .map_err(|e| PlaidError::invalid(e.to_string()))?;
        if sample.data.is_empty() {
            return Err(PlaidError::invalid(
                "training needs at least one token embedding",
            ));
        }
        let m = Manifest::empty(options.stored()?);
        let rows: Vec<usize> = sample.offsets.iter().map(|&o| o as usize).collect();
        let t = train(&m, sample.data, sample.dim, &rows, cancel, progress)?;
        Ok(StandaloneCodebook {
            centroids: t.centroids,
            codec: t.codec,
            dim: sample.dim,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn nbits(&self) -> u8 {
        self.codec.nbits()
    }

    pub fn num_centroids(&self) -> usize {
        self.centroids.len() / self.dim.max(1)
    }

    fn code_bytes(&self) -> usize {
        if self.num_centroids() <= 1 << 16 {
            2
        } else {
            4
        }
    }

    /// The codebook as bytes (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (container, crc) = memory::build(
            Kind::Codebook,
            &[
                bytemuck::cast_slice(&self.centroids),
                bytemuck::cast_slice(self.codec.cutoffs()),
                bytemuck::cast_slice(self.codec.weights()),
            ],
        );
        let mut out = Vec::with_capacity(8 + container.len());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&[self.codec.nbits(), 0, 0, 0]);
        out.extend_from_slice(&container);
        out
    }

    /// Reads [`Self::to_bytes`]' output of a codebook of `dim`; `INDEX_CORRUPT` when the bytes
    /// are damaged or do not hold such a codebook.
    pub fn from_bytes(bytes: &[u8], dim: usize) -> Result<Self> {
        let bad = |what: &str| PlaidError::corrupt(format!("stored codebook: {what}"));
        if bytes.len() < 8 {
            return Err(bad("shorter than its header"));
        }
        let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let nbits = bytes[4];
        let c = Container::from_bytes("stored codebook", &bytes[8..], crc, Kind::Codebook)?;
        let options = IndexOptions {
            nbits,
            ..Default::default()
        };
        let mut m = Manifest::empty(options.stored().map_err(|_| bad("bad nbits"))?);
        m.dim = Some(dim);
        m.num_centroids = c.typed::<f32>(0)?.len() / dim.max(1);
        let cb = Codebook::from_container(c, &m)?;
        Ok(StandaloneCodebook {
            centroids: cb.centroids().to_vec(),
            codec: cb.codec.clone(),
            dim,
        })
    }

    /// Compresses every document of `docs` (in parallel), cancellable between chunks.
    pub fn compress(
        &self,
        docs: EmbeddingsView<'_>,
        cancel: &CancelToken,
    ) -> Result<Vec<CompressedDocument>> {
        self.check_dim(docs)?;
        let dim = self.dim;
        let (rb, cb) = (self.codec.row_bytes(), self.code_bytes());
        let mut out = Vec::with_capacity(docs.len());
        // Chunks of documents, so that an abort is seen between them.
        const CHUNK: usize = 256;
        let n = docs.len();
        let mut start = 0;
        while start < n {
            if cancel.is_cancelled() {
                return Err(PlaidError::Aborted);
            }
            let end = (start + CHUNK).min(n);
            let (a, b) = (docs.offsets[start] as usize, docs.offsets[end] as usize);
            let enc = encode_rows(
                &self.centroids,
                &self.codec,
                &docs.data[a * dim..b * dim],
                dim,
                None,
            );
            let chunk: Vec<CompressedDocument> = (start..end)
                .into_par_iter()
                .map(|d| {
                    let (s, e) = (
                        docs.offsets[d] as usize - a,
                        docs.offsets[d + 1] as usize - a,
                    );
                    let t = e - s;
                    let mut blob = Vec::with_capacity(HEAD + t * (cb + 4 + rb));
                    blob.extend_from_slice(&[BLOB_FORMAT, self.codec.nbits(), cb as u8, 0]);
                    blob.extend_from_slice(&(t as u32).to_le_bytes());
                    let codes = &enc.codes[s..e];
                    for &c in codes {
                        if cb == 2 {
                            blob.extend_from_slice(&(c as u16).to_le_bytes());
                        } else {
                            blob.extend_from_slice(&c.to_le_bytes());
                        }
                    }
                    for &v in &enc.inv_norms[s..e] {
                        blob.extend_from_slice(&v.to_le_bytes());
                    }
                    blob.extend_from_slice(&enc.packed[s * rb..e * rb]);
                    let mut centroids = codes.to_vec();
                    centroids.sort_unstable();
                    centroids.dedup();
                    CompressedDocument { blob, centroids }
                })
                .collect();
            out.extend(chunk);
            start = end;
        }
        Ok(out)
    }

    /// Stage 2 of a search for every query: each token's `n_probe` best centroids (ties to the
    /// lower id) with their scores.
    pub fn probe(
        &self,
        queries: EmbeddingsView<'_>,
        n_probe: usize,
    ) -> Result<Vec<Vec<ProbedToken>>> {
        self.check_dim(queries)?;
        let (dim, k) = (self.dim, self.num_centroids());
        let n = n_probe.clamp(1, k.max(1));
        Ok((0..queries.len())
            .into_par_iter()
            .map(|i| {
                let q = queries.item(i);
                let nq = q.len() / dim;
                let mut s = vec![0.0f32; k * nq];
                if nq > 0 {
                    QueryPanel::new(q, dim).scores(&self.centroids, &mut s);
                }
                (0..nq)
                    .map(|t| {
                        let mut best: Vec<(u32, f32)> =
                            (0..k).map(|c| (c as u32, s[c * nq + t])).collect();
                        let cmp = |a: &(u32, f32), b: &(u32, f32)| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        };
                        if n < best.len() {
                            best.select_nth_unstable_by(n - 1, cmp);
                            best.truncate(n);
                        }
                        best.sort_unstable_by(cmp);
                        best
                    })
                    .collect()
            })
            .collect())
    }

    /// Stage 6: MaxSim of `query` (`nq × dim`, row-major) against each blob's decoded tokens,
    /// `Σ_q max_t q · d_t` (0 for a document without tokens). `INDEX_CORRUPT` for a blob that
    /// is not a document of this codebook.
    pub fn score(&self, query: &[f32], blobs: &[&[u8]]) -> Result<Vec<f32>> {
        let dim = self.dim;
        if dim == 0 || !query.len().is_multiple_of(dim) {
            return Err(PlaidError::invalid(format!(
                "the query has {} values, not a multiple of dim {dim}",
                query.len()
            )));
        }
        let panel = QueryPanel::new(query, dim);
        let nq = panel.nq();
        blobs
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(rows, best): &mut (Vec<f32>, Vec<f32>), blob| {
                    let doc = self.parse(blob)?;
                    if doc.n == 0 || nq == 0 {
                        return Ok(0.0);
                    }
                    rows.resize(doc.n * dim, 0.0);
                    for (t, row) in rows.chunks_exact_mut(dim).enumerate() {
                        let c = doc.code(t);
                        let cent = &self.centroids[c * dim..(c + 1) * dim];
                        self.codec.reconstruct_into(cent, doc.residual(t), row);
                    }
                    best.clear();
                    best.resize(panel.lanes(), f32::NEG_INFINITY);
                    let affine = colbert_core::RowAffine {
                        bias: None,
                        scale: &doc.inv,
                    };
                    if !panel.max_scores(colbert_core::panel::Rows::Dense(rows), &affine, best) {
                        return Err(PlaidError::Internal(
                            "blob scoring inputs do not fit together".into(),
                        ));
                    }
                    Ok(best[..nq].iter().sum())
                },
            )
            .collect()
    }

    /// Decodes a blob back to its tokens' vectors (`normalize(centroid + residual)`), as a
    /// local index's stored embeddings decode.
    pub fn decompress(&self, blob: &[u8]) -> Result<Vec<f32>> {
        let doc = self.parse(blob)?;
        let dim = self.dim;
        let mut out = vec![0.0f32; doc.n * dim];
        for (t, row) in out.chunks_exact_mut(dim).enumerate() {
            let c = doc.code(t);
            self.codec.decompress_into(
                &self.centroids[c * dim..(c + 1) * dim],
                doc.residual(t),
                row,
            );
        }
        Ok(out)
    }

    fn check_dim(&self, e: EmbeddingsView<'_>) -> Result<()> {
        colbert_core::validate(e.dim, e.offsets, e.data)
            .map_err(|err| PlaidError::invalid(err.to_string()))?;
        if e.dim != self.dim {
            return Err(PlaidError::invalid(format!(
                "embeddings have dim {}, the codebook has dim {}",
                e.dim, self.dim
            )));
        }
        Ok(())
    }

    fn parse<'b>(&self, blob: &'b [u8]) -> Result<Blob<'b>> {
        let bad = |what: String| PlaidError::corrupt(format!("document blob: {what}"));
        if blob.len() < HEAD {
            return Err(bad(format!(
                "{} bytes is shorter than its header",
                blob.len()
            )));
        }
        if !(OLDEST_BLOB_FORMAT..=BLOB_FORMAT).contains(&blob[0]) {
            return Err(bad(format!(
                "format {} is not one this release reads ({OLDEST_BLOB_FORMAT}..={BLOB_FORMAT})",
                blob[0]
            )));
        }
        if blob[1] != self.codec.nbits() {
            return Err(bad(format!(
                "{} bits per dimension, the codebook has {}",
                blob[1],
                self.codec.nbits()
            )));
        }
        let cb = blob[2] as usize;
        if cb != 2 && cb != 4 {
            return Err(bad(format!("{cb} bytes per code")));
        }
        let n = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        let rb = self.codec.row_bytes();
        let want = n.checked_mul(cb + 4 + rb).and_then(|b| b.checked_add(HEAD));
        if want != Some(blob.len()) {
            return Err(bad(format!("{} bytes for {n} tokens", blob.len())));
        }
        let codes = &blob[HEAD..HEAD + n * cb];
        let inv: Vec<f32> = blob[HEAD + n * cb..HEAD + n * (cb + 4)]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let k = self.num_centroids();
        let doc = Blob {
            n,
            cb,
            codes,
            inv,
            residuals: &blob[HEAD + n * (cb + 4)..],
            rb,
        };
        if (0..n).any(|t| doc.code(t) >= k) {
            return Err(bad(format!(
                "a code is out of range (the codebook has {k} centroids)"
            )));
        }
        Ok(doc)
    }
}

struct Blob<'b> {
    n: usize,
    cb: usize,
    codes: &'b [u8],
    inv: Vec<f32>,
    residuals: &'b [u8],
    rb: usize,
}

impl Blob<'_> {
    fn code(&self, t: usize) -> usize {
        let b = &self.codes[t * self.cb..(t + 1) * self.cb];
        if self.cb == 2 {
            u16::from_le_bytes([b[0], b[1]]) as usize
        } else {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        }
    }

    fn residual(&self, t: usize) -> &[u8] {
        &self.residuals[t * self.rb..(t + 1) * self.rb]
    }
}
