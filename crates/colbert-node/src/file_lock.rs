//! Cross-process file locks for the Hugging Face cache (`src/hub.ts`): one non-blocking attempt
//! per call, polled with timers on the JavaScript side, so waiting never blocks the event loop or
//! a scheduler thread.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use colbert_encode::file_lock::FileLock;

/// A held lock. `release` frees it; so does garbage collection or the process ending.
#[napi]
pub struct NativeFileLock {
    inner: Option<FileLock>,
}

#[napi]
impl NativeFileLock {
    /// Releases the lock (idempotent). The lock file stays in place.
    #[napi(catch_unwind)]
    pub fn release(&mut self) {
        self.inner = None;
    }
}

/// Takes the exclusive lock on `path` (created with its folders when missing) if it is free;
/// null when another process or handle holds it. Never waits.
#[napi(catch_unwind)]
pub fn try_lock_file(path: String) -> Result<Option<NativeFileLock>> {
    match FileLock::try_acquire(std::path::Path::new(&path)) {
        Ok(lock) => Ok(lock.map(|l| NativeFileLock { inner: Some(l) })),
        Err(e) => Err(Error::from_reason(format!("IO: locking {path}: {e}"))),
    }
}
