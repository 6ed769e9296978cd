//! The process's threads: one thread budget for bulk work, and a search lane beside it.
//!
//! *Bulk work* — every encode batch, from any model, any call and any JavaScript thread, and
//! every index write — runs on this module's worker threads and first takes *permits*: an
//! encode batch as many as its session has intra-op threads, a write the whole budget (its
//! parallel sections then run on [`write_pool`]). The permits add up to the budget, so bulk work
//! never uses more cores than the budget, however many calls are in flight. Node's libuv pool
//! is never blocked by waiting work.
//!
//! *Searches* take no permits: they run on [`search_pool`] (budget threads), so concurrent
//! searches run in parallel and never queue behind bulk work. While both run, the cores are
//! shared by the OS, and bulk threads (the workers, the write pool and the ONNX Runtime threads
//! they create) run at a lower priority (nice +10 on Linux), so a search takes the cores it
//! needs first and bulk work uses what is left.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

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
        SEARCH_POOL.get_or_init(|| pool("search", false, budget));
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

/// Lowers the calling thread's OS priority to nice +10 (Linux: the nice value is per thread, and
/// threads it creates, such as ONNX Runtime's intra-op pool, inherit it). A no-op elsewhere and
/// when refused.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's id; no memory is shared.
    unsafe {
        // The raw system call: glibc's gettid() wrapper is newer (2.30) than our floor (2.17).
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, now.max(10));
    }
}

type Pool = Option<Arc<rayon::ThreadPool>>;
static SEARCH_POOL: OnceLock<Pool> = OnceLock::new();
static WRITE_POOL: OnceLock<Pool> = OnceLock::new();

fn pool(name: &'static str, low_priority: bool, threads: usize) -> Pool {
    let build = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("colbert-{name}-{i}"))
            .start_handler(move |_| {
                if low_priority {
                    lower_priority()
                }
            })
            .build()
    };
    // A pool that cannot start the budget's threads gets one; failing that, `None` (the work
    // then runs on the calling thread and rayon's global pool).
    build(threads).or_else(|_| build(1)).ok().map(Arc::new)
}

/// The pool searches run on: budget threads at normal priority, shared by every index handle.
pub fn search_pool() -> Pool {
    // Started with the scheduler, before any bulk thread exists: threads inherit the nice value
    // of the thread that starts them, and a lowered one cannot be raised again.
    scheduler();
    SEARCH_POOL.get().cloned().flatten()
}

/// The pool index writes run their parallel sections on (k-means, compression, merges):
/// budget threads at lower priority, shared by every index handle.
pub fn write_pool() -> Pool {
    WRITE_POOL
        .get_or_init(|| pool("write", true, budget()))
        .clone()
}

fn worker_loop() {
    lower_priority();
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

    /// Bulk threads (scheduler workers, the write pool) run at nice ≥ 10; search threads at
    /// the nice value of the thread that started the scheduler.
    #[cfg(target_os = "linux")]
    #[test]
    fn bulk_threads_run_at_lower_priority_than_searches() {
        // SAFETY: reads the calling thread's nice value.
        let nice = || unsafe {
            libc::getpriority(
                libc::PRIO_PROCESS,
                libc::syscall(libc::SYS_gettid) as libc::id_t,
            )
        };
        let base = nice();
        let search = search_pool().expect("search pool");
        assert_eq!(search.install(nice), base.min(19));
        let (tx, rx) = mpsc::channel();
        submit(move || tx.send(nice()).expect("receiver alive"));
        assert!(rx.recv().expect("worker ran") >= 10);
        let write = write_pool().expect("write pool");
        assert!(write.install(nice) >= 10);
        // Searches stay where they were, however many bulk threads were started since.
        assert_eq!(search.install(nice), base.min(19));
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
