//! Running engine work off the JavaScript thread: every call becomes a task on the shared
//! scheduler (`colbert_encode::schedule`), holding permits of the one thread budget, and settles
//! its promise when done; searches and other reads run on the scheduler's search pool instead,
//! taking no permits ([`spawn_search`]). A panic becomes an `INTERNAL` error. Index writes first
//! wait, without blocking any thread, for this process's write turn on their folder, so writes
//! from one process are queued in order rather than refused.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use colbert_encode::schedule;
use colbert_plaid::WriteTurn;
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
    submit(deferred, permits, work, finish);
    Ok(promise)
}

/// [`spawn`] for a write to the index folder `dir`: the task is submitted once this process's
/// earlier writes to `dir` are done (in the order asked), and `work` gets the write turn.
pub fn spawn_write<'env, T, R>(
    env: &'env Env,
    dir: &Path,
    permits: usize,
    work: impl FnOnce(WriteTurn) -> Result<T> + Send + 'static,
    finish: impl FnOnce(T) -> Result<R> + Send + 'static,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (deferred, promise): (Settle<R>, _) = env.create_deferred()?;
    WriteTurn::queue(dir, move |turn| {
        submit(deferred, permits, move || work(turn), finish)
    });
    Ok(promise)
}

/// Runs a read (a search, stored documents, a filter scan, a refresh) on the search pool: no
/// permits, so it never waits for bulk work, and concurrent reads run in parallel.
pub fn spawn_search<T, R>(
    env: &Env,
    work: impl FnOnce() -> Result<T> + Send + 'static,
    finish: impl FnOnce(T) -> Result<R> + Send + 'static,
) -> Result<Object<'_>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let Some(pool) = schedule::search_pool() else {
        // No search pool could be started: run as a one-permit task of the scheduler.
        return spawn(env, 1, work, finish);
    };
    let (deferred, promise): (Settle<R>, _) = env.create_deferred()?;
    pool.spawn(move || settle(deferred, catch_unwind(AssertUnwindSafe(work)), finish));
    Ok(promise)
}

/// Settles `deferred` with the outcome of a task (a panic is `INTERNAL`).
fn settle<T, R>(
    deferred: Settle<R>,
    outcome: std::thread::Result<Result<T>>,
    finish: impl FnOnce(T) -> Result<R> + Send + 'static,
) where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    match outcome.unwrap_or_else(|_| Err(internal("the operation panicked"))) {
        Ok(value) => deferred.resolve(Box::new(move |_| finish(value))),
        Err(e) => deferred.reject(e),
    }
}

fn submit<T, R>(
    deferred: Settle<R>,
    permits: usize,
    work: impl FnOnce() -> Result<T> + Send + 'static,
    finish: impl FnOnce(T) -> Result<R> + Send + 'static,
) where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    schedule::submit(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _permit = schedule::acquire(permits);
            work()
        }));
        settle(deferred, outcome, finish)
    });
}
