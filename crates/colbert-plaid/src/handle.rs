//! The shared state of an open index: its folder and the published snapshot, which writers
//! replace and searches read. Every handle and writer of one [`crate::PlaidIndex`] holds it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use colbert_core::schedule;

use crate::error::{PlaidError, Result};
use crate::manifest::{self, Manifest};
use crate::snapshot::Snapshot;

pub(crate) struct Inner {
    pub dir: PathBuf,
    state: RwLock<Option<Arc<Snapshot>>>,
}

impl Inner {
    /// An open handle's state, publishing `snap`.
    pub fn new(dir: &Path, snap: Snapshot) -> Self {
        Inner {
            dir: dir.to_path_buf(),
            state: RwLock::new(Some(Arc::new(snap))),
        }
    }

    /// Unpublishes the snapshot: later calls fail with `CLOSED`.
    pub fn close(&self) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn check_open(&self) -> Result<()> {
        self.snapshot().map(|_| ())
    }

    pub fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        g.clone().ok_or(PlaidError::Closed)
    }

    pub fn publish(&self, snap: Arc<Snapshot>) {
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        if g.is_some() {
            *g = Some(snap);
        }
    }

    /// Runs a search's parallel work on the process's search pool.
    pub fn install_search<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        install(schedule::search_pool(), f)
    }

    /// Runs a write's parallel work on the process's write pool.
    pub fn install_write<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        install(schedule::write_pool(), f)
    }

    /// Re-reads the manifest; publishes and returns the new snapshot if it changed.
    pub fn reload(&self) -> Result<Option<Arc<Snapshot>>> {
        let cur = self.snapshot()?;
        let m = manifest::read(&self.dir)?;
        if m.generation == cur.manifest.generation && m == cur.manifest {
            return Ok(None);
        }
        let snap = Arc::new(open_snapshot(&self.dir, Some(m), Some(&cur))?);
        self.publish(snap.clone());
        Ok(Some(snap))
    }
}

/// Opens the current generation, retrying if a concurrent commit replaced it (and collected
/// its files) between reading the manifest and opening the files.
pub(crate) fn open_snapshot(
    dir: &Path,
    first: Option<Manifest>,
    prev: Option<&Snapshot>,
) -> Result<Snapshot> {
    let mut m = match first {
        Some(m) => m,
        None => manifest::read(dir)?,
    };
    let mut tries = 0;
    loop {
        match Snapshot::open_from(dir, m.clone(), prev) {
            Ok(s) => return Ok(s),
            Err(e) => {
                tries += 1;
                let again = manifest::read(dir)?;
                if tries >= 8 || again == m {
                    return Err(e);
                }
                m = again;
            }
        }
    }
}

/// Runs `f` on `pool` (on the calling thread where no pool could be started).
fn install<R: Send>(pool: Option<Arc<rayon::ThreadPool>>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}
