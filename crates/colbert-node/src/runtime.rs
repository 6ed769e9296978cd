//! ONNX Runtime loading and the shared thread budget.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::OrThrow;

/// The ONNX Runtime library in use.
#[napi(object)]
pub struct RuntimeInfo {
    /// ONNX Runtime version, e.g. "1.30.0".
    pub version: String,
    /// Absolute path of the loaded library.
    pub path: String,
}

/// Loads ONNX Runtime from an absolute library path, once per process. Later calls return the
/// library already loaded.
#[napi(catch_unwind)]
pub fn init_runtime(path: String) -> Result<RuntimeInfo> {
    let rt = colbert_encode::runtime::init(&PathBuf::from(path)).or_throw()?;
    Ok(RuntimeInfo {
        version: rt.version.clone(),
        path: rt.path.clone(),
    })
}

/// The loaded ONNX Runtime, or null.
#[napi(catch_unwind)]
pub fn runtime_info() -> Option<RuntimeInfo> {
    colbert_encode::runtime::runtime().map(|rt| RuntimeInfo {
        version: rt.version.clone(),
        path: rt.path.clone(),
    })
}

/// Sets the process-wide thread budget (before the first encode) and returns the budget in force.
#[napi(catch_unwind)]
pub fn set_thread_budget(threads: u32) -> u32 {
    colbert_core::schedule::set_budget(threads as usize) as u32
}

/// The process-wide thread budget.
#[napi(catch_unwind)]
pub fn thread_budget() -> u32 {
    colbert_core::schedule::budget() as u32
}
