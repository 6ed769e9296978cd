//! Directory-level storage: the in-process write queue and the cross-process writer lock,
//! atomic manifest switches, fsyncs, unique file names and garbage collection of files no
//! manifest references.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use fs2::FileExt;

use crate::error::{PlaidError, Result};
use crate::manifest::{Manifest, MANIFEST};

pub(crate) const LOCK: &str = "LOCK";
/// Prefixes of every file this crate creates (GC never touches anything else).
const OWNED_PREFIXES: [&str; 5] = ["seg-", "cbk-", "tomb-", "spill-", "MANIFEST.tmp-"];

/// Someone waiting for a folder's write turn.
type Waiter = Box<dyn FnOnce(WriteTurn) + Send>;

/// Per index folder (canonical path), the waiters behind the turn's current holder; a folder
/// is in the map exactly while some transaction of this process holds its turn.
fn queues() -> &'static Mutex<HashMap<PathBuf, VecDeque<Waiter>>> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, VecDeque<Waiter>>>> = OnceLock::new();
    QUEUES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The folder's key in the write queue: its canonical path, or, for a folder that does not
/// exist yet, its nearest existing ancestor's canonical path joined with the rest (so a
/// folder's key does not change when `create` makes it).
fn queue_key(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut normal = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            c => normal.push(c),
        }
    }
    let mut rest = Vec::new();
    let mut base = normal.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return normal,
        }
    }
}

/// This process's right to write one index folder: at most one transaction of the process
/// holds a folder's turn at a time, and waiters get it in the order they asked
/// ([`WriteTurn::queue`]). It comes before the cross-process `WriterLock`, so
/// `INDEX_LOCKED` only ever means another process. Dropping it hands it to the next waiter.
pub struct WriteTurn {
    key: PathBuf,
}

impl std::fmt::Debug for WriteTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTurn").field("dir", &self.key).finish()
    }
}

impl WriteTurn {
    /// The folder's turn if no transaction of this process holds it.
    pub(crate) fn try_take(dir: &Path) -> Option<WriteTurn> {
        let key = queue_key(dir);
        let mut q = queues().lock().unwrap_or_else(|p| p.into_inner());
        if q.contains_key(&key) {
            return None;
        }
        q.insert(key.clone(), VecDeque::new());
        Some(WriteTurn { key })
    }

    /// Calls `ready` with the folder's turn once every earlier holder and waiter of this
    /// process is done: at once (on this thread) when it is free, otherwise on the thread that
    /// drops the previous turn, so `ready` should only hand the turn on (e.g. submit a task).
    /// Nothing blocks while waiting.
    pub fn queue(dir: &Path, ready: impl FnOnce(WriteTurn) + Send + 'static) {
        let key = queue_key(dir);
        {
            let mut q = queues().lock().unwrap_or_else(|p| p.into_inner());
            if let Some(waiters) = q.get_mut(&key) {
                waiters.push_back(Box::new(ready));
                return;
            }
            q.insert(key.clone(), VecDeque::new());
        }
        ready(WriteTurn { key });
    }
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        let next = {
            let mut q = queues().lock().unwrap_or_else(|p| p.into_inner());
            match q.get_mut(&self.key).and_then(VecDeque::pop_front) {
                Some(w) => Some(w),
                None => {
                    q.remove(&self.key);
                    None
                }
            }
        };
        if let Some(ready) = next {
            ready(WriteTurn {
                key: std::mem::take(&mut self.key),
            });
        }
    }
}

/// The cross-process writer lock: an OS advisory lock on `dir/LOCK`, held while this value
/// lives, taken by the holder of this process's [`WriteTurn`]. Readers never take it.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
    /// Dropped after the file is unlocked (fields drop after `Drop::drop`), so the next
    /// waiter of this process finds the lock free.
    _turn: WriteTurn,
}

impl Drop for WriterLock {
    /// Unlocks explicitly rather than relying on close: a child process forked (by any thread
    /// of this process) while the lock was held shares the open file description until it
    /// execs, and closing our descriptor alone would leave the lock held until then.
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.file);
    }
}

impl WriterLock {
    /// Takes this process's turn and the lock, or fails at once with `INDEX_LOCKED`.
    pub fn try_acquire(dir: &Path) -> Result<Self> {
        let turn = WriteTurn::try_take(dir).ok_or_else(|| {
            PlaidError::Locked(format!(
                "{} (by another transaction of this process)",
                dir.join(LOCK).display()
            ))
        })?;
        Self::acquire_in(dir, turn)
    }

    /// Takes the cross-process lock with this process's turn in hand (`INDEX_LOCKED`: another
    /// process writes).
    pub fn acquire_in(dir: &Path, turn: WriteTurn) -> Result<Self> {
        let path = dir.join(LOCK);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| PlaidError::io("opening", &path, e))?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(Self { file, _turn: turn }),
            Err(e)
                if e.kind() == fs2::lock_contended_error().kind()
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Err(PlaidError::Locked(format!(
                    "{} (by another process)",
                    path.display()
                )))
            }
            Err(e) => Err(PlaidError::io("locking", &path, e)),
        }
    }
}

/// A name no other file in the directory has: `<prefix><generation>-<nonce>.<ext>`.
pub(crate) fn unique_name(prefix: &str, generation: u64, ext: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mix = nanos
        ^ ((std::process::id() as u64) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{prefix}{generation:08}-{mix:016x}.{ext}")
}

/// fsync of a directory, so that created/renamed entries are durable (no-op where unsupported).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|e| PlaidError::io("opening", dir, e))?;
        d.sync_all()
            .map_err(|e| PlaidError::io("syncing", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Publishes `m` as the committed state: temp file, fsync, rename over `MANIFEST`, dir fsync.
/// Files it references must already be durable.
pub(crate) fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let bytes = m.encode()?;
    let tmp: PathBuf = dir.join(unique_name("MANIFEST.tmp-", m.generation, "json"));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(MANIFEST))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(PlaidError::io("publishing manifest in", dir, e));
    }
    sync_dir(dir)
}

/// Deletes files this crate owns that `m` does not reference (best effort). Call only while
/// holding the writer lock, so no transaction is producing files concurrently. Readers that
/// still map an older generation keep working on Unix (unlinked files stay mapped); where the
/// OS refuses to delete a mapped file the error is ignored and a later GC retries.
pub(crate) fn gc(dir: &Path, m: &Manifest) {
    let keep: std::collections::HashSet<&str> = m.files().into_iter().collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if OWNED_PREFIXES.iter().any(|p| name.starts_with(p)) && !keep.contains(name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether the directory holds files this crate owns that `m` does not reference.
pub(crate) fn has_garbage(dir: &Path, m: &Manifest) -> bool {
    let keep: std::collections::HashSet<&str> = m.files().into_iter().collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| OWNED_PREFIXES.iter().any(|p| n.starts_with(p)) && !keep.contains(n))
    })
}

/// Disk usage of the files a manifest references plus the manifest itself.
pub(crate) fn bytes_on_disk(dir: &Path, m: &Manifest) -> u64 {
    let mut total = std::fs::metadata(dir.join(MANIFEST))
        .map(|x| x.len())
        .unwrap_or(0);
    for s in &m.segments {
        total += s.file.len;
    }
    total += m.codebook.as_ref().map_or(0, |f| f.len);
    total += m.tombstones.as_ref().map_or(0, |f| f.len);
    total
}

/// A private scratch file of one transaction (`spill-*.tmp`), deleted when dropped: the
/// writer's pushed embeddings and stored fields, a merge's stored fields.
pub(crate) struct Spill {
    pub path: PathBuf,
    pub out: BufWriter<File>,
    /// Rows (embeddings) or bytes (stored fields) written.
    pub rows: usize,
}

impl Spill {
    /// A new private spill file (`spill-*.tmp`) in the index folder.
    pub fn create(dir: &Path, generation: u64) -> Result<Spill> {
        let path = dir.join(unique_name("spill-", generation, "tmp"));
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| PlaidError::io("creating", &path, e))?;
        Ok(Spill {
            path,
            out: BufWriter::with_capacity(1 << 20, f),
            rows: 0,
        })
    }
}

impl Spill {
    /// Appends one document's stored text then metadata (a stored-field spill counts bytes in
    /// `rows`); returns their lengths, as `StagedFields::lens` holds them.
    pub fn append_fields(&mut self, text: &[u8], metadata: &[u8]) -> Result<(u32, u32)> {
        for b in [text, metadata] {
            self.out
                .write_all(b)
                .map_err(|e| PlaidError::io("writing", &self.path, e))?;
        }
        self.rows += text.len() + metadata.len();
        Ok((text.len() as u32, metadata.len() as u32))
    }

    /// Flushes and maps what was written (`None` when nothing was).
    pub fn map(&mut self) -> Result<Option<memmap2::Mmap>> {
        self.out
            .flush()
            .map_err(|e| PlaidError::io("writing", &self.path, e))?;
        if self.rows == 0 {
            return Ok(None);
        }
        // SAFETY: the spill file is private to its transaction (unique name, created with
        // create_new, removed on drop) and is not written while mapped: `out` is only written
        // through `&mut self`, and the map is dropped before the spill in every caller.
        unsafe { memmap2::Mmap::map(self.out.get_ref()) }
            .map(Some)
            .map_err(|e| PlaidError::io("mapping", &self.path, e))
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};

    #[test]
    fn write_turns_go_to_waiters_in_order() {
        let dir = std::env::temp_dir().join(format!("colbert-turns-{}", std::process::id()));
        let first = WriteTurn::try_take(&dir).unwrap();
        // The same folder under another spelling is the same queue; it does not exist yet.
        assert!(WriteTurn::try_take(&dir.join("x").join("..")).is_none());
        let order = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for i in 0..3 {
            let (order, tx) = (order.clone(), tx.clone());
            WriteTurn::queue(&dir, move |turn| {
                order.lock().unwrap().push(i);
                tx.send(turn).unwrap();
            });
        }
        assert!(order.lock().unwrap().is_empty());
        std::fs::create_dir_all(&dir).unwrap();
        drop(first);
        for want in 0..3 {
            let turn = rx.recv().unwrap();
            assert_eq!(*order.lock().unwrap().last().unwrap(), want);
            assert!(WriteTurn::try_take(&dir).is_none(), "held by waiter {want}");
            drop(turn);
        }
        assert!(
            WriteTurn::try_take(&dir).is_some(),
            "free after the last waiter"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
