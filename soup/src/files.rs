//! Files that survive a power cut: the one place that knows the order of
//! `write`, `fsync`, `rename` and the directory's `fsync`.
//!
//! A file's data is durable after its own `fsync`; its *name* is durable
//! only after the directory holding it is synced. So a whole file is
//! replaced by writing a temporary file, syncing it, renaming it over the
//! target and syncing the directory ([`write_atomically`],
//! [`commit_file`]): after a power cut the name holds the old content or
//! the new, never an empty or half-written file.
//!
//! A new file's name needs the same care: [`create_file`] and
//! [`create_dir_all`] sync the directory each new entry was made in, so
//! that a journal created for a new day is still there after a power cut
//! even when its directory was never synced otherwise.
//!
//! Every file and directory made here gets its permissions from a
//! [`FileModes`] (owner-only by default: `0600` files, `0700`
//! directories); the process umask can only remove bits from them, and
//! files and directories that already exist keep theirs.
//!
//! Every write and sync of the journal, the day logs and the end-of-day
//! files passes [`check`] first: the seam through which the fault-injection
//! tests (tests/failstop_faults.rs) fail the Nth write or sync or run out
//! of space. With no [`FaultPlan`] installed (always, outside those tests)
//! it costs one relaxed atomic load.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A storage operation a [`FaultPlan`] may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// A file (or directory) is created.
    Create,
    /// Bytes are written to a file.
    Write,
    /// A file or directory is synced.
    Sync,
}

/// Decides whether a storage operation fails: installed by fault-injection
/// tests only ([`install_faults`]).
pub trait FaultPlan: Send + Sync {
    /// `Err` to make `op` on `path` fail with that error, before it is done.
    ///
    /// # Errors
    /// The injected fault.
    fn check(&self, op: StorageOp, path: &Path) -> io::Result<()>;
}

static FAULTS_ON: AtomicBool = AtomicBool::new(false);
static FAULTS: RwLock<Option<Arc<dyn FaultPlan>>> = RwLock::new(None);

/// Installs (or with `None` removes) the process-wide fault plan.
pub fn install_faults(plan: Option<Arc<dyn FaultPlan>>) {
    let on = plan.is_some();
    *FAULTS.write().unwrap_or_else(std::sync::PoisonError::into_inner) = plan;
    FAULTS_ON.store(on, Ordering::Release);
}

/// Asks the installed [`FaultPlan`], if any, whether `op` on `path` fails.
///
/// # Errors
/// The injected fault.
#[inline]
pub fn check(op: StorageOp, path: &Path) -> io::Result<()> {
    if !FAULTS_ON.load(Ordering::Relaxed) {
        return Ok(());
    }
    let plan = FAULTS.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    plan.map_or(Ok(()), |plan| plan.check(op, path))
}

/// `err` with `path` in front of its message (the kind kept): the one
/// error line an operator reads names the file.
pub fn named(path: &Path, err: &io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// A file whose writes pass [`check`] and whose errors name it.
#[derive(Debug)]
pub struct CheckedFile {
    file: File,
    path: PathBuf,
}

impl CheckedFile {
    /// Wraps `file`, opened at `path`.
    pub fn new(file: File, path: &Path) -> CheckedFile {
        CheckedFile { file, path: path.to_path_buf() }
    }

    /// Makes its content durable (`fsync`).
    ///
    /// # Errors
    /// The sync failed (the error names the file).
    pub fn sync_all(&self) -> io::Result<()> {
        sync_file(&self.file, &self.path)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Write for CheckedFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        check(StorageOp::Write, &self.path).and_then(|()| self.file.write(bytes)).map_err(|e| named(&self.path, &e))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// `file.sync_all()`, through [`check`], the error naming `path`.
///
/// # Errors
/// The sync failed.
pub fn sync_file(file: &File, path: &Path) -> io::Result<()> {
    check(StorageOp::Sync, path).and_then(|()| file.sync_all()).map_err(|e| named(path, &e))
}

/// The permission bits of the files and directories the server creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileModes {
    /// Files (`0600`: the owner reads and writes, nobody else anything).
    pub file: u32,
    /// Directories (`0700`).
    pub dir: u32,
}

impl Default for FileModes {
    /// Owner only: `0600` files, `0700` directories.
    fn default() -> Self {
        FileModes { file: 0o600, dir: 0o700 }
    }
}

impl FileModes {
    /// Files with mode `file`; directories the same plus the search
    /// (execute) bit wherever a class may read, and always `rwx` for the
    /// owner: `0640` gives `0750`, `0644` gives `0755`, `0600` gives `0700`.
    pub fn for_files(file: u32) -> FileModes {
        let file = file & 0o777;
        FileModes { file, dir: file | 0o700 | ((file & 0o044) >> 2) }
    }
}

thread_local! {
    /// Directory syncs made by this thread (see [`dir_syncs_on_this_thread`]).
    static DIR_SYNCS: Cell<u64> = const { Cell::new(0) };
}

/// How many directory syncs this thread has made: the seam through which
/// tests see that creating a file synced its directory (an `fsync` cannot
/// be observed otherwise). Per thread, so that tests running in parallel
/// do not count each other's.
pub fn dir_syncs_on_this_thread() -> u64 {
    DIR_SYNCS.with(Cell::get)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes the entries of directory `dir` (files created, renamed or
/// removed in it) durable.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    check(StorageOp::Sync, dir).map_err(|e| named(dir, &e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| named(dir, &e))?;
    DIR_SYNCS.with(|n| n.set(n.get() + 1));
    Ok(())
}

/// Creates directory `dir` and any missing parents (like
/// [`std::fs::create_dir_all`]), syncing the parent of each directory it
/// creates, so that the new entries survive a power cut.
///
/// # Errors
/// A directory cannot be created or synced.
pub fn create_dir_all(dir: &Path, modes: FileModes) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all(parent, modes)?;
    }
    match std::fs::DirBuilder::new().mode(modes.dir).create(dir) {
        Ok(()) => sync_dir(parent_dir(dir)),
        // Created meanwhile by someone else, who syncs it.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(err) => Err(named(dir, &err)),
    }
}

/// Opens `path` with `options` (which create it, with `modes.file`),
/// creating its directory first ([`create_dir_all`]), then syncs that
/// directory so that the new file's name survives a power cut.
///
/// # Errors
/// The directory or the file cannot be created, or the directory synced.
pub fn create_file(path: &Path, options: &mut OpenOptions, modes: FileModes) -> io::Result<File> {
    let dir = parent_dir(path);
    create_dir_all(dir, modes)?;
    check(StorageOp::Create, path).map_err(|e| named(path, &e))?;
    let file = options.mode(modes.file).open(path).map_err(|e| named(path, &e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The temporary name [`write_atomically`] writes `path` under first:
/// `path` with `.tmp` appended.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Finishes replacing `path` with `tmp`, a file already written through
/// `file`: syncs the file, renames it to `path` and syncs the directory.
///
/// # Errors
/// A sync or the rename failed: `path` may still hold its old content.
pub fn commit_file(file: &File, tmp: &Path, path: &Path) -> io::Result<()> {
    sync_file(file, tmp)?;
    std::fs::rename(tmp, path).map_err(|e| named(path, &e))?;
    sync_dir(parent_dir(path))
}

/// Replaces (or creates) `path` with `bytes` so that a crash or power cut
/// at any moment leaves either the old file or the whole new one: writes
/// [`temporary_path`], syncs it, renames it and syncs the directory. The
/// directory must exist; a new file gets `modes.file`.
///
/// # Errors
/// Any step failed: `path` may still hold its old content (or not exist).
pub fn write_atomically(path: &Path, bytes: &[u8], modes: FileModes) -> io::Result<()> {
    let tmp = temporary_path(path);
    check(StorageOp::Create, &tmp).map_err(|e| named(&tmp, &e))?;
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(modes.file).open(&tmp);
    let mut file = CheckedFile::new(file.map_err(|e| named(&tmp, &e))?, &tmp);
    file.write_all(bytes)?;
    commit_file(file.file(), &tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statistics.csv");
        write_atomically(&path, b"old\n", FileModes::default()).unwrap();
        write_atomically(&path, b"new\n", FileModes::default()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["statistics.csv"], "the temporary file was renamed");
        assert_eq!(temporary_path(&path), dir.path().join("statistics.csv.tmp"));
        assert_eq!(parent_dir(Path::new("x.csv")), Path::new("."));
    }

    #[test]
    fn creating_a_file_syncs_every_directory_that_got_a_new_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("journal-20261124.cxj");
        let before = dir_syncs_on_this_thread();
        let mut file = create_file(&path, OpenOptions::new().create(true).append(true), FileModes::default()).unwrap();
        file.write_all(b"x").unwrap();
        // `a` in the temp dir, `b` in `a`, the file in `b`.
        assert_eq!(dir_syncs_on_this_thread() - before, 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        let before = dir_syncs_on_this_thread();
        create_dir_all(&dir.path().join("a").join("b"), FileModes::default()).unwrap();
        assert_eq!(dir_syncs_on_this_thread(), before, "nothing new, nothing synced");
        write_atomically(&dir.path().join("a").join("s.csv"), b"y", FileModes::default()).unwrap();
        assert_eq!(dir_syncs_on_this_thread() - before, 1);
    }

    #[test]
    fn write_atomically_without_its_directory_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("positions.csv");
        assert!(write_atomically(&path, b"x", FileModes::default()).is_err());
        assert!(!dir.path().join("missing").exists());
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_get_the_modes_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let new_dir = dir.path().join("a").join("b");
        create_file(&new_dir.join("j"), OpenOptions::new().create(true).append(true), FileModes::default()).unwrap();
        write_atomically(&new_dir.join("s"), b"s", FileModes::default()).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&new_dir)), (0o700, 0o700));
        assert_eq!((mode(&new_dir.join("j")), mode(&new_dir.join("s"))), (0o600, 0o600));
        assert_eq!(FileModes::for_files(0o640), FileModes { file: 0o640, dir: 0o750 });
        assert_eq!(FileModes::for_files(0o644), FileModes { file: 0o644, dir: 0o755 });
        assert_eq!(FileModes::for_files(0o600), FileModes::default());
    }
}
