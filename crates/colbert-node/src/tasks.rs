//! Running engine work off the JavaScript thread. Every asynchronous call goes through one of
//! three lanes, each returning a typed promise (`PromiseRaw<R>`, so napi writes `Promise<R>` in
//! `native.d.ts`):
//! - [`spawn`]: bulk work (encode, MaxSim, a commit) on the shared scheduler
//!   (`colbert_core::schedule`), holding permits of the one thread budget;
//! - [`spawn_write`]: an index write, submitted once this process's earlier writes to the same
//!   folder are done (waiting blocks no thread), so writes are queued in order, not refused;
//! - [`spawn_search`]: a read (a search, stored documents, a filter scan, a refresh) on the
//!   search pool, taking no permits, so it never waits for bulk work.
//!
//! `work` runs on a worker and may fail with any engine error (`?` makes it a [`Coded`]);
//! `finish` builds the JavaScript value on the JavaScript thread. A panic becomes `INTERNAL`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use colbert_core::schedule;
use colbert_plaid::WriteTurn;
use napi::bindgen_prelude::*;
use napi::JsDeferred;

use crate::errors::{internal, Outcome};

type Resolver<R> = Box<dyn FnOnce(Env) -> Result<R> + Send>;

/// A promise handed to JavaScript, settled later from any thread.
pub struct Pending<R: ToNapiValue + 'static>(JsDeferred<R, Resolver<R>>);

impl<R: ToNapiValue + 'static> Pending<R> {
    /// Creates the promise (on the JavaScript thread).
    pub fn new(env: &Env) -> Result<(Self, PromiseRaw<'_, R>)> {
        let (deferred, promise) = env.create_deferred()?;
        Ok((Pending(deferred), PromiseRaw::new(env.raw(), promise.raw())))
    }

    /// Settles with the outcome of `work`; `finish` runs on the JavaScript thread.
    pub fn settle<T: Send + 'static>(
        self,
        outcome: Outcome<T>,
        finish: impl FnOnce(T) -> R + Send + 'static,
    ) {
        match outcome {
            Ok(value) => self.0.resolve(Box::new(move |_| Ok(finish(value)))),
            Err(e) => self.0.reject(e.into()),
        }
    }
}

/// Runs `work` on the scheduler with `permits` cores of the budget.
pub fn spawn<'env, T, R>(
    env: &'env Env,
    permits: usize,
    work: impl FnOnce() -> Outcome<T> + Send + 'static,
    finish: impl FnOnce(T) -> R + Send + 'static,
) -> Result<PromiseRaw<'env, R>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (pending, promise) = Pending::new(env)?;
    submit(pending, permits, work, finish);
    Ok(promise)
}

/// [`spawn`] for a write to the index folder `dir`: the task is submitted once this process's
/// earlier writes to `dir` are done (in the order asked), and `work` gets the write turn.
pub fn spawn_write<'env, T, R>(
    env: &'env Env,
    dir: &Path,
    permits: usize,
    work: impl FnOnce(WriteTurn) -> Outcome<T> + Send + 'static,
    finish: impl FnOnce(T) -> R + Send + 'static,
) -> Result<PromiseRaw<'env, R>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let (pending, promise) = Pending::new(env)?;
    WriteTurn::queue(dir, move |turn| {
        submit(pending, permits, move || work(turn), finish)
    });
    Ok(promise)
}

/// Runs a read on the search pool: no permits, so it never waits for bulk work, and concurrent
/// reads run in parallel.
pub fn spawn_search<'env, T, R>(
    env: &'env Env,
    work: impl FnOnce() -> Outcome<T> + Send + 'static,
    finish: impl FnOnce(T) -> R + Send + 'static,
) -> Result<PromiseRaw<'env, R>>
where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    let Some(pool) = schedule::search_pool() else {
        // No search pool could be started: run as a one-permit task of the scheduler.
        return spawn(env, 1, work, finish);
    };
    let (pending, promise) = Pending::new(env)?;
    pool.spawn(move || pending.settle(guarded(work), finish));
    Ok(promise)
}

/// Runs `work`, turning a panic into `INTERNAL`.
fn guarded<T>(work: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(internal("the operation panicked")))
}

fn submit<T, R>(
    pending: Pending<R>,
    permits: usize,
    work: impl FnOnce() -> Outcome<T> + Send + 'static,
    finish: impl FnOnce(T) -> R + Send + 'static,
) where
    T: Send + 'static,
    R: ToNapiValue + 'static,
{
    schedule::submit(move || {
        let outcome = guarded(|| {
            let _permit = schedule::acquire(permits);
            work()
        });
        pending.settle(outcome, finish)
    });
}
