//! Running engine work off the JavaScript thread: every call becomes a task on the shared
//! scheduler (`colbert_encode::schedule`), holding permits of the one thread budget, and settles
//! its promise when done. A panic becomes an `INTERNAL` error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use colbert_encode::schedule;
use napi::bindgen_prelude::*;

use crate::errors::{internal, Settle};

/// Runs `work` on the scheduler with `permits` cores of the budget; `finish` builds the JS value
/// on the JavaScript thread.
pub fn spawn<T, R>(
    env: &Env,
    permits: usize,
    work: impl FnOnce() -> Result<T> + Send + 'static,
    finish: impl FnOnce(T) -> Result<R> + Send + 'static,
) -> Result<Object<'_>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (deferred, promise): (Settle<R>, _) = env.create_deferred()?;
    schedule::submit(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _permit = schedule::acquire(permits);
            work()
        }))
        .unwrap_or_else(|_| Err(internal("the operation panicked")));
        match outcome {
            Ok(value) => deferred.resolve(Box::new(move |_| finish(value))),
            Err(e) => deferred.reject(e),
        }
    });
    Ok(promise)
}
