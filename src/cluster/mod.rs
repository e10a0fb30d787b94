//! Replication: a cluster of carbonx nodes on openraft. The sequenced
//! command stream is the Raft log: the leader stamps and proposes each
//! group-commit batch, every node applies what is committed.
//!
//! # Layout
//! - `mod.rs`: the Raft type configuration and the log's payload.
//! - [`log_store`]: the Raft log on disk (`raft/` in the data directory).
//! - [`state_machine`]: hands committed entries to the engine thread.
//! - [`network`]: Raft's RPCs between nodes, postcard frames over TCP.
//! - [`config`]: the `[cluster]` table.
//! - [`node`]: a running node: Raft started, the leadership watcher that
//!   opens and closes order entry, the `/cluster` view.

pub mod config;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;

use std::io::Cursor;

/// A node's id in the cluster (`[cluster] node`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// carbonx's Raft types: a log entry carries a batch of journal records.
    pub TypeConfig:
        D = Batch,
        R = (),
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// One log entry's command batch: journal records (`carbonx_engine::journal`
/// encoding, the same bytes as a journal file), stamped by the leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Encoded records, back to back. As bytes: postcard then copies them
    /// whole instead of visiting each byte as a number (the same encoding).
    #[serde(with = "serde_bytes")]
    pub records: Vec<u8>,
}

/// The start of a trading day, as a Raft snapshot holds it: the engine's
/// start-of-day snapshot (the bytes of a `snapshots/YYYYMMDD.snap` file,
/// [`crate::serve::snapshot_file`]), taken just before the roll that ended
/// the previous day. The roll is alone in its log entry, `roll_index`, so
/// the file is exactly the state after entry `roll_index - 1`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayStart {
    /// The roll's log entry.
    pub roll_index: u64,
    /// The snapshot file's bytes.
    #[serde(with = "serde_bytes")]
    pub file: Vec<u8>,
}

/// What the cluster knows of a member: where it serves each role.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Raft RPCs (`host:port`).
    pub raft: String,
    /// Order entry (`host:port`).
    pub order_entry: String,
    /// The admin endpoint (`host:port`).
    pub admin: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_encodes_as_a_plain_byte_vector_did() {
        #[derive(serde::Serialize)]
        struct Plain {
            records: Vec<u8>,
        }
        let records: Vec<u8> = (0..=255).collect();
        let now = postcard::to_allocvec(&Batch { records: records.clone() }).unwrap();
        assert_eq!(now, postcard::to_allocvec(&Plain { records: records.clone() }).unwrap(), "old logs still read");
        assert_eq!(postcard::from_bytes::<Batch>(&now).unwrap().records, records);
    }
}
