//! The `ColBERT` encoder: `NativeModel`, `loadModel` and the cancel token shared by every
//! cancellable call.

use std::path::PathBuf;
use std::sync::Arc;

use colbert_core::{CancelToken as EngineCancel, Embeddings};
use colbert_encode::{
    ConfigOverrides, EncodeRequest, Encoder, ExecutionProvider, Kind, LoadOptions, Precision,
    ProgressFn,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{invalid, OrThrow, Outcome};
use crate::progress::{reporter, OnProgressJs};
use crate::tasks::{self, Pending};

/// Options of `loadModel`, already validated by the TypeScript layer.
#[napi(object)]
pub struct NativeLoadOptions {
    /// "cpu" or "cuda".
    pub execution_provider: Option<String>,
    pub threads: Option<u32>,
    /// true: model_int8.onnx; false: model.onnx; absent: model.onnx if present, else int8.
    pub quantized: Option<bool>,
    pub query_length: Option<u32>,
    pub document_length: Option<u32>,
    pub query_prefix: Option<String>,
    pub document_prefix: Option<String>,
    pub do_query_expansion: Option<bool>,
    pub attend_to_expansion_tokens: Option<bool>,
    pub skiplist_words: Option<Vec<String>>,
    pub do_lower_case: Option<bool>,
}

/// The settings a model runs with.
#[napi(object)]
pub struct NativeModelConfig {
    pub dim: u32,
    pub query_length: u32,
    pub document_length: u32,
    pub query_prefix: String,
    pub document_prefix: String,
    pub query_prefix_id: Option<u32>,
    pub document_prefix_id: Option<u32>,
    pub do_query_expansion: bool,
    pub attend_to_expansion_tokens: bool,
    pub skiplist_words: Vec<String>,
    pub skiplist_ids: Vec<u32>,
    pub do_lower_case: bool,
    pub mask_token_id: u32,
    pub pad_token_id: u32,
    pub prompt: String,
}

/// How a loaded model runs.
#[napi(object)]
pub struct NativeModelInfo {
    pub onnx_path: String,
    pub execution_provider: String,
    pub threads: u32,
    /// Each text runs in an inference of its own (dynamically quantised int8).
    pub per_text: bool,
    pub warning: Option<String>,
}

/// A batch of token embeddings: item i is rows offsets[i]..offsets[i+1] of data.
#[napi(object)]
pub struct NativeEmbeddings {
    pub dim: u32,
    pub offsets: Uint32Array,
    pub data: Float32Array,
}

/// One tokenized text.
#[napi(object)]
pub struct NativeTokenized {
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub keep: Vec<bool>,
}

/// Cancels the calls it was passed to.
#[napi]
pub struct CancelToken {
    pub(crate) inner: EngineCancel,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self {
            inner: EngineCancel::new(),
        }
    }

    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

/// A loaded model.
#[napi]
pub struct NativeModel {
    inner: Arc<Encoder>,
}

fn load_options(o: NativeLoadOptions) -> Outcome<LoadOptions> {
    let execution_provider = match o.execution_provider.as_deref() {
        None | Some("cpu") => ExecutionProvider::Cpu,
        Some("cuda") => ExecutionProvider::Cuda,
        Some(other) => {
            return Err(invalid(format!(
                "executionProvider must be 'cpu' or 'cuda', got {other:?}"
            )))
        }
    };
    Ok(LoadOptions {
        precision: match o.quantized {
            None => Precision::Auto,
            Some(true) => Precision::Int8,
            Some(false) => Precision::Fp32,
        },
        execution_provider,
        threads: o.threads.map(|t| t as usize),
        overrides: ConfigOverrides {
            query_length: o.query_length.map(|v| v as usize),
            document_length: o.document_length.map(|v| v as usize),
            query_prefix: o.query_prefix,
            document_prefix: o.document_prefix,
            do_query_expansion: o.do_query_expansion,
            attend_to_expansion_tokens: o.attend_to_expansion_tokens,
            skiplist_words: o.skiplist_words,
            do_lower_case: o.do_lower_case,
        },
    })
}

/// Loads a model folder off the JavaScript thread (on the shared scheduler).
#[napi(catch_unwind)]
pub fn load_model(
    env: &Env,
    dir: String,
    options: NativeLoadOptions,
) -> Result<PromiseRaw<'_, NativeModel>> {
    let options = load_options(options)?;
    tasks::spawn(
        env,
        1,
        move || Ok(Encoder::load(&PathBuf::from(dir), &options)?),
        |encoder| NativeModel {
            inner: Arc::new(encoder),
        },
    )
}

impl From<Embeddings> for NativeEmbeddings {
    fn from(e: Embeddings) -> Self {
        NativeEmbeddings {
            dim: e.dim as u32,
            offsets: Uint32Array::new(e.offsets),
            data: Float32Array::new(e.data),
        }
    }
}

#[napi]
impl NativeModel {
    #[napi(getter)]
    pub fn config(&self) -> NativeModelConfig {
        let c = self.inner.config();
        NativeModelConfig {
            dim: c.dim as u32,
            query_length: c.query_length as u32,
            document_length: c.document_length as u32,
            query_prefix: c.query_prefix.clone(),
            document_prefix: c.document_prefix.clone(),
            query_prefix_id: c.query_prefix_id,
            document_prefix_id: c.document_prefix_id,
            do_query_expansion: c.do_query_expansion,
            attend_to_expansion_tokens: c.attend_to_expansion_tokens,
            skiplist_words: c.skiplist_words.clone(),
            skiplist_ids: c.skiplist_ids.clone(),
            do_lower_case: c.do_lower_case,
            mask_token_id: c.mask_token_id,
            pad_token_id: c.pad_token_id,
            prompt: c.prompt.clone(),
        }
    }

    #[napi(getter)]
    pub fn info(&self) -> NativeModelInfo {
        NativeModelInfo {
            onnx_path: self.inner.onnx_path().display().to_string(),
            execution_provider: self.inner.provider().as_str().to_string(),
            threads: self.inner.threads() as u32,
            per_text: self.inner.per_text(),
            warning: self.inner.warning().map(str::to_string),
        }
    }

    /// Tokenizes one text exactly as `encode` does (no inference).
    #[napi(catch_unwind)]
    pub fn tokenize(&self, text: String, is_query: bool) -> Result<NativeTokenized> {
        let kind = if is_query {
            Kind::Query
        } else {
            Kind::Document
        };
        let t = self.inner.tokenize(&text, kind).or_throw()?;
        Ok(NativeTokenized {
            input_ids: t.input_ids,
            attention_mask: t.attention_mask,
            token_type_ids: t.token_type_ids,
            keep: t.keep,
        })
    }

    /// Encodes texts on the shared thread budget. `onProgress` gets an `encode` event after each
    /// batch; it must not throw (the TypeScript layer guards it).
    #[napi(catch_unwind)]
    pub fn encode<'env>(
        &self,
        env: &'env Env,
        texts: Vec<String>,
        is_query: bool,
        batch_size: u32,
        cancel: &CancelToken,
        #[napi(ts_arg_type = "((progress: NativeProgress) => void) | undefined | null")]
        on_progress: Option<OnProgressJs>,
    ) -> Result<PromiseRaw<'env, NativeEmbeddings>> {
        let (pending, promise) = Pending::new(env)?;
        let progress = on_progress.map(|f| Arc::new(reporter(Some(f))) as ProgressFn);
        self.inner.encode_async(
            EncodeRequest {
                texts,
                kind: if is_query {
                    Kind::Query
                } else {
                    Kind::Document
                },
                batch_size: batch_size as usize,
                cancel: cancel.inner.clone(),
                progress,
            },
            Box::new(move |result| {
                pending.settle(result.map_err(Into::into), NativeEmbeddings::from)
            }),
        );
        Ok(promise)
    }
}
