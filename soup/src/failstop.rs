//! Fail-stop: the one switch every stage of a running server throws when
//! it can no longer keep the exchange's promise (docs/ARCHITECTURE.md,
//! "Fail-stop"): a journal, day-log or end-of-day file that cannot be
//! written or synced, or a stage thread that panicked.
//!
//! Throwing it never releases anything: the stage that throws it stops
//! where it is, the sequencer takes no further batch, the gateway refuses
//! new logins, and the process's main loop sees [`FailStop::is_tripped`],
//! shuts the server down and exits non-zero with the first reason, which
//! names the file and the OS error. The first reason wins; later ones (the
//! consequences of the first) are logged but not reported.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The environment variable of the test-only stage-panic hook:
/// `STAGE:N` makes stage `STAGE` (`sequencer`, `router`, `feed`, `eod`)
/// panic on its `N`th input (1-based). Read once when a stage starts.
pub const TEST_PANIC_ENV: &str = "CARBONX_TEST_PANIC";

/// The server-wide fail-stop switch.
#[derive(Debug, Default)]
pub struct FailStop {
    tripped: AtomicBool,
    reason: OnceLock<String>,
}

impl FailStop {
    /// A switch not yet thrown.
    pub fn new() -> Arc<FailStop> {
        Arc::new(FailStop::default())
    }

    /// Throws the switch with `reason` (say which file and the OS error);
    /// the first reason is kept and logged as the error of the stop.
    pub fn trip(&self, reason: impl Display) {
        let reason = reason.to_string();
        if self.reason.set(reason.clone()).is_ok() {
            tracing::error!("FAIL-STOP: {reason}; order entry stops, the server exits");
        } else {
            tracing::warn!("after the fail-stop: {reason}");
        }
        self.tripped.store(true, Ordering::Release);
    }

    /// True once any stage threw the switch.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// The first reason given, once thrown.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }

    /// A guard for a stage thread's body: if the thread unwinds through it
    /// (a panic), the switch is thrown naming `stage`.
    pub fn watch(self: &Arc<Self>, stage: &'static str) -> StageWatch {
        StageWatch { failstop: Arc::clone(self), stage }
    }
}

/// Throws the fail-stop when its stage panics (see [`FailStop::watch`]).
#[derive(Debug)]
pub struct StageWatch {
    failstop: Arc<FailStop>,
    stage: &'static str,
}

impl Drop for StageWatch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.failstop.trip(format_args!("the {} stage panicked (see the panic message above)", self.stage));
        }
    }
}

/// The test-only panic hook of one stage: counts the stage's inputs and
/// panics at the `N`th when [`TEST_PANIC_ENV`] names the stage. Unset (as
/// in production), [`PanicHook::tick`] is one branch on a `None`.
#[derive(Debug, Default)]
pub struct PanicHook {
    left: Option<u64>,
    stage: &'static str,
}

impl PanicHook {
    /// The hook of `stage`, armed only when the environment asks for it.
    pub fn for_stage(stage: &'static str) -> PanicHook {
        let wanted = std::env::var(TEST_PANIC_ENV).ok();
        let left = wanted.as_deref().and_then(|spec| parse_panic_spec(spec, stage));
        if let Some(n) = left {
            tracing::warn!("{TEST_PANIC_ENV}: the {stage} stage will panic at its input {n} (a test hook)");
        }
        PanicHook { left, stage }
    }

    /// The hook of `stage` armed to panic at its `n`th input (in-process tests).
    pub fn after(stage: &'static str, n: u64) -> PanicHook {
        PanicHook { left: Some(n.max(1)), stage }
    }

    /// One input of the stage.
    ///
    /// # Panics
    /// At the armed count: that is the hook's purpose.
    pub fn tick(&mut self) {
        let Some(left) = self.left.as_mut() else { return };
        *left = left.saturating_sub(1);
        if *left == 0 {
            panic!("{TEST_PANIC_ENV}: injected panic in the {} stage", self.stage);
        }
    }
}

/// `STAGE:N` → `Some(N)` when STAGE is `stage` and N ≥ 1.
fn parse_panic_spec(spec: &str, stage: &str) -> Option<u64> {
    let (name, count) = spec.split_once(':')?;
    (name.trim() == stage).then(|| count.trim().parse::<u64>().ok()).flatten().filter(|n| *n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let failstop = FailStop::new();
        assert!(!failstop.is_tripped() && failstop.reason().is_none());
        failstop.trip("journal-20261124.cxj: No space left on device (os error 28)");
        failstop.trip("a consequence");
        assert!(failstop.is_tripped());
        assert_eq!(failstop.reason(), Some("journal-20261124.cxj: No space left on device (os error 28)"));
    }

    #[test]
    fn a_panicking_stage_throws_the_switch_and_a_clean_exit_does_not() {
        let failstop = FailStop::new();
        let watched = Arc::clone(&failstop);
        std::thread::spawn(move || {
            let _watch = watched.watch("router");
        })
        .join()
        .unwrap();
        assert!(!failstop.is_tripped());
        let watched = Arc::clone(&failstop);
        let panicked = std::thread::spawn(move || {
            let _watch = watched.watch("router");
            panic!("boom");
        })
        .join();
        assert!(panicked.is_err());
        assert!(failstop.reason().is_some_and(|r| r.contains("router stage panicked")), "{:?}", failstop.reason());
    }

    #[test]
    fn the_panic_spec_names_one_stage_and_a_count() {
        assert_eq!(parse_panic_spec("router:3", "router"), Some(3));
        assert_eq!(parse_panic_spec("router:3", "feed"), None);
        assert_eq!(parse_panic_spec("router:0", "router"), None);
        assert_eq!(parse_panic_spec("router", "router"), None);
        assert_eq!(parse_panic_spec("eod:x", "eod"), None);
        let mut hook = PanicHook { left: Some(2), stage: "feed" };
        hook.tick();
        assert!(std::panic::catch_unwind(move || hook.tick()).is_err());
        PanicHook::default().tick();
    }
}
