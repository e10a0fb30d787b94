//! Raft's RPCs between nodes: postcard frames over TCP.
//!
//! Each message is a frame `[u32 LE length][postcard body]`. A client
//! ([`PeerClient`]) keeps one connection to a peer's `raft` address and has
//! one request in flight on it (openraft uses one client per replication
//! stream, so a second connection would buy nothing). The server ([`serve`])
//! answers each connection's requests in order through any [`RaftRpc`]:
//! [`openraft::Raft`] in a node, a mock in the tests.
//!
//! These are peer connections inside the cluster, not a public port; still,
//! bytes from the network never panic the node or make it allocate far more
//! than arrived: a frame above [`MAX_FRAME_LEN`] or one that does not decode closes
//! its connection.
//!
//! # Layout
//! - `mod.rs`: this overview and the re-exports.
//! - `wire.rs`: the frames ([`RaftRequest`], [`RaftReply`]), their encoding
//!   and reading ([`encode_frame`], [`read_frame`], [`write_frame`]) and
//!   [`FrameError`].
//! - `client.rs`: openraft's network factory ([`Network`]) and the
//!   connection to one peer ([`PeerClient`]).
//! - `server.rs`: [`serve`] and what it needs of Raft ([`RaftRpc`]).
//! - `tests.rs`: the tests' shared fixtures; the client and server tested
//!   against each other (the codec's tests are in `wire.rs`).

mod client;
mod server;
#[cfg(test)]
mod tests;
mod wire;

pub use client::{DEFAULT_CONNECT_TIMEOUT, Network, PeerClient};
pub use server::{IDLE_TIMEOUT, RaftRpc, serve};
pub use wire::{FrameError, MAX_FRAME_LEN, RaftReply, RaftRequest, encode_frame, read_frame, write_frame};
