//! Whether another process holds an embedded store's lock file. SurrealDB reports a held lock
//! only in the text of a connection error, so the store asks the operating system itself:
//! RocksDB locks its `LOCK` file with a POSIX record lock (`fcntl`), SurrealKV with `flock`.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::config::DatabaseUrl;

/// Whether a process other than this one holds the lock of the embedded store at `url`
/// (`false` for a store that is not embedded, or has no lock file yet).
pub(super) fn held_elsewhere(url: &DatabaseUrl) -> bool {
    match url {
        DatabaseUrl::RocksDb(path) => {
            open(&path.join("LOCK")).is_some_and(|file| record_locked(&file))
        }
        DatabaseUrl::SurrealKv(path) => {
            open(&path.join("LOCK")).is_some_and(|file| file.try_lock().is_err())
        }
        DatabaseUrl::Memory | DatabaseUrl::Remote(_) => false,
    }
}

fn open(path: &Path) -> Option<File> {
    OpenOptions::new().read(true).write(true).open(path).ok()
}

/// Whether another process holds a POSIX record lock on `file` (`F_GETLK` reports the locks
/// that would block a write lock over the whole file; a process's own locks never do).
#[cfg(unix)]
fn record_locked(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` is plain data, valid when zeroed; `fcntl(F_GETLK)` only writes into it,
    // and the descriptor stays open for the call.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    let answered = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    answered == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

#[cfg(not(unix))]
fn record_locked(_file: &File) -> bool {
    false
}
