//! Cancellation shared by every engine: one token per call (an `AbortSignal` in JavaScript).
//!
//! Long loops poll [`CancelToken::is_cancelled`] between slices of work; work that cannot poll
//! (an ONNX Runtime inference) registers a hook with [`CancelToken::on_cancel`] that stops it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Arc<dyn Fn() + Send + Sync>;

/// Cancels the calls it was passed to. Clones share one state.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Polls left before the token cancels itself ([`CancelToken::cancelled_after`]).
    polls_left: Option<AtomicU64>,
    next_hook: AtomicU64,
    hooks: Mutex<Vec<(u64, Hook)>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the token cancelled and runs the hooks registered now.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let hooks: Vec<Hook> = self
            .inner
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, h)| Arc::clone(h))
            .collect();
        for hook in hooks {
            hook();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        if let Some(left) = &self.inner.polls_left {
            let expired = left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err();
            if expired && !self.inner.cancelled.load(Ordering::SeqCst) {
                self.cancel();
            }
        }
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// A token that cancels itself at its `polls + 1`-th [`Self::is_cancelled`]: tests use it
    /// to abort long work at every point where it checks.
    #[doc(hidden)]
    pub fn cancelled_after(polls: u64) -> Self {
        CancelToken {
            inner: Arc::new(Inner {
                polls_left: Some(AtomicU64::new(polls)),
                ..Inner::default()
            }),
        }
    }

    /// Runs `hook` if the token is cancelled while the returned guard lives (at once, if it
    /// already is). Dropping the guard unregisters the hook.
    pub fn on_cancel(&self, hook: impl Fn() + Send + Sync + 'static) -> OnCancel<'_> {
        let id = self.inner.next_hook.fetch_add(1, Ordering::Relaxed);
        let hook: Hook = Arc::new(hook);
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, Arc::clone(&hook)));
        // A cancel that raced with the registration must still run the hook.
        if self.is_cancelled() {
            hook();
        }
        OnCancel { token: self, id }
    }
}

/// A registered cancel hook; unregistered when dropped.
pub struct OnCancel<'a> {
    token: &'a CancelToken,
    id: u64,
}

impl Drop for OnCancel<'_> {
    fn drop(&mut self) {
        self.token
            .inner
            .hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_while_registered_and_clones_share_state() {
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&runs);
        let guard = token.on_cancel(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let r = Arc::clone(&runs);
        drop(token.on_cancel(move || {
            r.fetch_add(100, Ordering::SeqCst);
        }));
        let clone = token.clone();
        clone.cancel();
        assert!(token.is_cancelled());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "only the live hook ran");
        drop(guard);
        // Registered after the cancel: runs at once.
        let r = Arc::clone(&runs);
        let _late = token.on_cancel(move || {
            r.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn cancelled_after_counts_polls() {
        let token = CancelToken::cancelled_after(2);
        assert!(!token.is_cancelled());
        assert!(!token.is_cancelled());
        assert!(token.is_cancelled());
        assert!(token.is_cancelled());
    }
}
