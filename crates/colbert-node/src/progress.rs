//! Progress events of long calls (`encode`, commits, `compact`, `rebuild`), handed to the
//! JavaScript callback as they come: `colbert_core::Progress` as a typed object.

use colbert_core::{Progress, Stage};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// One progress event: `done` of `total` units of `stage` (see `colbert_core::progress::Stage`).
#[napi(object)]
pub struct NativeProgress {
    #[napi(ts_type = "'encode' | 'sample' | 'kmeans' | 'expand' | 'compress' | 'write'")]
    pub stage: String,
    pub done: u32,
    pub total: u32,
}

impl From<Progress> for NativeProgress {
    fn from(p: Progress) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        NativeProgress {
            stage: p.stage.name().into(),
            done: count(p.done),
            total: count(p.total),
        }
    }
}

/// The JavaScript callback, called without blocking the reporting thread.
pub type OnProgressJs = ThreadsafeFunction<NativeProgress, (), NativeProgress, Status, false, true>;

/// Forwards engine progress to the optional JavaScript callback.
pub fn reporter(on_progress: Option<OnProgressJs>) -> impl Fn(Progress) + Send + Sync {
    move |p| {
        if let Some(f) = &on_progress {
            f.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

// A reminder, not a check: a new `Stage` fails to compile here until this match names it; then
// add its name to the `ts_type` union of `NativeProgress::stage` above.
const _: fn(Stage) = |s| match s {
    Stage::Encode
    | Stage::Sample
    | Stage::KMeans
    | Stage::Expand
    | Stage::Compress
    | Stage::Write => {}
};
