//! Snapshot files: the header line, the JSON body, and the engine restored
//! from it, as recovery and `carbonx replay --snapshot` read them.

use super::byte;
use crate::serve::snapshot_file::{self, SnapshotFile};
use carbonx_engine::{Engine, EngineConfig};
use std::path::Path;

/// The first byte picks what the rest is: a whole file, or a JSON body
/// that this function puts behind a correct header (so that the fuzzer
/// reaches the body behind the checksum). A file that decodes serialises
/// back to JSON that decodes to the same value; restoring the demo market
/// from it never panics, and a restored engine snapshots back to it.
pub fn snapshot_file(data: &[u8]) {
    let mut data = data;
    let file = if byte(&mut data) % 2 == 0 { data.to_vec() } else { with_header(data) };
    let Ok(decoded) = snapshot_file::decode(&file, Path::new("fuzz.snap")) else { return };
    let body = serde_json::to_vec(&decoded).expect("a snapshot serialises");
    let again: SnapshotFile = serde_json::from_slice(&body).expect("its own JSON parses");
    assert_eq!(again, decoded);
    if let Ok(engine) = Engine::restore(EngineConfig::demo(), &decoded.engine) {
        assert_eq!(engine.snapshot(), decoded.engine);
    }
}

/// `body` as a snapshot file: the header line with its length and CRC32C.
pub(super) fn with_header(body: &[u8]) -> Vec<u8> {
    let mut file = format!("carbonx-snapshot 1 {} {:08x}\n", body.len(), crc32c::crc32c(body)).into_bytes();
    file.extend_from_slice(body);
    file
}
