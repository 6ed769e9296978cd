//! The PLAID index: `NativePlaidIndex` (open handle), `NativeWriter` (one add transaction).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use colbert_embeddings::EmbeddingsView;
use colbert_encode::schedule;
use colbert_plaid::{
    CommitInfo, DocumentFields, Filter, IndexOptions, OpenOptions, PlaidError, PlaidIndex, Pools,
    Progress, SearchParams, Writer,
};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::errors::{embeddings_error, invalid, plaid_error};
use crate::model::CancelToken;
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

fn parse_filter(filter: Option<String>) -> Result<Option<Filter>> {
    filter
        .map(|f| Filter::parse(&f).map_err(plaid_error))
        .transpose()
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

fn commit_info(c: CommitInfo) -> NativeCommitInfo {
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

fn budget() -> usize {
    schedule::budget()
}

/// The process's search and write pools, shared by every handle (`threads` builds a pool of
/// the handle's own only where one could not be started).
fn pools() -> Pools {
    Pools {
        search: schedule::search_pool(),
        write: schedule::write_pool(),
    }
}

/// An open index.
#[napi]
pub struct NativePlaidIndex {
    inner: Arc<PlaidIndex>,
}

fn wrap(index: PlaidIndex) -> NativePlaidIndex {
    NativePlaidIndex {
        inner: Arc::new(index),
    }
}

/// Creates an empty index folder.
#[napi(catch_unwind, ts_return_type = "Promise<NativePlaidIndex>")]
pub fn create_plaid_index<'env>(
    env: &'env Env,
    dir: String,
    options: NativeIndexOptions,
) -> Result<Object<'env>> {
    let opts = index_options(options)?;
    let overwrite = opts.1;
    let dir = PathBuf::from(dir);
    tasks::spawn_write(
        env,
        &dir.clone(),
        1,
        move |turn| PlaidIndex::create_in(&dir, opts.0, overwrite, turn).map_err(plaid_error),
        |index| Ok(wrap(index)),
    )
}

/// Training options (and `overwrite`) from their JavaScript form.
fn index_options(options: NativeIndexOptions) -> Result<(IndexOptions, bool)> {
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
        threads: Some(budget()),
        pools: pools(),
    };
    Ok((opts, options.overwrite.unwrap_or(false)))
}

/// Opens an index folder (mmap; usable at once).
#[napi(catch_unwind, ts_return_type = "Promise<NativePlaidIndex>")]
pub fn open_plaid_index<'env>(env: &'env Env, dir: String) -> Result<Object<'env>> {
    tasks::spawn_search(
        env,
        move || {
            PlaidIndex::open_with(
                &PathBuf::from(dir),
                OpenOptions {
                    threads: Some(budget()),
                    pools: pools(),
                },
            )
            .map_err(plaid_error)
        },
        |index| Ok(wrap(index)),
    )
}

/// A commit's progress event, as the TypeScript layer hands it on (`AddProgress`).
#[napi(object)]
pub struct NativeCommitProgress {
    #[napi(ts_type = "'sample' | 'kmeans' | 'expand' | 'compress' | 'write'")]
    pub stage: String,
    pub done: u32,
    pub total: u32,
}

/// Called with each [`NativeCommitProgress`]; typed in `native.d.ts` by `ts_arg_type` on each
/// parameter (napi's type generation does not see through this alias).
type ProgressCallback =
    ThreadsafeFunction<NativeCommitProgress, (), NativeCommitProgress, Status, false, true>;

impl From<Progress> for NativeCommitProgress {
    fn from(p: Progress) -> Self {
        let event = |stage: &str, done: usize, total: usize| NativeCommitProgress {
            stage: stage.into(),
            done: u32::try_from(done).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
        };
        match p {
            // One event each when sampling and centroid expansion are done.
            Progress::Sampling { documents, .. } => event("sample", documents, documents),
            Progress::KMeans {
                iteration, total, ..
            } => event("kmeans", iteration, total),
            Progress::Expansion { new_centroids, .. } => {
                event("expand", new_centroids, new_centroids)
            }
            Progress::Compress { done, total } => event("compress", done, total),
            // Writing has started; the commit's promise resolving is its end.
            Progress::Writing => event("write", 0, 1),
        }
    }
}

/// Forwards engine progress to the optional JavaScript callback (never blocking).
fn reporter(on_progress: &Option<ProgressCallback>) -> impl Fn(Progress) + Sync + '_ {
    move |p| {
        if let Some(f) = on_progress {
            f.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

#[napi]
impl NativePlaidIndex {
    #[napi(getter, catch_unwind)]
    pub fn info(&self) -> Result<NativeIndexInfo> {
        let i = self.inner.info().map_err(plaid_error)?;
        Ok(NativeIndexInfo {
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
            drift: NativeDrift {
                embeddings: i.drift.embeddings as i64,
                outlier_fraction: f64::from(i.drift.outlier_fraction),
                mean_residual_norm: f64::from(i.drift.mean_residual_norm),
                trained_residual_norm: f64::from(i.drift.trained_residual_norm),
            },
        })
    }

    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.inner.dir().display().to_string()
    }

    /// Starts an add transaction once this process's earlier writes to the index are done,
    /// taking the cross-process writer lock (`INDEX_LOCKED`: another process writes). With
    /// `replaceAll`, the transaction replaces every document (retraining with those options).
    #[napi(catch_unwind, ts_return_type = "Promise<NativeWriter>")]
    pub fn writer<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        replace_all: Option<NativeIndexOptions>,
    ) -> Result<Object<'env>> {
        let replace_all = replace_all.map(index_options).transpose()?;
        let index = Arc::clone(&self.inner);
        let token = cancel.inner.clone();
        tasks::spawn_write(
            env,
            self.inner.dir(),
            1,
            move |turn| {
                if token.is_cancelled() {
                    return Err(plaid_error(PlaidError::Aborted));
                }
                let mut w = index.writer_in(turn).map_err(plaid_error)?;
                if let Some((options, _)) = &replace_all {
                    w.replace_all(Some(options)).map_err(plaid_error)?;
                }
                Ok(w)
            },
            |w| {
                Ok(NativeWriter {
                    inner: Arc::new(Mutex::new(Some(w))),
                })
            },
        )
    }

    /// Deletes documents by id in one transaction (after this process's earlier writes);
    /// returns how many were live.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn delete<'env>(&self, env: &'env Env, ids: Vec<String>) -> Result<Object<'env>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_write(
            env,
            self.inner.dir(),
            1,
            move |turn| {
                index
                    .writer_in(turn)
                    .and_then(|w| w.delete_and_commit(&ids))
                    .map_err(plaid_error)
            },
            |n| Ok(n as u32),
        )
    }

    /// Searches a batch of queries (parallel over queries and candidates, on the whole budget).
    #[napi(catch_unwind, ts_return_type = "Promise<NativeHit[][]>")]
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Object<'env>> {
        let filter = parse_filter(filter)?;
        // Copy before leaving the JavaScript thread: the caller may reuse its arrays.
        let (offsets, data) = (offsets.to_vec(), data.to_vec());
        EmbeddingsView::new(dim as usize, &offsets, &data).map_err(embeddings_error)?;
        let p = SearchParams {
            k: params.k as usize,
            n_probe: params.n_probe.map(|n| n as usize),
            centroid_score_threshold: params.centroid_score_threshold.map(|t| t as f32),
            candidates: params.candidates.map(|n| n as usize),
            exact_candidates: params.exact_candidates.map(|n| n as usize),
        };
        let index = Arc::clone(&self.inner);
        let token = cancel.inner.clone();
        tasks::spawn_search(
            env,
            move || {
                // Validated above, on the JavaScript thread.
                let view = EmbeddingsView {
                    dim: dim as usize,
                    offsets: &offsets,
                    data: &data,
                };
                index
                    .search_where(view, &p, subset.as_deref(), filter.as_ref(), &|| {
                        token.is_cancelled()
                    })
                    .map_err(plaid_error)
            },
            |hits| {
                Ok(hits
                    .into_iter()
                    .map(|q| {
                        q.into_iter()
                            .map(|h| NativeHit {
                                id: h.id,
                                score: f64::from(h.score),
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>())
            },
        )
    }

    /// The stored text and metadata of each id (`null` for ids that are not live documents).
    #[napi(catch_unwind, ts_return_type = "Promise<Array<NativeDocument | null>>")]
    pub fn documents<'env>(&self, env: &'env Env, ids: Vec<String>) -> Result<Object<'env>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(
            env,
            move || index.documents(&ids).map_err(plaid_error),
            |docs| {
                Ok(docs
                    .into_iter()
                    .map(|d| {
                        d.map(|d| NativeDocument {
                            text: d.text,
                            metadata: d.metadata,
                        })
                    })
                    .collect::<Vec<_>>())
            },
        )
    }

    /// Ids of the live documents whose metadata matches a filter (JSON text), in insertion order.
    #[napi(catch_unwind, ts_return_type = "Promise<string[]>")]
    pub fn select<'env>(&self, env: &'env Env, filter: String) -> Result<Object<'env>> {
        let filter = Filter::parse(&filter).map_err(plaid_error)?;
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(env, move || index.select(&filter).map_err(plaid_error), Ok)
    }

    /// Merges every segment into one without the deleted documents, without retraining, in
    /// one transaction (takes the writer lock).
    #[napi(catch_unwind, ts_return_type = "Promise<NativeCommitInfo>")]
    pub fn compact<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeCommitProgress) => void) | undefined | null")]
        on_progress: Option<ProgressCallback>,
    ) -> Result<Object<'env>> {
        self.whole_index(env, cancel, on_progress, |w, c, p| w.compact(c, p))
    }

    /// Retrains the codebook on the live documents and compacts deleted ones away, in one
    /// transaction (takes the writer lock).
    #[napi(catch_unwind, ts_return_type = "Promise<NativeCommitInfo>")]
    pub fn rebuild<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeCommitProgress) => void) | undefined | null")]
        on_progress: Option<ProgressCallback>,
    ) -> Result<Object<'env>> {
        self.whole_index(env, cancel, on_progress, |w, c, p| w.rebuild(None, c, p))
    }

    /// Picks up a newer committed state written by another handle or process.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn refresh<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let index = Arc::clone(&self.inner);
        tasks::spawn_search(env, move || index.refresh().map_err(plaid_error), Ok)
    }

    /// Closes the handle; later calls fail with `CLOSED`.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        self.inner.close();
    }
}

/// A whole-index transaction of the engine: (writer, cancel, progress) → commit.
type WholeIndexRun = fn(
    Writer,
    &(dyn Fn() -> bool + Sync),
    &(dyn Fn(Progress) + Sync),
) -> colbert_plaid::Result<CommitInfo>;

impl NativePlaidIndex {
    /// Runs a whole-index transaction (`compact`, `rebuild`) as one task holding the thread
    /// budget, after this process's earlier writes, with cancellation and progress.
    fn whole_index<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        on_progress: Option<ProgressCallback>,
        run: WholeIndexRun,
    ) -> Result<Object<'env>> {
        let index = Arc::clone(&self.inner);
        let token = cancel.inner.clone();
        tasks::spawn_write(
            env,
            self.inner.dir(),
            budget(),
            move |turn| {
                if token.is_cancelled() {
                    return Err(plaid_error(PlaidError::Aborted));
                }
                let report = reporter(&on_progress);
                let writer = index.writer_in(turn).map_err(plaid_error)?;
                run(writer, &|| token.is_cancelled(), &report).map_err(plaid_error)
            },
            |c| Ok(commit_info(c)),
        )
    }
}

/// One add transaction. Nothing is visible to searches until `commit` returns; dropping or
/// aborting it leaves the index unchanged.
#[napi]
pub struct NativeWriter {
    inner: Arc<Mutex<Option<Writer>>>,
}

fn closed_writer() -> Error {
    Error::from_reason("CLOSED: this add transaction has already been committed or aborted")
}

#[napi]
impl NativeWriter {
    /// Adds a batch of documents with optional stored text and metadata (JSON text), spilled
    /// to disk until commit. With `replace`, live documents with the same ids are deleted in
    /// the same transaction first (an upsert).
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
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
    ) -> Result<Object<'env>> {
        let (offsets, data) = (offsets.to_vec(), data.to_vec());
        EmbeddingsView::new(dim as usize, &offsets, &data).map_err(embeddings_error)?;
        let fields: Option<Vec<DocumentFields>> = documents.map(|d| {
            d.into_iter()
                .map(|d| DocumentFields {
                    text: d.text,
                    metadata: d.metadata,
                })
                .collect()
        });
        let writer = Arc::clone(&self.inner);
        tasks::spawn(
            env,
            1,
            move || {
                // Validated above, on the JavaScript thread.
                let view = EmbeddingsView {
                    dim: dim as usize,
                    offsets: &offsets,
                    data: &data,
                };
                let mut guard = writer.lock().unwrap_or_else(|p| p.into_inner());
                let w = guard.as_mut().ok_or_else(closed_writer)?;
                if replace == Some(true) {
                    w.delete(&ids).map_err(plaid_error)?;
                }
                w.push_documents(ids, view, fields.as_deref())
                    .map_err(plaid_error)
            },
            |()| Ok(()),
        )
    }

    /// Trains (first add), compresses and commits atomically.
    #[napi(catch_unwind, ts_return_type = "Promise<NativeCommitInfo>")]
    #[allow(clippy::type_complexity)]
    pub fn commit<'env>(
        &self,
        env: &'env Env,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeCommitProgress) => void) | undefined | null")]
        on_progress: Option<ProgressCallback>,
    ) -> Result<Object<'env>> {
        let writer = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(closed_writer)?;
        let token = cancel.inner.clone();
        tasks::spawn(
            env,
            budget(),
            move || {
                let report = reporter(&on_progress);
                writer
                    .commit(&|| token.is_cancelled(), &report)
                    .map_err(plaid_error)
            },
            |c| Ok(commit_info(c)),
        )
    }

    /// Discards the transaction and releases the writer lock.
    #[napi(catch_unwind)]
    pub fn abort(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
