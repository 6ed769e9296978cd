//! Cross-process advisory file locks that interoperate with Python's `filelock` package, which
//! `huggingface_hub` uses to guard each blob of the Hugging Face cache
//! (`<cache>/.locks/models--org--name/<etag>.lock`).
//!
//! Same primitive as `filelock`: an exclusive `flock(2)` on the whole file on Unix;
//! `LockFileEx` on Windows, here over the whole range, which overlaps the byte at offset 0 that
//! `filelock` locks, so the two exclude each other. Like `filelock` on Unix, the file is created
//! when missing and left in place on release (deleting it would let a waiter lock an unlinked
//! inode while a newcomer locks a new file of the same name).
//!
//! Only a non-blocking attempt is offered: callers poll (as `filelock` does, every 50 ms), so a
//! wait never occupies a thread.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use fs4::FileExt;
use fs4::TryLockError;

/// A held exclusive lock; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on `path` if nobody holds it, creating the file (and its folders) when
    /// missing. `Ok(None)`: another process, or another handle of this one, holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if busy(&e) => return Ok(None),
            // A lock file another account created in a shared cache: a lock needs read access only.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match File::open(path) {
                Ok(file) => file,
                Err(e) if busy(&e) => return Ok(None),
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        // Called through the trait: std's inherent `File::try_lock` (Rust 1.89+) would shadow it.
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(FileLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Windows: another process has the lock file open without sharing, locked, or pending deletion
/// (`filelock` deletes its lock file on release there). Busy, as `filelock` reads `EACCES` on
/// open: try again later.
#[cfg(windows)]
fn busy(e: &io::Error) -> bool {
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    const ERROR_LOCK_VIOLATION: i32 = 33;
    matches!(
        e.raw_os_error(),
        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
    )
}

#[cfg(not(windows))]
fn busy(_: &io::Error) -> bool {
    false
}

impl Drop for FileLock {
    /// Unlocks explicitly rather than relying on close: a child process forked while the lock was
    /// held shares the open file description until it execs.
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("colbert-file-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn excludes_other_handles_and_is_free_again_after_drop() {
        let dir = temp_dir("exclusive");
        let path = dir
            .join(".locks")
            .join("models--org--name")
            .join("abc.lock");
        let held = FileLock::try_acquire(&path).expect("lock").expect("free");
        assert_eq!(held.path(), path);
        // A second open file description, even in this process, is refused.
        assert!(FileLock::try_acquire(&path).expect("try").is_none());
        drop(held);
        assert!(path.exists(), "the lock file stays in place");
        let again = FileLock::try_acquire(&path)
            .expect("lock")
            .expect("free after drop");
        drop(again);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_lock_file_can_still_be_locked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("read-only");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("x.lock");
        std::fs::write(&path, b"").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let held = FileLock::try_acquire(&path).expect("lock").expect("free");
        assert!(FileLock::try_acquire(&path).expect("try").is_none());
        drop(held);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
