//! The standalone codebook of a cluster index (`src/opensearch/`): `NativeStandaloneCodebook`
//! over `colbert_plaid::standalone`. Training and compression are bulk tasks on the write pool;
//! probing and scoring are reads on the search pool. `metadataMatches` runs the local engine's
//! metadata filter over stored metadata, so a cluster's candidates are filtered with exactly
//! the local semantics.

use std::sync::Arc;

use colbert_core::schedule;
use colbert_plaid::standalone::StandaloneCodebook;
use colbert_plaid::Filter;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::embeddings::OwnedEmbeddings;
use crate::errors::{invalid, OrThrow};
use crate::model::CancelToken;
use crate::plaid_index::{index_options, NativeIndexOptions};
use crate::progress::{reporter, OnProgressJs};
use crate::tasks;

/// Compressed documents: `blobs[i]` and `centroids[i]` (sorted, unique) belong to document i.
#[napi(object)]
pub struct NativeCompressed {
    pub blobs: Vec<Uint8Array>,
    pub centroids: Vec<Uint32Array>,
}

/// One query's probe: for token t, `centroids[t * nProbe + j]` and `scores[t * nProbe + j]`,
/// best first.
#[napi(object)]
pub struct NativeProbe {
    pub tokens: u32,
    pub n_probe: u32,
    pub centroids: Uint32Array,
    pub scores: Float32Array,
}

#[napi]
pub struct NativeStandaloneCodebook {
    inner: Arc<StandaloneCodebook>,
}

#[napi]
impl NativeStandaloneCodebook {
    /// Reads stored codebook bytes (`INDEX_CORRUPT` when damaged).
    #[napi(factory, catch_unwind)]
    pub fn from_bytes(bytes: &[u8], dim: u32) -> Result<NativeStandaloneCodebook> {
        let cb = StandaloneCodebook::from_bytes(bytes, dim as usize).or_throw()?;
        Ok(NativeStandaloneCodebook {
            inner: Arc::new(cb),
        })
    }

    #[napi(catch_unwind)]
    pub fn to_bytes(&self) -> Uint8Array {
        Uint8Array::new(self.inner.to_bytes())
    }

    #[napi(getter)]
    pub fn dim(&self) -> u32 {
        self.inner.dim() as u32
    }

    #[napi(getter)]
    pub fn nbits(&self) -> u32 {
        self.inner.nbits() as u32
    }

    #[napi(getter)]
    pub fn num_centroids(&self) -> u32 {
        self.inner.num_centroids() as u32
    }

    /// Compresses documents into blobs and centroid sets.
    #[napi(catch_unwind)]
    pub fn compress<'env>(
        &self,
        env: &'env Env,
        dim: u32,
        offsets: Uint32Array,
        data: Float32Array,
        cancel: &CancelToken,
    ) -> Result<PromiseRaw<'env, NativeCompressed>> {
        let docs = OwnedEmbeddings::copy(dim, &offsets, &data);
        let (cb, token) = (self.inner.clone(), cancel.inner.clone());
        tasks::spawn(
            env,
            schedule::budget(),
            move || {
                let run = || cb.compress(docs.view(), &token);
                Ok(match schedule::write_pool() {
                    Some(threads) => threads.install(run),
                    None => run(),
                }?)
            },
            |docs| {
                let (blobs, centroids) = docs
                    .into_iter()
                    .map(|d| (Uint8Array::new(d.blob), Uint32Array::new(d.centroids)))
                    .unzip();
                NativeCompressed { blobs, centroids }
            },
        )
    }

    /// Each query token's `nProbe` best centroids.
    #[napi(catch_unwind)]
    pub fn probe<'env>(
        &self,
        env: &'env Env,
        dim: u32,
        offsets: Uint32Array,
        data: Float32Array,
        n_probe: u32,
    ) -> Result<PromiseRaw<'env, Vec<NativeProbe>>> {
        let queries = OwnedEmbeddings::copy(dim, &offsets, &data);
        let cb = self.inner.clone();
        tasks::spawn_search(
            env,
            move || Ok(cb.probe(queries.view(), n_probe as usize)?),
            move |per_query| {
                per_query
                    .into_iter()
                    .map(|tokens| {
                        let p = tokens.first().map_or(0, Vec::len);
                        let (c, s): (Vec<u32>, Vec<f32>) = tokens.into_iter().flatten().unzip();
                        NativeProbe {
                            tokens: c.len().checked_div(p).unwrap_or(0) as u32,
                            n_probe: p as u32,
                            centroids: Uint32Array::new(c),
                            scores: Float32Array::new(s),
                        }
                    })
                    .collect()
            },
        )
    }

    /// MaxSim of one query (`nq × dim` values) against each blob's decoded tokens.
    #[napi(catch_unwind)]
    pub fn score<'env>(
        &self,
        env: &'env Env,
        query: Float32Array,
        blobs: Vec<Uint8Array>,
    ) -> Result<PromiseRaw<'env, Float32Array>> {
        let query = query.to_vec();
        let blobs: Vec<Vec<u8>> = blobs.iter().map(|b| b.to_vec()).collect();
        let cb = self.inner.clone();
        tasks::spawn_search(
            env,
            move || {
                let refs: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
                Ok(cb.score(&query, &refs)?)
            },
            Float32Array::new,
        )
    }
}

/// Whether each stored metadata JSON text (`""`: none) matches the filter, with the local
/// engine's semantics (`colbert_plaid::Filter`).
#[napi(catch_unwind)]
pub fn metadata_matches(filter: String, metadata: Vec<String>) -> Result<Vec<bool>> {
    let f = Filter::parse(&filter).or_throw()?;
    metadata
        .iter()
        .map(|m| f.matches_stored(m))
        .collect::<std::result::Result<Vec<bool>, _>>()
        .map_err(|e| invalid(format!("stored metadata: {e}")).into())
}

/// Trains on a sample as a local index's first commit does.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // one JavaScript call's positional arguments
pub fn train_standalone_codebook<'env>(
    env: &'env Env,
    dim: u32,
    offsets: Uint32Array,
    data: Float32Array,
    options: NativeIndexOptions,
    cancel: &CancelToken,
    #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
    on_progress: Option<OnProgressJs>,
) -> Result<PromiseRaw<'env, NativeStandaloneCodebook>> {
    let sample = OwnedEmbeddings::copy(dim, &offsets, &data);
    let (options, _) = index_options(options)?;
    let token = cancel.inner.clone();
    tasks::spawn(
        env,
        schedule::budget(),
        move || {
            let report = reporter(on_progress);
            let run = || StandaloneCodebook::train(sample.view(), &options, &token, &report);
            Ok(match schedule::write_pool() {
                Some(threads) => threads.install(run),
                None => run(),
            }?)
        },
        |cb| NativeStandaloneCodebook {
            inner: Arc::new(cb),
        },
    )
}
