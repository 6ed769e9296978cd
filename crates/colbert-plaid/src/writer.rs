//! Transactions that add (and optionally delete) documents: [`Writer`].
//!
//! `push` validates a batch and appends its raw `f32` rows to a spill file inside the index
//! directory (`spill-*.tmp`), and the documents' stored text and metadata (if any) to a second
//! one; ids and document lengths stay in memory. `commit`:
//!
//! Steps 1 and 2 (training and centroid expansion) are in `train.rs`, the merge policy of step
//! 4 in `merge.rs`.
//!
//! 1. **Untrained index** – samples `min(1 + 16·sqrt(120·N), N)` documents from the spill
//!    (seeded), estimates `E = avg tokens × N`, picks `K = 2^floor(log2(16·sqrt(E)))` (or the
//!    configured count), holds out `min(5 %, 50,000)` of the sampled rows, runs k-means on the
//!    rest and trains the residual codec on the held-out rows; `cluster_threshold` is the 75th
//!    percentile of held-out residual norms.
//! 2. **Trained index** – centroid expansion (fast-plaid/next-plaid update): new rows whose
//!    squared L2 distance to their nearest centroid exceeds `cluster_threshold²` are outliers;
//!    if there are at least [`MIN_OUTLIERS_FOR_EXPANSION`], k-means with
//!    `max(1, ceil(n / max_points_per_centroid)) · 4` centroids runs on them and the new
//!    (normalised) centroids are appended to the codebook.
//! 3. Compresses the spill chunk by chunk (parallel nearest-centroid + residual packing) into
//!    a new segment and builds its IVF.
//! 4. Applies the transaction's deletions, then merges the newest segments when the new one
//!    is large enough relative to the one before it (a binary counter; see `merge.rs`), or
//!    every segment when compacting (asked for, or once deleted documents are as many as live
//!    ones); merged segments leave deleted documents out. Writes new tombstones if they
//!    changed, fsyncs everything, opens the new snapshot (sharing the unchanged segments),
//!    then switches the manifest.
//!
//! Memory is bounded by the k-means training rows (at most `K × max_points_per_centroid`
//! rows gathered from the sample) plus the held-out rows plus one chunk; nothing else is
//! proportional to the collection except per-document lengths and ids. Any error or cancellation deletes the new
//! files and leaves the index as it was.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use colbert_core::{CancelToken, EmbeddingsView, OnProgress, Progress, Stage};
use memmap2::Mmap;
use rayon::prelude::*;

use crate::codec::{check_nbits, quantiles, Codebook, ResidualCodec};
use crate::error::{PlaidError, Result};
use crate::handle::Inner;
use crate::ids::StagedIds;
use crate::manifest::{Drift, IndexOptions, Manifest, StoredOptions};
use crate::merge;
use crate::rng::Rng;
use crate::segment::{DocumentFields, Segment, SegmentWriter, StagedFields};
use crate::snapshot::{Snapshot, Tombstones};
use crate::storage::{self, Spill, WriterLock};
use crate::train::{expand, train, CHUNK_TOKENS, RESERVOIR};
use colbert_core::kernels::argmax_centroids;

/// What a commit did.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitInfo {
    /// Generation now current (unchanged if the transaction was empty).
    pub generation: u64,
    pub added: usize,
    pub deleted: usize,
    /// The codebook was trained by this commit (first commit or rebuild).
    pub trained: bool,
    /// Centroids appended by expansion.
    pub new_centroids: usize,
    pub num_centroids: usize,
    /// Segments merged into one by this commit (0 when none were).
    pub merged_segments: usize,
    /// Deleted documents dropped from merged segments (their space reclaimed).
    pub reclaimed: usize,
}

/// Files created by an unfinished transaction, deleted unless disarmed.
struct Created(Vec<PathBuf>);
impl Drop for Created {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(crate) enum Mode {
    Append,
    /// Replace every document: retrain from scratch, renumber (compaction).
    Rebuild,
}

/// A write transaction holding the index's writer lock. Dropping it without `commit` discards
/// everything pushed (its spill file is deleted).
pub struct Writer {
    inner: Arc<Inner>,
    _lock: WriterLock,
    base: Arc<Snapshot>,
    mode: Mode,
    spill: Option<Spill>,
    /// Stored text + metadata bytes of the pushed documents (created at the first non-empty one).
    fields: Option<Spill>,
    /// Per pushed document: (text bytes, metadata bytes).
    field_lens: Vec<(u32, u32)>,
    ids: StagedIds,
    doclens: Vec<u32>,
    dim: Option<usize>,
    deletes: Vec<u32>,
    delete_set: HashSet<u32>,
    options: Option<StoredOptions>,
    /// Merge every segment (dropping deleted documents) in this transaction.
    compact: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.inner.dir)
            .field("pending", &self.ids.len())
            .field("deletes", &self.deletes.len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Makes this transaction replace every document of the index with what it pushes: the
    /// codebook is trained afresh on them (with `options`' training settings, or the index's
    /// own), and readers see the old documents until the commit. Call it before pushing.
    pub fn replace_all(&mut self, options: Option<&IndexOptions>) -> Result<()> {
        if !self.ids.is_empty() || !self.deletes.is_empty() || self.compact {
            return Err(PlaidError::invalid(
                "replace_all must come before anything else in a transaction",
            ));
        }
        let stored = match options {
            Some(o) => o.stored()?,
            None => self.base.manifest.options.clone(),
        };
        self.mode = Mode::Rebuild;
        self.dim = None;
        self.options = Some(stored);
        Ok(())
    }

    /// Deletes documents by id and commits at once (see [`Self::delete`]); returns how many
    /// were deleted (nothing is committed when none were).
    pub fn delete_and_commit(mut self, ids: &[String]) -> Result<usize> {
        let n = self.delete(ids)?;
        if n > 0 {
            self.commit(&CancelToken::new(), &|_| {})?;
        }
        Ok(n)
    }

    /// Merges every segment into one, dropping deleted documents, and commits: nothing is
    /// re-encoded. A no-op on an index with at most one segment and nothing deleted.
    pub fn compact(mut self, cancel: &CancelToken, progress: OnProgress<'_>) -> Result<CommitInfo> {
        if !self.ids.is_empty() || !self.deletes.is_empty() {
            return Err(PlaidError::invalid(
                "compact must be a transaction of its own",
            ));
        }
        self.compact = true;
        self.commit(cancel, progress)
    }

    pub(crate) fn new(
        inner: Arc<Inner>,
        lock: WriterLock,
        base: Arc<Snapshot>,
        mode: Mode,
    ) -> Self {
        let dim = match mode {
            Mode::Append => base.manifest.dim,
            Mode::Rebuild => None,
        };
        Writer {
            inner,
            _lock: lock,
            base,
            mode,
            spill: None,
            fields: None,
            field_lens: Vec::new(),
            ids: StagedIds::default(),
            doclens: Vec::new(),
            dim,
            deletes: Vec::new(),
            delete_set: HashSet::new(),
            options: None,
            compact: false,
        }
    }

    /// Documents pushed so far.
    pub fn pending(&self) -> usize {
        self.ids.len()
    }

    /// Stages the deletion of committed documents (applied atomically with the commit).
    /// Unknown or already-deleted ids are ignored; returns how many documents will be deleted.
    pub fn delete(&mut self, ids: &[String]) -> Result<usize> {
        self.inner.check_open()?;
        if matches!(self.mode, Mode::Rebuild) {
            return Err(PlaidError::invalid("a rebuild transaction cannot delete"));
        }
        let mut n = 0;
        for id in ids {
            if let Some(doc) = self.base.lookup(id) {
                if self.delete_set.insert(doc) {
                    self.deletes.push(doc);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Adds documents: `ids[i]` gets item `i` of `embeddings`. Fails (changing nothing) on a
    /// count mismatch, an empty or duplicate id (within the call, the transaction, or against
    /// live documents not deleted in this transaction), a wrong dim, a non-finite value or a
    /// document without tokens.
    pub fn push(&mut self, ids: Vec<String>, embeddings: EmbeddingsView<'_>) -> Result<()> {
        self.push_documents(ids, embeddings, None)
    }

    /// [`Self::push_documents`] replacing live documents that have the same ids (an upsert):
    /// they are deleted in this transaction, so searches see either the old documents or the
    /// new ones. Fails changing nothing, as `push_documents` does.
    pub fn upsert_documents(
        &mut self,
        ids: Vec<String>,
        embeddings: EmbeddingsView<'_>,
        fields: Option<&[DocumentFields]>,
    ) -> Result<()> {
        let staged = self.deletes.len();
        self.delete(&ids)?;
        let pushed = self.push_documents(ids, embeddings, fields);
        if pushed.is_err() {
            // Unstage this call's deletions: a failed call changes nothing.
            for doc in self.deletes.drain(staged..) {
                self.delete_set.remove(&doc);
            }
        }
        pushed
    }

    /// [`Self::push`] with the text and metadata to store with each document (`fields[i]`
    /// belongs to `ids[i]`). Metadata must be the text of a JSON object.
    pub fn push_documents(
        &mut self,
        ids: Vec<String>,
        embeddings: EmbeddingsView<'_>,
        fields: Option<&[DocumentFields]>,
    ) -> Result<()> {
        self.inner.check_open()?;
        colbert_core::validate(embeddings.dim, embeddings.offsets, embeddings.data)
            .map_err(|e| PlaidError::invalid(e.to_string()))?;
        if ids.len() != embeddings.len() {
            return Err(PlaidError::invalid(format!(
                "{} ids for {} documents",
                ids.len(),
                embeddings.len()
            )));
        }
        let dim = embeddings.dim;
        if let Some(d) = self.dim {
            if d != dim {
                return Err(PlaidError::invalid(format!("expected dim {d}, got {dim}")));
            }
        } else {
            check_nbits(
                self.options
                    .as_ref()
                    .unwrap_or(&self.base.manifest.options)
                    .nbits,
                dim,
            )?;
        }
        let mut seen = HashSet::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if id.is_empty() {
                return Err(PlaidError::invalid(format!("document {i} has an empty id")));
            }
            if !seen.insert(id.as_str()) || self.ids.contains(id) {
                return Err(PlaidError::invalid(format!("duplicate id {id:?}")));
            }
            if matches!(self.mode, Mode::Append) {
                if let Some(doc) = self.base.lookup(id) {
                    if !self.delete_set.contains(&doc) {
                        return Err(PlaidError::invalid(format!("id {id:?} already exists")));
                    }
                }
            }
            if embeddings.offsets[i + 1] == embeddings.offsets[i] {
                return Err(PlaidError::invalid(format!(
                    "document {id:?} has no embeddings"
                )));
            }
        }
        if let Some(f) = fields {
            if f.len() != ids.len() {
                return Err(PlaidError::invalid(format!(
                    "{} stored documents for {} ids",
                    f.len(),
                    ids.len()
                )));
            }
            for (id, d) in ids.iter().zip(f) {
                if d.text.as_ref().is_some_and(|t| t.len() > u32::MAX as usize) {
                    return Err(PlaidError::invalid(format!(
                        "the text of {id:?} exceeds 4 GiB"
                    )));
                }
                if let Some(m) = &d.metadata {
                    if m.len() > u32::MAX as usize
                        || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(m)
                            .is_err()
                    {
                        return Err(PlaidError::invalid(format!(
                            "the metadata of {id:?} must be a JSON object (under 4 GiB)"
                        )));
                    }
                }
            }
        }
        let total = self.base.manifest.next_doc as u64 + (self.ids.len() + ids.len()) as u64;
        if total >= u32::MAX as u64 {
            return Err(PlaidError::invalid("too many documents for one index"));
        }
        if self.spill.is_none() {
            self.spill = Some(Spill::create(
                &self.inner.dir,
                self.base.manifest.generation,
            )?);
        }
        let Some(spill) = self.spill.as_mut() else {
            return Err(PlaidError::Internal("no spill".into()));
        };
        let rows = embeddings.data.len() / dim;
        if let Err(e) = spill.out.write_all(bytemuck::cast_slice(embeddings.data)) {
            // A partial write leaves garbage past `rows`: drop the spill so the transaction
            // fails as a whole rather than committing inconsistent data.
            let p = spill.path.clone();
            self.spill = None;
            self.fields = None;
            self.field_lens.clear();
            self.ids.clear();
            self.doclens.clear();
            return Err(PlaidError::io("writing", &p, e));
        }
        spill.rows += rows;
        let n_before = self.field_lens.len();
        if let Err(e) = self.stage_fields(ids.len(), fields) {
            // Same as above: the transaction cannot continue with half-written fields.
            self.spill = None;
            self.fields = None;
            self.field_lens.clear();
            self.ids.clear();
            self.doclens.clear();
            return Err(e);
        }
        debug_assert_eq!(self.field_lens.len(), n_before + ids.len());
        self.dim = Some(dim);
        for w in embeddings.offsets.windows(2) {
            self.doclens.push(w[1] - w[0]);
        }
        for id in &ids {
            self.ids.push(id);
        }
        Ok(())
    }

    fn stage_fields(&mut self, n: usize, fields: Option<&[DocumentFields]>) -> Result<()> {
        let Some(fields) = fields.filter(|f| {
            f.iter()
                .any(|d| d.text.as_ref().is_some_and(|t| !t.is_empty()) || d.metadata.is_some())
        }) else {
            self.field_lens.extend(std::iter::repeat_n((0, 0), n));
            return Ok(());
        };
        if self.fields.is_none() {
            self.fields = Some(Spill::create(
                &self.inner.dir,
                self.base.manifest.generation,
            )?);
        }
        let Some(spill) = self.fields.as_mut() else {
            return Err(PlaidError::Internal("no field spill".into()));
        };
        for d in fields {
            let t = d.text.as_deref().unwrap_or("").as_bytes();
            let m = d.metadata.as_deref().unwrap_or("").as_bytes();
            self.field_lens.push(spill.append_fields(t, m)?);
        }
        Ok(())
    }

    /// Retrains everything (k-means, codec) from the decompressed live documents and writes
    /// one compacted segment (tombstones dropped, internal numbers reassigned; external ids
    /// unchanged). `options` may change training options (nbits, centroids, seed...).
    /// One transaction: readers keep the old generation until it commits.
    pub fn rebuild(
        mut self,
        options: Option<&IndexOptions>,
        cancel: &CancelToken,
        progress: OnProgress<'_>,
    ) -> Result<CommitInfo> {
        let base = self.base.clone();
        self.replace_all(options)?;
        if let (Some(dim), Some(o)) = (base.manifest.dim, &self.options) {
            check_nbits(o.nbits, dim)?;
        }
        let mut w = self;
        let dim = base.manifest.dim.unwrap_or(1);
        let mut batch_ids = Vec::new();
        let mut batch_fields: Vec<DocumentFields> = Vec::new();
        let mut batch = Vec::new();
        let mut offsets = vec![0u32];
        let mut buf = Vec::new();
        let flush = |w: &mut Writer,
                     ids: &mut Vec<String>,
                     fields: &mut Vec<DocumentFields>,
                     data: &mut Vec<f32>,
                     offs: &mut Vec<u32>|
         -> Result<()> {
            if !ids.is_empty() {
                w.push_documents(
                    std::mem::take(ids),
                    EmbeddingsView {
                        dim,
                        offsets: offs,
                        data,
                    },
                    Some(&std::mem::take(fields)),
                )?;
            }
            data.clear();
            offs.clear();
            offs.push(0);
            Ok(())
        };
        for seg in &base.segments {
            for l in 0..seg.meta.n_docs {
                let doc = seg.meta.doc_start + l;
                if base.tombstones.is_deleted(doc) {
                    continue;
                }
                if cancel.is_cancelled() {
                    return Err(PlaidError::Aborted);
                }
                base.decompress_doc(doc, &mut buf)?;
                batch.extend_from_slice(&buf);
                offsets.push((batch.len() / dim) as u32);
                batch_ids.push(seg.id(l).to_string());
                batch_fields.push(base.document(doc)?);
                if batch.len() > 1 << 20 {
                    flush(
                        &mut w,
                        &mut batch_ids,
                        &mut batch_fields,
                        &mut batch,
                        &mut offsets,
                    )?;
                }
            }
        }
        flush(
            &mut w,
            &mut batch_ids,
            &mut batch_fields,
            &mut batch,
            &mut offsets,
        )?;
        w.commit(cancel, progress)
    }

    /// Trains if needed, compresses, writes and publishes a new generation. On error or
    /// cancellation (`ABORTED`) nothing changes on disk.
    pub fn commit(mut self, cancel: &CancelToken, progress: OnProgress<'_>) -> Result<CommitInfo> {
        self.inner.check_open()?;
        let inner = self.inner.clone();
        inner.install_write(|| self.commit_inner(cancel, progress))
    }

    fn commit_inner(
        &mut self,
        cancel: &CancelToken,
        progress: OnProgress<'_>,
    ) -> Result<CommitInfo> {
        let dir = self.inner.dir.clone();
        let base = self.base.clone();
        let m0 = &base.manifest;
        let rebuild = matches!(self.mode, Mode::Rebuild);
        if self.ids.is_empty()
            && self.deletes.is_empty()
            && !rebuild
            && !(self.compact && merge::worth_compacting(m0))
        {
            return Ok(CommitInfo {
                generation: m0.generation,
                added: 0,
                deleted: 0,
                trained: false,
                new_centroids: 0,
                num_centroids: m0.num_centroids,
                merged_segments: 0,
                reclaimed: 0,
            });
        }
        let gen = m0.generation + 1;
        let mut created = Created(Vec::new());
        let mut m1: Manifest = m0.clone();
        m1.generation = gen;
        // Every commit writes its manifest in this build's format (older segments stay as
        // they are until a merge or `compact()` rewrites them).
        m1.format_version = crate::format::FORMAT_VERSION;
        let mut info = CommitInfo {
            generation: gen,
            added: self.ids.len(),
            deleted: self.deletes.len(),
            trained: false,
            new_centroids: 0,
            num_centroids: m0.num_centroids,
            merged_segments: 0,
            reclaimed: 0,
        };
        if rebuild {
            m1.segments.clear();
            m1.tombstones = None;
            m1.next_doc = 0;
            m1.live_docs = 0;
            m1.live_tokens = 0;
            m1.deleted_docs = 0;
            m1.codebook = None;
            m1.num_centroids = 0;
            m1.dim = None;
            if let Some(o) = &self.options {
                m1.options = o.clone();
            }
        }
        // Map the spill.
        let map: Option<Mmap> = self.spill.as_mut().map(Spill::map).transpose()?.flatten();
        let data: &[f32] = match &map {
            Some(m) => bytemuck::try_cast_slice(&m[..])
                .map_err(|_| PlaidError::Internal("misaligned spill".into()))?,
            None => &[],
        };
        let mut doc_rows = Vec::with_capacity(self.doclens.len() + 1);
        doc_rows.push(0usize);
        for &l in &self.doclens {
            doc_rows.push(doc_rows.last().copied().unwrap_or(0) + l as usize);
        }
        let mut tombstones = if rebuild {
            Tombstones::default()
        } else {
            base.tombstones.clone()
        };
        if !self.ids.is_empty() {
            let dim = self
                .dim
                .ok_or_else(|| PlaidError::Internal("no dim".into()))?;
            // Codes from the expansion scan (updated for any new centroids), reused.
            let mut known_codes: Option<Vec<u32>> = None;
            if data.len() != doc_rows.last().copied().unwrap_or(0) * dim {
                return Err(PlaidError::Internal("spill size mismatch".into()));
            }
            // 1. Codebook: train, or expand the existing one.
            let (centroids, codec): (Vec<f32>, ResidualCodec) = match (&base.codebook, rebuild) {
                (Some(cb), false) => {
                    let mut cents = cb.centroids().to_vec();
                    let (new, codes, outliers) = expand(&m1, cb, data, dim, gen, cancel, progress)?;
                    m1.drift.embeddings += (data.len() / dim) as u64;
                    m1.drift.outliers += outliers as u64;
                    info.new_centroids = new.len() / dim;
                    cents.extend_from_slice(&new);
                    known_codes = codes;
                    (cents, cb.codec.clone())
                }
                _ => {
                    let t = train(&m1, data, dim, &doc_rows, cancel, progress)?;
                    m1.cluster_threshold = t.threshold;
                    m1.cluster_threshold_weight = t.heldout as u64;
                    m1.drift = Drift {
                        trained_residual_norm: t.mean_norm,
                        ..Drift::default()
                    };
                    info.trained = true;
                    (t.centroids, t.codec)
                }
            };
            let k = centroids.len() / dim;
            if info.trained || info.new_centroids > 0 {
                let f = Codebook::write(&dir, gen, &centroids, &codec)?;
                created.0.push(dir.join(&f.name));
                m1.codebook = Some(f);
                m1.num_centroids = k;
                m1.dim = Some(dim);
            }
            info.num_centroids = k;
            // 2. Compress into a new segment.
            let mut seg = SegmentWriter::create(
                &dir,
                gen,
                m1.next_doc,
                &self.doclens,
                &self.ids,
                k,
                codec.row_bytes(),
            )?;
            created.0.push(seg.path().to_path_buf());
            let n_docs = self.ids.len();
            let mut norms_rng = Rng::new(m1.options.seed ^ gen);
            let mut norms: Vec<f32> = Vec::new();
            let mut seen_tokens = 0usize;
            let mut d0 = 0;
            while d0 < n_docs {
                if cancel.is_cancelled() {
                    return Err(PlaidError::Aborted);
                }
                let mut d1 = d0 + 1;
                while d1 < n_docs && doc_rows[d1 + 1] - doc_rows[d0] <= CHUNK_TOKENS {
                    d1 += 1;
                }
                let rows = &data[doc_rows[d0] * dim..doc_rows[d1] * dim];
                let known = known_codes
                    .as_deref()
                    .and_then(|c| c.get(doc_rows[d0]..doc_rows[d1]));
                let enc = encode_rows(&centroids, &codec, rows, dim, known);
                seg.write_tokens(doc_rows[d0] as u64, &enc.codes, &enc.packed, &enc.inv_norms)?;
                if !info.trained {
                    m1.drift.residual_norm_sum +=
                        enc.residual_norms.iter().map(|&r| r as f64).sum::<f64>();
                }
                for r in enc.residual_norms {
                    seen_tokens += 1;
                    if norms.len() < RESERVOIR {
                        norms.push(r);
                    } else {
                        let j = norms_rng.below(seen_tokens);
                        if j < RESERVOIR {
                            norms[j] = r;
                        }
                    }
                }
                progress(Progress::new(Stage::Compress, d1, n_docs));
                d0 = d1;
            }
            if !info.trained {
                // Token-weighted running estimate of the outlier threshold.
                let p75 = quantiles(&norms, &[0.75])[0];
                let (w0, w1) = (m1.cluster_threshold_weight as f64, seen_tokens as f64);
                m1.cluster_threshold = ((m1.cluster_threshold as f64 * w0 + p75 as f64 * w1)
                    / (w0 + w1).max(1.0)) as f32;
                m1.cluster_threshold_weight += seen_tokens as u64;
            }
            if cancel.is_cancelled() {
                return Err(PlaidError::Aborted);
            }
            progress(Progress::new(Stage::Write, 0, 1));
            let field_map: Option<Mmap> =
                self.fields.as_mut().map(Spill::map).transpose()?.flatten();
            let meta = seg.finish(&StagedFields {
                lens: &self.field_lens,
                bytes: field_map.as_deref().unwrap_or(&[]),
            })?;
            drop(field_map);
            m1.next_doc += meta.n_docs;
            m1.live_docs += meta.n_docs as u64;
            m1.live_tokens += meta.n_tokens;
            m1.segments.push(meta);
        } else {
            progress(Progress::new(Stage::Write, 0, 1));
        }
        // 3. Deletions staged by this transaction.
        let mut tombstones_changed = !self.deletes.is_empty();
        for &d in &self.deletes {
            tombstones.set(d);
            m1.live_tokens = m1.live_tokens.saturating_sub(base.doc_tokens(d) as u64);
        }
        m1.live_docs = m1.live_docs.saturating_sub(self.deletes.len() as u64);
        m1.deleted_docs += self.deletes.len() as u64;
        // 4. Merging, as the policy of `merge::segments_to_merge` says. Merged segments drop
        //    deleted documents: their survivors are renumbered (only the merged tail's numbers
        //    change) and the range's tombstones cleared.
        let take = merge::segments_to_merge(&m1, rebuild, self.compact);
        if take > 0 {
            let first = m1.segments.len() - take;
            let Some(dim) = m1.codebook.as_ref().and(m1.dim) else {
                return Err(PlaidError::Internal("merging an untrained index".into()));
            };
            let row_bytes = dim * m1.options.nbits as usize / 8;
            // Sources: the base snapshot's open segments, plus this commit's new one.
            let fresh = match m1.segments.get(base.segments.len()..) {
                Some([meta]) => Some(Segment::open(&dir, meta, row_bytes)?),
                Some([]) => None,
                _ => return Err(PlaidError::Internal("segments out of step".into())),
            };
            let mut sources: Vec<&Segment> =
                base.segments.iter().skip(first).map(|s| &**s).collect();
            sources.extend(fresh.as_ref());
            let doc_start = sources.first().map_or(0, |s| s.meta.doc_start);
            let keep = |d: u32| !tombstones.is_deleted(d);
            // The codebook of the generation being committed (this commit may have trained or
            // expanded it).
            let codebook = match (&base.codebook, &m1.codebook) {
                (Some(cb), Some(f)) if base.manifest.codebook.as_ref() == Some(f) => cb.clone(),
                (_, Some(f)) => Arc::new(Codebook::open(&dir, f, &m1)?),
                (_, None) => return Err(PlaidError::Internal("merging without a codebook".into())),
            };
            let merged = merge::merge_segments(
                &merge::MergeOutput {
                    dir: &dir,
                    generation: gen,
                    codebook: &codebook,
                },
                &sources,
                &keep,
                &mut created.0,
                cancel,
            )?;
            drop(sources);
            drop(fresh);
            let kept = merged.as_ref().map_or(0, |m| m.n_docs);
            let dropped = m1
                .next_doc
                .checked_sub(doc_start + kept)
                .ok_or_else(|| PlaidError::Internal("merge kept too many documents".into()))?
                as u64;
            m1.segments.truncate(first);
            m1.segments.extend(merged);
            m1.next_doc = doc_start + kept;
            m1.deleted_docs = m1.deleted_docs.saturating_sub(dropped);
            if dropped > 0 {
                tombstones.truncate(doc_start);
                tombstones_changed = true;
            }
            info.merged_segments = take;
            info.reclaimed = dropped as usize;
        }
        if tombstones_changed {
            m1.tombstones = if tombstones.count() == 0 {
                None
            } else {
                let f = tombstones.write(&dir, gen)?;
                created.0.push(dir.join(&f.name));
                Some(f)
            };
        }
        if cancel.is_cancelled() {
            return Err(PlaidError::Aborted);
        }
        // 5. Everything is durable: open the new generation, then publish it.
        storage::sync_dir(&dir)?;
        let snap = Arc::new(Snapshot::open_from(&dir, m1.clone(), Some(&base))?);
        drop(map);
        storage::write_manifest(&dir, &m1)?;
        created.0.clear();
        self.inner.publish(snap);
        progress(Progress::new(Stage::Write, 1, 1));
        storage::gc(&dir, &m1);
        Ok(info)
    }
}

/// What [`encode_rows`] makes of each row.
pub(crate) struct EncodedRows {
    /// Nearest centroid (inner product).
    pub codes: Vec<u32>,
    /// Packed residuals, `row_bytes` per row.
    pub packed: Vec<u8>,
    /// `‖x − centroid‖` before quantisation (drift statistics, outlier threshold).
    pub residual_norms: Vec<f32>,
    /// `1 / ‖centroid + decoded residual‖`, stored for search.
    pub inv_norms: Vec<f32>,
}

/// Nearest centroid, packed residual, residual norm and inverse reconstruction norm of every
/// row.
pub(crate) fn encode_rows(
    centroids: &[f32],
    codec: &ResidualCodec,
    rows: &[f32],
    dim: usize,
    known: Option<&[u32]>,
) -> EncodedRows {
    let assign: Vec<(u32, f32)> = match known {
        Some(k) if k.len() == rows.len() / dim => k.iter().map(|&c| (c, 0.0)).collect(),
        _ => argmax_centroids(rows, centroids, dim, 1.0, None),
    };
    let rb = codec.row_bytes();
    let n = rows.len() / dim;
    let mut packed = vec![0u8; n * rb];
    let mut norms = vec![0.0f32; n];
    let mut inv_norms = vec![0.0f32; n];
    packed
        .par_chunks_mut(rb)
        .zip(norms.par_iter_mut().zip(inv_norms.par_iter_mut()))
        .zip(rows.par_chunks(dim))
        .zip(assign.par_iter())
        .for_each_init(
            || vec![0.0f32; dim],
            |scratch, (((p, (nrm, inv)), x), &(c, _))| {
                let cent = &centroids[c as usize * dim..(c as usize + 1) * dim];
                codec.encode_residual(x, cent, p);
                *nrm = x
                    .iter()
                    .zip(cent)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                *inv = codec.reconstruct_into(cent, p, scratch);
            },
        );
    EncodedRows {
        codes: assign.into_iter().map(|a| a.0).collect(),
        packed,
        residual_norms: norms,
        inv_norms,
    }
}
