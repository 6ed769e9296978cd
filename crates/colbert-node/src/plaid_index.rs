//! The PLAID index: `NativePlaidIndex` (open handle), `NativeWriter` (one add transaction).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use colbert_core::{schedule, CancelToken as Cancel, OnProgress};
use colbert_plaid::{
    CommitInfo, DocumentFields, DriftInfo, Filter, Hit, IndexInfo, IndexOptions, PlaidError,
    PlaidIndex, SearchParams, Writer,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::embeddings::OwnedEmbeddings;
use crate::errors::{closed, invalid, OrThrow, Outcome};
use crate::model::CancelToken;
use crate::progress::{reporter, OnProgressJs};
use crate::tasks;

/// Options of `createPlaidIndex`, validated by the TypeScript layer.
#[napi(object)]
pub struct NativeIndexOptions {
    pub nbits: Option<u32>,
    pub kmeans_iterations: Option<u32>,
    pub num_centroids: Option<u32>,
    pub seed: Option<i64>,
    pub max_points_per_centroid: Option<u32>,
    pub overwrite: Option<bool>,
}

/// A summary of the committed state.
#[napi(object)]
pub struct NativeIndexInfo {
    pub format_version: u32,
    pub generation: i64,
    pub documents: i64,
    pub embeddings: i64,
    pub dim: Option<u32>,
    pub nbits: u32,
    pub num_centroids: u32,
    pub deleted: i64,
    pub bytes_on_disk: i64,
    pub segments: u32,
    /// Bytes of stored texts and metadata.
    pub stored_bytes: i64,
    pub drift: NativeDrift,
}

/// How the embeddings added since training fit the codebook.
#[napi(object)]
pub struct NativeDrift {
    pub embeddings: i64,
    pub outlier_fraction: f64,
    pub mean_residual_norm: f64,
    pub trained_residual_norm: f64,
}

/// Search knobs; absent fields take ColBERT's defaults for `k`.
#[napi(object)]
pub struct NativeSearchParams {
    pub k: u32,
    pub n_probe: Option<u32>,
    pub centroid_score_threshold: Option<f64>,
    pub candidates: Option<u32>,
    pub exact_candidates: Option<u32>,
}

/// The stored text and metadata (JSON text) of one document.
#[napi(object)]
pub struct NativeDocument {
    pub text: Option<String>,
    pub metadata: Option<String>,
}

#[napi(object)]
pub struct NativeHit {
    pub id: String,
    pub score: f64,
}

/// What a commit did.
#[napi(object)]
pub struct NativeCommitInfo {
    pub generation: i64,
    pub added: u32,
    pub deleted: u32,
    pub trained: bool,
    pub new_centroids: u32,
    pub num_centroids: u32,
    pub merged_segments: u32,
    pub reclaimed: u32,
}

impl From<CommitInfo> for NativeCommitInfo {
    fn from(c: CommitInfo) -> Self {
        NativeCommitInfo {
            generation: c.generation as i64,
            added: c.added as u32,
            deleted: c.deleted as u32,
            trained: c.trained,
            new_centroids: c.new_centroids as u32,
            num_centroids: c.num_centroids as u32,
            merged_segments: c.merged_segments as u32,
            reclaimed: c.reclaimed as u32,
        }
    }
}

impl From<IndexInfo> for NativeIndexInfo {
    fn from(i: IndexInfo) -> Self {
        NativeIndexInfo {
            format_version: i.format_version,
            generation: i.generation as i64,
            documents: i.documents as i64,
            embeddings: i.embeddings as i64,
            dim: i.dim.map(|d| d as u32),
            nbits: u32::from(i.nbits),
            num_centroids: i.num_centroids as u32,
            deleted: i.deleted as i64,
            bytes_on_disk: i.bytes_on_disk as i64,
            segments: i.segments as u32,
            stored_bytes: i.stored_bytes as i64,
            drift: i.drift.into(),
        }
    }
}

impl From<DriftInfo> for NativeDrift {
    fn from(d: DriftInfo) -> Self {
        NativeDrift {
            embeddings: d.embeddings as i64,
            outlier_fraction: f64::from(d.outlier_fraction),
            mean_residual_norm: f64::from(d.mean_residual_norm),
            trained_residual_norm: f64::from(d.trained_residual_norm),
        }
    }
}

impl From<NativeSearchParams> for SearchParams {
    fn from(p: NativeSearchParams) -> Self {
        SearchParams {
            k: p.k as usize,
            n_probe: p.n_probe.map(|n| n as usize),
            centroid_score_threshold: p.centroid_score_threshold.map(|t| t as f32),
            candidates: p.candidates.map(|n| n as usize),
            exact_candidates: p.exact_candidates.map(|n| n as usize),
        }
    }
}

impl From<Hit> for NativeHit {
    fn from(h: Hit) -> Self {
        NativeHit {
            id: h.id,
            score: f64::from(h.score),
        }
    }
}

impl From<DocumentFields> for NativeDocument {
    fn from(d: DocumentFields) -> Self {
        NativeDocument {
            text: d.text,
            metadata: d.metadata,
        }
    }
}

impl From<NativeDocument> for DocumentFields {
    fn from(d: NativeDocument) -> Self {
        DocumentFields {
            text: d.text,
            metadata: d.metadata,
        }
    }
}

/// An open index.
#[napi]
pub struct NativePlaidIndex {
    inner: Arc<PlaidIndex>,
}

impl From<PlaidIndex> for NativePlaidIndex {
    fn from(index: PlaidIndex) -> Self {
        NativePlaidIndex {
            inner: Arc::new(index),
        }
    }
}

/// Creates an empty index folder.
#[napi(catch_unwind)]
pub fn create_plaid_index(
    env: &Env,
    dir: String,
    options: NativeIndexOptions,
) -> Result<PromiseRaw<'_, NativePlaidIndex>> {
    let (options, overwrite) = index_options(options)?;
    let dir = PathBuf::from(dir);
    tasks::spawn_write(
        env,
        &dir.clone(),
        1,
        move |turn| Ok(PlaidIndex::create_in(&dir, options, overwrite, turn)?),
        NativePlaidIndex::from,
    )
}

/// Training options (and `overwrite`) from their JavaScript form.
pub(crate) fn index_options(options: NativeIndexOptions) -> Outcome<(IndexOptions, bool)> {
    let defaults = IndexOptions::default();
    let opts = IndexOptions {
        nbits: options.nbits.map_or(defaults.nbits, |n| n.min(255) as u8),
        kmeans_iterations: options
            .kmeans_iterations
            .map_or(defaults.kmeans_iterations, |n| n as usize),
        num_centroids: options.num_centroids.map(|n| n as usize),
        seed: match options.seed {
            Some(s) if s < 0 => return Err(invalid("seed must be a non-negative integer")),
            Some(s) => s as u64,
            None => defaults.seed,
        },
        max_points_per_centroid: options
            .max_points_per_centroid
            .map_or(defaults.max_points_per_centroid, |n| n as usize),
    };
    Ok((opts, options.overwrite.unwrap_or(false)))
}

/// Opens an index folder (mmap; usable at once).
#[napi(catch_unwind)]
pub fn open_plaid_index(env: &Env, dir: String) -> Result<PromiseRaw<'_, NativePlaidIndex>> {
    tasks::spawn_search(
        env,
        move || Ok(PlaidIndex::open(&PathBuf::from(dir))?),
        NativePlaidIndex::from,
    )
}

#[napi]
impl NativePlaidIndex {
    #[napi(getter, catch_unwind)]
    pub fn info(&self) -> Result<NativeIndexInfo> {
        Ok(self.inner.info().or_throw()?.into())
    }

    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.inner.dir().display().to_string()
    }

    /// Starts an add transaction once this process's earlier writes to the index are done,
    /// taking the cross-process writer lock (`INDEX_LOCKED`: another process writes). With
    /// `replaceAll`, the transaction replaces every document (retraining with those options).
    #[napi(catch_unwind)]
    pub fn writer<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        replace_all: Option<NativeIndexOptions>,
    ) -> Result<PromiseRaw<'env, NativeWriter>> {
        let replace_all = replace_all.map(index_options).transpose()?;
        let index = Arc::clone(&self.inner);
        let cancel = cancel.inner.clone();
        tasks::spawn_write(
            env,
            self.inner.dir(),
            1,
            move |turn| {
                if cancel.is_cancelled() {
                    return Err(PlaidError::Aborted.into());
                }
                let mut w = index.writer_in(turn)?;
                if let Some((options, _)) = &replace_all {
                    w.replace_all(Some(options))?;
                }
                Ok(w)
            },
            |w| NativeWriter {
                inner: Arc::new(Mutex::new(Some(w))),
            },
        )
    }

    /// Deletes documents by id in one transaction (after this process's earlier writes);
    /// returns how many were live.
    #[napi(catch_unwind)]
    pub fn delete<'env>(&self, env: &'env Env, ids: Vec<String>) -> Result<PromiseRaw<'env, u32>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_write(
            env,
            self.inner.dir(),
            1,
            move |turn| Ok(index.writer_in(turn)?.delete_and_commit(&ids)?),
            |n| n as u32,
        )
    }

    /// Searches a batch of queries (parallel over queries and candidates, on the search pool).
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)] // one JavaScript call's positional arguments
    pub fn search<'env>(
        &self,
        env: &'env Env,
        dim: u32,
        offsets: Uint32Array,
        data: Float32Array,
        params: NativeSearchParams,
        subset: Option<Vec<String>>,
        filter: Option<String>,
        cancel: &CancelToken,
    ) -> Result<PromiseRaw<'env, Vec<Vec<NativeHit>>>> {
        let queries = OwnedEmbeddings::copy(dim, &offsets, &data);
        let params = SearchParams::from(params);
        let index = Arc::clone(&self.inner);
        let cancel = cancel.inner.clone();
        tasks::spawn_search(
            env,
            move || {
                let filter = filter.map(|f| Filter::parse(&f)).transpose()?;
                Ok(index.search_where(
                    queries.view(),
                    &params,
                    subset.as_deref(),
                    filter.as_ref(),
                    &cancel,
                )?)
            },
            |hits| {
                hits.into_iter()
                    .map(|q| q.into_iter().map(NativeHit::from).collect())
                    .collect()
            },
        )
    }

    /// The stored text and metadata of each id (`null` for ids that are not live documents).
    #[napi(catch_unwind)]
    pub fn documents<'env>(
        &self,
        env: &'env Env,
        ids: Vec<String>,
    ) -> Result<PromiseRaw<'env, Vec<Option<NativeDocument>>>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(
            env,
            move || Ok(index.documents(&ids)?),
            |docs| {
                docs.into_iter()
                    .map(|d| d.map(NativeDocument::from))
                    .collect()
            },
        )
    }

    /// Ids of the live documents whose metadata matches a filter (JSON text), in insertion order.
    #[napi(catch_unwind)]
    pub fn select<'env>(
        &self,
        env: &'env Env,
        filter: String,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(
            env,
            move || Ok(index.select(&Filter::parse(&filter)?)?),
            |ids| ids,
        )
    }

    /// Merges every segment into one without the deleted documents, without retraining, in
    /// one transaction (takes the writer lock).
    #[napi(catch_unwind)]
    pub fn compact<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
        on_progress: Option<OnProgressJs>,
    ) -> Result<PromiseRaw<'env, NativeCommitInfo>> {
        self.whole_index(env, cancel, on_progress, |w, c, p| w.compact(c, p))
    }

    /// Retrains the codebook on the live documents and compacts deleted ones away, in one
    /// transaction (takes the writer lock).
    #[napi(catch_unwind)]
    pub fn rebuild<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
        on_progress: Option<OnProgressJs>,
    ) -> Result<PromiseRaw<'env, NativeCommitInfo>> {
        self.whole_index(env, cancel, on_progress, |w, c, p| w.rebuild(None, c, p))
    }

    /// Picks up a newer committed state written by another handle or process.
    #[napi(catch_unwind)]
    pub fn refresh<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, bool>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(env, move || Ok(index.refresh()?), |changed| changed)
    }

    /// Closes the handle; later calls fail with `CLOSED`.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.inner.close();
    }
}

/// A whole-index transaction of the engine: (writer, cancel, progress) → commit.
type WholeIndexRun = fn(Writer, &Cancel, OnProgress<'_>) -> colbert_plaid::Result<CommitInfo>;

impl NativePlaidIndex {
    /// Runs a whole-index transaction (`compact`, `rebuild`) as one task holding the thread
    /// budget, after this process's earlier writes, with cancellation and progress.
    fn whole_index<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        on_progress: Option<OnProgressJs>,
        run: WholeIndexRun,
    ) -> Result<PromiseRaw<'env, NativeCommitInfo>> {
        let index = Arc::clone(&self.inner);
        let cancel = cancel.inner.clone();
        tasks::spawn_write(
            env,
            self.inner.dir(),
            schedule::budget(),
            move |turn| {
                if cancel.is_cancelled() {
                    return Err(PlaidError::Aborted.into());
                }
                let writer = index.writer_in(turn)?;
                Ok(run(writer, &cancel, &reporter(on_progress))?)
            },
            NativeCommitInfo::from,
        )
    }
}

/// One add transaction. Nothing is visible to searches until `commit` returns; dropping or
/// aborting it leaves the index unchanged.
#[napi]
pub struct NativeWriter {
    inner: Arc<Mutex<Option<Writer>>>,
}

fn closed_writer() -> crate::errors::Coded {
    closed("this add transaction has already been committed or aborted")
}

#[napi]
impl NativeWriter {
    /// Adds a batch of documents with optional stored text and metadata (JSON text), spilled
    /// to disk until commit. With `replace`, live documents with the same ids are replaced in
    /// the same transaction (an upsert).
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)] // one JavaScript call's positional arguments
    pub fn push<'env>(
        &self,
        env: &'env Env,
        ids: Vec<String>,
        dim: u32,
        offsets: Uint32Array,
        data: Float32Array,
        documents: Option<Vec<NativeDocument>>,
        replace: Option<bool>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let embeddings = OwnedEmbeddings::copy(dim, &offsets, &data);
        let fields: Option<Vec<DocumentFields>> =
            documents.map(|d| d.into_iter().map(DocumentFields::from).collect());
        let writer = Arc::clone(&self.inner);
        tasks::spawn(
            env,
            1,
            move || {
                let mut guard = writer.lock().unwrap_or_else(|p| p.into_inner());
                let w = guard.as_mut().ok_or_else(closed_writer)?;
                let (view, fields) = (embeddings.view(), fields.as_deref());
                if replace == Some(true) {
                    w.upsert_documents(ids, view, fields)?;
                } else {
                    w.push_documents(ids, view, fields)?;
                }
                Ok(())
            },
            |()| (),
        )
    }

    /// Trains (first add), compresses and commits atomically.
    #[napi(catch_unwind)]
    pub fn commit<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
        on_progress: Option<OnProgressJs>,
    ) -> Result<PromiseRaw<'env, NativeCommitInfo>> {
        let writer = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(closed_writer)?;
        let cancel = cancel.inner.clone();
        tasks::spawn(
            env,
            schedule::budget(),
            move || Ok(writer.commit(&cancel, &reporter(on_progress))?),
            NativeCommitInfo::from,
        )
    }

    /// Discards the transaction and releases the writer lock.
    #[napi(catch_unwind)]
    pub fn abort(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
