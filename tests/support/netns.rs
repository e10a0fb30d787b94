//! Network namespaces a test makes for itself (`ip netns`), deleted when
//! dropped: other hosts on one machine (multicast, cluster partitions).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `ip` with `args`; the error text when it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|err| format!("ip {}: {err}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A network namespace with a name unique to this test run, deleted on drop.
pub struct Netns {
    /// Its name (`ip netns exec <name> ...`).
    pub name: String,
}

impl Netns {
    /// A new namespace, its loopback up; `role` ends its name.
    pub fn new(role: char) -> Result<Netns, String> {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let name = format!("cx{}-{}{role}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name])?;
        let netns = Netns { name };
        ip(&["-n", &netns.name, "link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Moves the calling thread into this namespace (threads it starts
    /// afterwards are in it too).
    pub fn enter(&self) {
        let file = std::fs::File::open(format!("/var/run/netns/{}", self.name)).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    }

    /// [`Netns::enter`] for a handle that must not delete the namespace.
    pub fn enter_and_forget(self) {
        self.enter();
        std::mem::forget(self);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}
