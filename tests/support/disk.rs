//! A small disk for one test: a tmpfs that fills up under load.

use std::path::Path;
use std::process::Command;

/// A small tmpfs mounted for one test, unmounted (lazily) when dropped.
pub struct SmallDisk {
    /// Where it is mounted.
    pub dir: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `dir`;
    /// why not, where the machine cannot (not root, no mount namespace).
    pub fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(SmallDisk { dir: dir.to_path_buf() })
    }

    /// [`SmallDisk::mount`], or `None` after saying why the test is
    /// skipped (CI runs as root and can mount).
    pub fn mount_or_skip(dir: &Path, size: &str) -> Option<SmallDisk> {
        SmallDisk::mount(dir, size)
            .inspect_err(|why| println!("SKIPPED: cannot mount a small tmpfs here ({}); CI runs as root", why.trim()))
            .ok()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
