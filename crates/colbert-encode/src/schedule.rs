//! One process-wide thread budget for all encoding work.
//!
//! Every batch, from any model, any call and any JavaScript thread, runs on this module's worker
//! threads and first takes as many *permits* as its session has intra-op threads. The permits add
//! up to the budget, so tokenization plus ONNX Runtime never use more cores than the budget,
//! however many calls are in flight. Node's libuv pool is never blocked by waiting work.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, OnceLock};

type Task = Box<dyn FnOnce() + Send + 'static>;

struct Scheduler {
    budget: usize,
    free: Mutex<usize>,
    freed: Condvar,
    queue: Mutex<VecDeque<Task>>,
    queued: Condvar,
}

static SCHEDULER: OnceLock<Scheduler> = OnceLock::new();
static REQUESTED_BUDGET: Mutex<Option<usize>> = Mutex::new(None);

/// The number of cores this machine offers.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets the budget before the first encode. Returns the budget in force, which is the earlier one
/// if work has already started.
pub fn set_budget(threads: usize) -> usize {
    let threads = threads.max(1);
    if let Some(s) = SCHEDULER.get() {
        return s.budget;
    }
    *REQUESTED_BUDGET.lock().unwrap_or_else(|p| p.into_inner()) = Some(threads);
    scheduler().budget
}

/// The thread budget shared by all models.
pub fn budget() -> usize {
    scheduler().budget
}

fn scheduler() -> &'static Scheduler {
    SCHEDULER.get_or_init(|| {
        let budget = REQUESTED_BUDGET
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(available_cores);
        for i in 0..budget {
            // A worker that cannot be spawned only lowers concurrency; at least one is needed,
            // and the first spawn failing is reported on first use by the empty pool below.
            let _ = std::thread::Builder::new()
                .name(format!("colbert-worker-{i}"))
                .spawn(worker_loop);
        }
        Scheduler {
            budget,
            free: Mutex::new(budget),
            freed: Condvar::new(),
            queue: Mutex::new(VecDeque::new()),
            queued: Condvar::new(),
        }
    })
}

fn worker_loop() {
    let s = scheduler();
    loop {
        let task = {
            let mut q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(t) = q.pop_front() {
                    break t;
                }
                q = s.queued.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        // Tasks report their own failures; a panic must not take the worker down with it.
        let _ = catch_unwind(AssertUnwindSafe(task));
    }
}

/// Queues a task for the workers (first in, first out).
pub fn submit(task: impl FnOnce() + Send + 'static) {
    let s = scheduler();
    s.queue
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_back(Box::new(task));
    s.queued.notify_one();
}

/// Cores held by a running batch; returned when dropped.
pub struct Permit {
    n: usize,
}

/// Blocks until `n` cores of the budget are free (`n` is clamped to the budget).
pub fn acquire(n: usize) -> Permit {
    let s = scheduler();
    let n = n.clamp(1, s.budget);
    let mut free = s.free.lock().unwrap_or_else(|p| p.into_inner());
    while *free < n {
        free = s.freed.wait(free).unwrap_or_else(|p| p.into_inner());
    }
    *free -= n;
    Permit { n }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let s = scheduler();
        *s.free.lock().unwrap_or_else(|p| p.into_inner()) += self.n;
        s.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    #[test]
    fn permits_never_exceed_the_budget() {
        let budget = budget();
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..16 {
            let (active, peak, tx) = (active.clone(), peak.clone(), tx.clone());
            submit(move || {
                let _p = acquire(budget);
                let now = active.fetch_add(budget, Ordering::SeqCst) + budget;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                active.fetch_sub(budget, Ordering::SeqCst);
                tx.send(()).expect("receiver alive");
            });
        }
        for _ in 0..16 {
            rx.recv().expect("task finished");
        }
        assert!(peak.load(Ordering::SeqCst) <= budget);
    }

    #[test]
    fn a_panicking_task_does_not_kill_the_pool() {
        submit(|| panic!("boom"));
        let (tx, rx) = mpsc::channel();
        for _ in 0..budget() + 1 {
            let tx = tx.clone();
            submit(move || tx.send(()).expect("receiver alive"));
        }
        for _ in 0..budget() + 1 {
            rx.recv().expect("pool still runs tasks");
        }
    }
}
