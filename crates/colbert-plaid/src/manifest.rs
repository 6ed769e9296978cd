//! The manifest: the single file (`MANIFEST`) that defines the committed state of an index.
//!
//! A manifest names every file of one generation (codebook, segments, tombstones) with its
//! length and checksum, plus the counters and training options. Every mutation writes new
//! files, fsyncs them and the directory, then replaces `MANIFEST` atomically (temp file +
//! fsync + rename + directory fsync). Text layout:
//!
//! ```text
//! PLAID-MANIFEST <format_version> <crc32 hex of "<format_version>\n<json>">\n
//! <json>
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{PlaidError, Result};
use crate::format::{FileRef, FORMAT_VERSION, OLDEST_SUPPORTED_FORMAT};

pub(crate) const MANIFEST: &str = "MANIFEST";
const MAGIC: &str = "PLAID-MANIFEST";

/// Training options persisted with the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOptions {
    pub nbits: u8,
    pub kmeans_iterations: usize,
    pub num_centroids: Option<usize>,
    pub seed: u64,
    pub max_points_per_centroid: usize,
}

/// One immutable segment: documents `doc_start .. doc_start + n_docs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub file: FileRef,
    pub doc_start: u32,
    pub n_docs: u32,
    pub n_tokens: u64,
    /// 2 (u16 codes) or 4 (u32 codes).
    pub code_bytes: u8,
    /// Number of IVF lists stored in the segment (the codebook size when it was written).
    pub num_centroids: u32,
    /// The format the segment file was written in (2 for segments listed by a format-2
    /// manifest, which did not record it).
    #[serde(default = "format_2")]
    pub format: u32,
}

fn format_2() -> u32 {
    2
}

/// The committed state of an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub generation: u64,
    pub options: StoredOptions,
    pub dim: Option<usize>,
    pub num_centroids: usize,
    /// Residual-norm threshold above which a new embedding is an outlier (centroid expansion).
    pub cluster_threshold: f32,
    /// Number of embeddings the threshold was estimated from (weights later updates).
    pub cluster_threshold_weight: u64,
    pub codebook: Option<FileRef>,
    pub segments: Vec<SegmentMeta>,
    pub tombstones: Option<FileRef>,
    /// The next internal document number (documents are renumbered only when a merge, `compact`
    /// or `rebuild` drops deleted ones).
    pub next_doc: u32,
    pub live_docs: u64,
    pub live_tokens: u64,
    pub deleted_docs: u64,
    /// How embeddings added since the codebook was trained fit it (reset by training).
    #[serde(default)]
    pub drift: Drift,
}

/// Codebook drift (plaid-engines.md §6.8): the codebook and the codec's cutoffs are trained
/// once, and later additions only append centroids for outliers, so data that moves away from
/// the training sample is encoded with larger residuals. `rebuild` retrains and resets this.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Mean residual norm of the held-out embeddings when the codebook was trained.
    pub trained_residual_norm: f32,
    /// Embeddings added since training.
    pub embeddings: u64,
    /// How many of them were outliers (residual norm above `cluster_threshold` before
    /// expansion).
    pub outliers: u64,
    /// Sum of their residual norms as encoded (after expansion).
    pub residual_norm_sum: f64,
}

impl Manifest {
    pub fn empty(options: StoredOptions) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            generation: 0,
            options,
            dim: None,
            num_centroids: 0,
            cluster_threshold: 0.0,
            cluster_threshold_weight: 0,
            codebook: None,
            segments: Vec::new(),
            tombstones: None,
            next_doc: 0,
            live_docs: 0,
            live_tokens: 0,
            deleted_docs: 0,
            drift: Drift::default(),
        }
    }

    /// Every file the manifest references.
    pub fn files(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.segments.iter().map(|s| s.file.name.as_str()).collect();
        v.extend(self.codebook.iter().map(|f| f.name.as_str()));
        v.extend(self.tombstones.iter().map(|f| f.name.as_str()));
        v
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        // Whatever version it was read in, a manifest is written in this build's format.
        let mut m = self.clone();
        m.format_version = FORMAT_VERSION;
        let json = serde_json::to_string(&m).map_err(|e| PlaidError::Internal(e.to_string()))?;
        let v = FORMAT_VERSION.to_string();
        let crc = crc32fast::hash(format!("{v}\n{json}").as_bytes());
        Ok(format!("{MAGIC} {v} {crc:08x}\n{json}").into_bytes())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |m: &str| PlaidError::corrupt(format!("MANIFEST: {m}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let (line, json) = text.split_once('\n').ok_or_else(|| bad("no header line"))?;
        let mut parts = line.split(' ');
        if parts.next() != Some(MAGIC) {
            return Err(bad("bad magic"));
        }
        let v = parts.next().ok_or_else(|| bad("no version"))?;
        let crc = parts
            .next()
            .and_then(|c| u32::from_str_radix(c, 16).ok())
            .ok_or_else(|| bad("no checksum"))?;
        if parts.next().is_some() || crc32fast::hash(format!("{v}\n{json}").as_bytes()) != crc {
            return Err(bad("checksum mismatch"));
        }
        let found: u64 = v.parse().map_err(|_| bad("bad version"))?;
        if !(OLDEST_SUPPORTED_FORMAT as u64..=FORMAT_VERSION as u64).contains(&found) {
            return Err(PlaidError::format_unsupported(found));
        }
        let m: Manifest = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
        if m.format_version as u64 != found {
            return Err(bad("version mismatch"));
        }
        m.validate().map_err(|e| bad(&e))?;
        Ok(m)
    }

    /// Structural checks, so that later code can index without panicking.
    fn validate(&self) -> std::result::Result<(), String> {
        let mut next = 0u64;
        for s in &self.segments {
            if s.doc_start as u64 != next {
                return Err("segments are not contiguous".into());
            }
            if !matches!(s.code_bytes, 2 | 4) || s.num_centroids as usize > self.num_centroids {
                return Err("bad segment header".into());
            }
            next += s.n_docs as u64;
        }
        if next != self.next_doc as u64 {
            return Err("document count mismatch".into());
        }
        if !self.segments.is_empty() && (self.codebook.is_none() || self.dim.is_none()) {
            return Err("segments without a codebook".into());
        }
        if !matches!(self.options.nbits, 1 | 2 | 4) {
            return Err("bad nbits".into());
        }
        // What the next commit writes must read back: JSON has no infinities or NaN.
        let d = &self.drift;
        let norm = |x: f64| x.is_finite() && x >= 0.0;
        let norms = [
            self.cluster_threshold as f64,
            d.trained_residual_norm as f64,
            d.residual_norm_sum,
        ];
        if !norms.into_iter().all(norm) {
            return Err("bad residual norms".into());
        }
        Ok(())
    }
}

/// Reads `dir/MANIFEST`; `INDEX_NOT_FOUND` if absent.
pub(crate) fn read(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => Manifest::decode(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(PlaidError::NotFound(dir.display().to_string()))
        }
        Err(e) => Err(PlaidError::io("reading", &path, e)),
    }
}

/// Options for [`crate::PlaidIndex::create`] (persisted in the manifest).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexOptions {
    /// Bits per residual dimension: 1, 2 or 4 (default 4).
    pub nbits: u8,
    /// k-means iterations (default 4).
    pub kmeans_iterations: usize,
    /// Fixed number of centroids; `None`: `2^floor(log2(16·sqrt(E)))`.
    pub num_centroids: Option<usize>,
    /// Seed of every random choice (default 42).
    pub seed: u64,
    /// k-means point cap per centroid (default 256).
    pub max_points_per_centroid: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            nbits: 4,
            kmeans_iterations: 4,
            num_centroids: None,
            seed: 42,
            max_points_per_centroid: 256,
        }
    }
}

impl IndexOptions {
    pub(crate) fn stored(&self) -> Result<StoredOptions> {
        if !matches!(self.nbits, 1 | 2 | 4) {
            return Err(PlaidError::invalid(format!(
                "nbits must be 1, 2 or 4, got {}",
                self.nbits
            )));
        }
        if self.kmeans_iterations == 0
            || self.max_points_per_centroid == 0
            || self.num_centroids == Some(0)
        {
            return Err(PlaidError::invalid(
                "kmeans_iterations, max_points_per_centroid and num_centroids must be positive",
            ));
        }
        Ok(StoredOptions {
            nbits: self.nbits,
            kmeans_iterations: self.kmeans_iterations,
            num_centroids: self.num_centroids,
            seed: self.seed,
            max_points_per_centroid: self.max_points_per_centroid,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use colbert_core::CodedError;

    fn opts() -> StoredOptions {
        StoredOptions {
            nbits: 2,
            kmeans_iterations: 4,
            num_centroids: None,
            seed: 1,
            max_points_per_centroid: 256,
        }
    }

    #[test]
    fn round_trip_and_checks() {
        let m = Manifest::empty(opts());
        let bytes = m.encode().unwrap();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x04;
            let r = Manifest::decode(&b);
            assert_eq!(r.unwrap_err().code(), "INDEX_CORRUPT", "flip at {i}");
        }
        // Bytes as a build of format `v` writes them.
        let written_in = |v: u32| {
            let mut old = m.clone();
            old.format_version = v;
            let json = serde_json::to_string(&old).unwrap();
            let crc = crc32fast::hash(format!("{v}\n{json}").as_bytes());
            format!("{MAGIC} {v} {crc:08x}\n{json}").into_bytes()
        };
        let e = Manifest::decode(&written_in(7)).unwrap_err();
        assert_eq!(e.code(), "INDEX_FORMAT_UNSUPPORTED");
        assert!(e.to_string().contains('7') && e.to_string().contains('3'));
        // The oldest supported format still opens (and is written back in the current one);
        // one older does not.
        for (v, ok) in [
            (OLDEST_SUPPORTED_FORMAT, true),
            (OLDEST_SUPPORTED_FORMAT - 1, false),
        ] {
            match Manifest::decode(&written_in(v)) {
                Ok(d) => {
                    assert!(ok && d.format_version == v);
                    let again = Manifest::decode(&d.encode().unwrap()).unwrap();
                    assert_eq!(again.format_version, FORMAT_VERSION);
                }
                Err(e) => assert!(!ok && e.code() == "INDEX_FORMAT_UNSUPPORTED"),
            }
        }
    }

    /// Floats read back exactly as written: with serde_json's default float parser about one
    /// f64 in ten came back one ulp off, so a reloaded manifest differed from the committed
    /// one and `refresh()` reported a change that never happened (found by the manifest fuzz
    /// target; reproducer in fuzz/regressions/manifest/).
    #[test]
    fn floats_round_trip_exactly() {
        let mut m = Manifest::empty(opts());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m.drift.residual_norm_sum = (x >> 11) as f64 / (1u64 << 53) as f64 * 1e3;
            m.drift.trained_residual_norm = (x >> 40) as f32 / (1u32 << 24) as f32;
            m.cluster_threshold = (x & 0xff_ffff) as f32 / 7.0;
            assert_eq!(Manifest::decode(&m.encode().unwrap()).unwrap(), m);
        }
        m.drift.residual_norm_sum = 1_901_901_664_435_863.0;
        assert_eq!(Manifest::decode(&m.encode().unwrap()).unwrap(), m);
        // An f32 beyond its range is an error, not an infinity that would be written as null.
        let json = serde_json::to_string(&m).unwrap();
        for (from, to) in [
            (
                "\"cluster_threshold\":",
                "\"cluster_threshold\":1e39,\"x\":",
            ),
            (
                "\"trained_residual_norm\":",
                "\"trained_residual_norm\":-1,\"x\":",
            ),
        ] {
            let bad = json.replacen(from, to, 1);
            let crc = crc32fast::hash(format!("{FORMAT_VERSION}\n{bad}").as_bytes());
            let bytes = format!("{MAGIC} {FORMAT_VERSION} {crc:08x}\n{bad}").into_bytes();
            assert_eq!(
                Manifest::decode(&bytes).unwrap_err().code(),
                "INDEX_CORRUPT"
            );
        }
    }

    /// Manifests written before the drift counters existed still open (as zeros).
    #[test]
    fn manifest_without_drift_opens() {
        let mut m = Manifest::empty(opts());
        m.drift.embeddings = 5;
        let mut json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("drift");
        let json = json.to_string();
        let crc = crc32fast::hash(format!("{FORMAT_VERSION}\n{json}").as_bytes());
        let bytes = format!("{MAGIC} {FORMAT_VERSION} {crc:08x}\n{json}").into_bytes();
        let old = Manifest::decode(&bytes).unwrap();
        assert_eq!(old.drift, Drift::default());
        assert_eq!(old, Manifest::empty(opts()));
    }
}
