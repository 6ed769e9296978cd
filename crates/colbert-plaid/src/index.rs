//! [`PlaidIndex`]: the handle bindings use. Cheap to share (`Send + Sync`, clone or wrap in
//! `Arc`); every search runs on an immutable snapshot, so readers never wait for writers, and
//! on the process's search pool (`colbert_core::schedule`), so it never queues behind a
//! write's parallel work, which runs on the write pool.

use std::path::Path;
use std::sync::Arc;

use colbert_core::{CancelToken, Embeddings, EmbeddingsView, OnProgress};

use crate::error::{PlaidError, Result};
use crate::filter::Filter;
use crate::handle::{open_snapshot, Inner};
use crate::manifest::{self, IndexOptions, Manifest, MANIFEST};
use crate::search::{self, Hit, SearchParams};
use crate::segment::DocumentFields;
use crate::snapshot::Snapshot;
use crate::storage::{self, WriteTurn, WriterLock};
use crate::writer::{CommitInfo, Mode, Writer};

/// A summary of the current generation.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// The oldest format among the index's manifest and segments (`compact()` rewrites older
    /// segments in [`crate::FORMAT_VERSION`]).
    pub format_version: u32,
    pub generation: u64,
    /// Live documents.
    pub documents: u64,
    /// Token embeddings of live documents.
    pub embeddings: u64,
    /// `None` until the first commit trains the index.
    pub dim: Option<usize>,
    pub nbits: u8,
    pub num_centroids: usize,
    /// Deleted documents still occupying space (tombstones; `rebuild` compacts them).
    pub deleted: u64,
    /// Bytes of the files of the current generation.
    pub bytes_on_disk: u64,
    pub segments: usize,
    /// Bytes of centroid codes plus packed residuals (all segments, deleted documents
    /// included): `2 + dim·nbits/8` per embedding while K ≤ 65,536.
    pub payload_bytes: u64,
    /// Bytes of the inverted files (offsets + u32 postings).
    pub ivf_bytes: u64,
    /// Bytes of stored document texts and metadata (with their offsets).
    pub stored_bytes: u64,
    /// Residual-norm threshold used to detect outliers for centroid expansion.
    pub cluster_threshold: f32,
    /// How the embeddings added since training fit the codebook.
    pub drift: DriftInfo,
}

/// Codebook drift since training (stored in the manifest): when `outlier_fraction`
/// climbs well above its in-distribution level (about 0.25: the threshold is the 75th
/// percentile of residual norms) or `mean_residual_norm` well above `trained_residual_norm`,
/// new data no longer fits the codebook and `rebuild` would retrain it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DriftInfo {
    /// Embeddings added since the codebook was trained.
    pub embeddings: u64,
    /// Fraction of them that were outliers (0 when none were added).
    pub outlier_fraction: f32,
    /// Their mean residual norm as encoded (0 when none were added).
    pub mean_residual_norm: f32,
    /// Mean residual norm of the held-out embeddings at training.
    pub trained_residual_norm: f32,
}

/// A PLAID index on disk. See the crate documentation for the file format and pipeline.
#[derive(Clone)]
pub struct PlaidIndex {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PlaidIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaidIndex")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl PlaidIndex {
    /// Creates an empty, untrained index in `dir` (created if needed). A non-empty `dir` is
    /// `INDEX_EXISTS` unless `overwrite`; overwriting only replaces an existing index (as one
    /// transaction: readers of the old index keep their snapshot), never foreign files.
    pub fn create(dir: &Path, options: IndexOptions, overwrite: bool) -> Result<PlaidIndex> {
        let turn = WriteTurn::try_take(dir).ok_or_else(|| {
            PlaidError::Locked(format!(
                "{} (by another transaction of this process)",
                dir.display()
            ))
        })?;
        Self::create_in(dir, options, overwrite, turn)
    }

    /// [`Self::create`] with this process's write turn for `dir` in hand (see
    /// [`WriteTurn::queue`]), so that it runs after the process's earlier writes to `dir`.
    pub fn create_in(
        dir: &Path,
        options: IndexOptions,
        overwrite: bool,
        turn: WriteTurn,
    ) -> Result<PlaidIndex> {
        let stored = options.stored()?;
        std::fs::create_dir_all(dir).map_err(|e| PlaidError::io("creating", dir, e))?;
        let non_empty = std::fs::read_dir(dir)
            .map_err(|e| PlaidError::io("listing", dir, e))?
            .next()
            .is_some();
        let existing = dir.join(MANIFEST).exists();
        if non_empty && !overwrite {
            return Err(PlaidError::Exists(dir.display().to_string()));
        }
        if non_empty && !existing {
            let only_lock = std::fs::read_dir(dir)
                .map_err(|e| PlaidError::io("listing", dir, e))?
                .flatten()
                .all(|e| e.file_name() == storage::LOCK);
            if !only_lock {
                return Err(PlaidError::Exists(format!(
                    "{} (not an index; refusing to overwrite)",
                    dir.display()
                )));
            }
        }
        let _lock = WriterLock::acquire_in(dir, turn)?;
        let mut m = Manifest::empty(stored);
        if existing {
            // Keep generations increasing even if the old manifest is unreadable.
            m.generation = manifest::read(dir).map(|o| o.generation + 1).unwrap_or(1);
        }
        storage::write_manifest(dir, &m)?;
        storage::gc(dir, &m);
        let snap = Snapshot::open(dir, m)?;
        Ok(PlaidIndex {
            inner: Arc::new(Inner::new(dir, snap)),
        })
    }

    /// Opens an existing index (`INDEX_NOT_FOUND`, `INDEX_FORMAT_UNSUPPORTED`, `INDEX_CORRUPT`).
    /// Files are memory-mapped; nothing is merged or rewritten.
    pub fn open(dir: &Path) -> Result<PlaidIndex> {
        let snap = open_snapshot(dir, None, None)?;
        // Best effort: collect files of crashed transactions or old generations. The lock is
        // only tried when there is garbage, so opening rarely makes a writer see INDEX_LOCKED.
        if !storage::has_garbage(dir, &snap.manifest) {
        } else if let Ok(_lock) = WriterLock::try_acquire(dir) {
            if let Ok(m) = manifest::read(dir) {
                if m == snap.manifest {
                    storage::gc(dir, &m);
                }
            }
        }
        Ok(PlaidIndex {
            inner: Arc::new(Inner::new(dir, snap)),
        })
    }

    /// The current snapshot (white-box tests of crate internals).
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Result<Arc<Snapshot>> {
        self.inner.snapshot()
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn info(&self) -> Result<IndexInfo> {
        let s = self.inner.snapshot()?;
        let m = &s.manifest;
        let (payload_bytes, ivf_bytes) = s
            .segments
            .iter()
            .map(|g| g.byte_breakdown())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let stored_bytes = s.segments.iter().map(|g| g.field_bytes()).sum();
        Ok(IndexInfo {
            stored_bytes,
            payload_bytes,
            ivf_bytes,
            format_version: m
                .segments
                .iter()
                .map(|g| g.format)
                .fold(m.format_version, u32::min),
            generation: m.generation,
            documents: m.live_docs,
            embeddings: m.live_tokens,
            dim: m.dim,
            nbits: m.options.nbits,
            num_centroids: m.num_centroids,
            deleted: m.deleted_docs,
            bytes_on_disk: storage::bytes_on_disk(&self.inner.dir, m),
            segments: m.segments.len(),
            cluster_threshold: m.cluster_threshold,
            drift: {
                let d = &m.drift;
                let n = d.embeddings.max(1) as f64;
                DriftInfo {
                    embeddings: d.embeddings,
                    outlier_fraction: (d.outliers as f64 / n) as f32,
                    mean_residual_norm: (d.residual_norm_sum / n) as f32,
                    trained_residual_norm: d.trained_residual_norm,
                }
            },
        })
    }

    /// Starts a write transaction on the latest committed generation. Takes the cross-process
    /// writer lock (`INDEX_LOCKED` if another writer holds it), released when the writer is
    /// committed or dropped.
    pub fn writer(&self) -> Result<Writer> {
        self.writer_with(WriterLock::try_acquire(&self.inner.dir)?)
    }

    /// [`Self::writer`] with this process's write turn in hand: queue for it with
    /// [`Self::queue_write`], and `INDEX_LOCKED` then only means another process writes.
    pub fn writer_in(&self, turn: WriteTurn) -> Result<Writer> {
        self.writer_with(WriterLock::acquire_in(&self.inner.dir, turn)?)
    }

    /// Queues for this process's write turn on the index folder (shared by every handle and
    /// thread of the process): `ready` gets it once the process's earlier transactions on
    /// the folder have ended, in the order asked; nothing blocks while waiting. Pass it to
    /// [`Self::writer_in`].
    pub fn queue_write(&self, ready: impl FnOnce(WriteTurn) + Send + 'static) {
        WriteTurn::queue(&self.inner.dir, ready);
    }

    fn writer_with(&self, lock: WriterLock) -> Result<Writer> {
        self.inner.check_open()?;
        self.inner.reload()?;
        let base = self.inner.snapshot()?;
        Ok(Writer::new(self.inner.clone(), lock, base, Mode::Append))
    }

    /// Merges every segment into one and drops deleted documents, reclaiming their space,
    /// without retraining (unlike [`Self::rebuild`], nothing is re-encoded: codes and
    /// residuals are copied). One transaction; a no-op on an index with at most one segment
    /// and no deleted documents.
    pub fn compact(&self, cancel: &CancelToken, progress: OnProgress<'_>) -> Result<CommitInfo> {
        self.writer()?.compact(cancel, progress)
    }

    /// Deletes documents by id in one transaction. Unknown (or already deleted) ids are
    /// ignored; returns the number of documents deleted. Deleted documents keep their space
    /// (tombstones) until a merge, `compact` or `rebuild` drops them; external ids of other
    /// documents never change.
    pub fn delete(&self, ids: &[String]) -> Result<usize> {
        self.writer()?.delete_and_commit(ids)
    }

    /// Searches a batch of queries (parallel over queries and, within a query, over
    /// candidates). `subset` restricts results to those ids (unknown ids are ignored).
    /// Results are best first (ties: older document first).
    pub fn search(
        &self,
        queries: EmbeddingsView<'_>,
        params: &SearchParams,
        subset: Option<&[String]>,
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<Hit>>> {
        self.search_where(queries, params, subset, None, cancel)
    }

    /// [`Self::search`] restricted to documents whose stored metadata matches `filter` (and
    /// that are in `subset`, when given).
    pub fn search_where(
        &self,
        queries: EmbeddingsView<'_>,
        params: &SearchParams,
        subset: Option<&[String]>,
        filter: Option<&Filter>,
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<Hit>>> {
        let snap = self.inner.snapshot()?;
        self.inner.install_search(|| {
            let docs = search::scope(&snap, subset, filter)?;
            search::search(&snap, queries, params, docs, cancel)
        })
    }

    /// Ids of the live documents whose metadata matches `filter`, in insertion order.
    pub fn select(&self, filter: &Filter) -> Result<Vec<String>> {
        let snap = self.inner.snapshot()?;
        let docs = self
            .inner
            .install_search(|| search::scope(&snap, None, Some(filter)))?
            .unwrap_or_default();
        Ok(docs
            .into_iter()
            .map(|d| snap.external_id(d).to_string())
            .collect())
    }

    /// The stored text and metadata of each id (`None` for ids that are not live documents;
    /// fields that were not stored are `None`).
    pub fn documents(&self, ids: &[String]) -> Result<Vec<Option<DocumentFields>>> {
        let snap = self.inner.snapshot()?;
        ids.iter()
            .map(|id| {
                let Some(doc) = snap.lookup(id) else {
                    return Ok(None);
                };
                snap.document(doc).map(Some)
            })
            .collect()
    }

    /// Picks up a generation committed by another handle or process; `true` if it changed.
    pub fn refresh(&self) -> Result<bool> {
        Ok(self.inner.reload()?.is_some())
    }

    /// Whether a live document has this id.
    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(self.inner.snapshot()?.lookup(id).is_some())
    }

    /// Decompressed embeddings of the given documents (`INVALID_ARGUMENT` for unknown ids).
    pub fn reconstruct(&self, ids: &[String]) -> Result<Embeddings> {
        let snap = self.inner.snapshot()?;
        let dim = snap.manifest.dim.unwrap_or(0);
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let doc = snap
                .lookup(id)
                .ok_or_else(|| PlaidError::invalid(format!("unknown id {id:?}")))?;
            let mut v = Vec::new();
            snap.decompress_doc(doc, &mut v)?;
            items.push(v);
        }
        Ok(Embeddings::from_items(dim.max(1), items))
    }

    /// Retrains everything (k-means, codec) from the decompressed live documents and writes
    /// one compacted segment (tombstones dropped, internal numbers reassigned; external ids
    /// unchanged). `options` may change training options (nbits, centroids, seed...).
    /// One transaction: readers keep the old generation until it commits.
    pub fn rebuild(
        &self,
        options: Option<&IndexOptions>,
        cancel: &CancelToken,
        progress: OnProgress<'_>,
    ) -> Result<CommitInfo> {
        self.writer()?.rebuild(options, cancel, progress)
    }

    /// Closes the handle: later calls fail with `CLOSED`. Searches already running finish on
    /// their snapshot; files are unmapped when the last one ends.
    pub fn close(&self) {
        self.inner.close();
    }
}
