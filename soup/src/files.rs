//! Files that survive a power cut: the one place that knows the order of
//! `write`, `fsync`, `rename` and the directory's `fsync`.
//!
//! A file's data is durable after its own `fsync`; its *name* is durable
//! only after the directory holding it is synced. So a whole file is
//! replaced by writing a temporary file, syncing it, renaming it over the
//! target and syncing the directory ([`write_atomically`],
//! [`commit_file`]): after a power cut the name holds the old content or
//! the new, never an empty or half-written file.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
    File::open(dir)?.sync_all()
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
    file.sync_all()?;
    std::fs::rename(tmp, path)?;
    sync_dir(parent_dir(path))
}

/// Replaces (or creates) `path` with `bytes` so that a crash or power cut
/// at any moment leaves either the old file or the whole new one: writes
/// [`temporary_path`], syncs it, renames it and syncs the directory. The
/// directory must exist.
///
/// # Errors
/// Any step failed: `path` may still hold its old content (or not exist).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_path(path);
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    commit_file(&file, &tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("statistics.csv");
        write_atomically(&path, b"old\n").unwrap();
        write_atomically(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["statistics.csv"], "the temporary file was renamed");
        assert_eq!(temporary_path(&path), dir.path().join("statistics.csv.tmp"));
        assert_eq!(parent_dir(Path::new("x.csv")), Path::new("."));
    }

    #[test]
    fn write_atomically_without_its_directory_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("positions.csv");
        assert!(write_atomically(&path, b"x").is_err());
        assert!(!dir.path().join("missing").exists());
    }
}
