//! The bodies of the fuzz targets in `fuzz/` (libFuzzer through `cargo
//! fuzz`), kept here as plain functions so that the stable corpus replay
//! (`tests/fuzz_corpus.rs`) runs exactly what was fuzzed. Each takes the
//! fuzzer's bytes, must never panic, and asserts a property where one is
//! cheap: whatever decodes encodes back to the same bytes (or at least to
//! something that decodes to the same value), and a stream fed in pieces
//! means what it means fed at once.
//!
//! Not part of the exchange: hidden from the docs, used only by the fuzz
//! crate and the replay test.

mod admin;
mod config;
mod journal;
mod moldudp;
mod ouch;
mod session;
mod snapshot;
mod soup;

pub use admin::admin_request;
pub use config::config_toml;
pub use journal::journal_record;
pub use moldudp::moldudp_rerequest;
pub use ouch::ouch_inbound;
pub use session::gateway_session;
pub use snapshot::snapshot_file;
pub use soup::{soup_login, soup_packet};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/<name>.rs` and its
/// corpus folder `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("soup_packet", soup_packet),
    ("soup_login", soup_login),
    ("ouch_inbound", ouch_inbound),
    ("gateway_session", gateway_session),
    ("moldudp_rerequest", moldudp_rerequest),
    ("admin_request", admin_request),
    ("journal_record", journal_record),
    ("snapshot_file", snapshot_file),
    ("config_toml", config_toml),
];

/// Splits `n` bytes off the front of `data` (fewer if it is shorter).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, rest) = data.split_at(n.min(data.len()));
    *data = rest;
    head
}

/// The first byte of `data` (0 when empty), consumed.
fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}
