//! The operator's side: the HTTP endpoint (halt, kill switch, roll,
//! transfers, sessions, book, `/metrics`), its one-way bidding auctions, and
//! `carbonx admin`, the command line over it.
//!
//! # Layout
//! - [`api`]: the requests and answers, shared by the endpoint and the client.
//! - `endpoint.rs` (re-exported here): the routes, the operator queue into
//!   the sequencer, and the answers.
//! - [`listener`]: the connections: caps, TLS, timeouts, head and body sizes.
//! - [`auction`]: announcing, listing and showing auctions.
//! - [`instrument`]: listing and delisting instruments (reference data).
//! - [`cluster`]: the cluster's status and membership (`[cluster]`).
//! - [`client`]: `carbonx admin`.

pub mod api;
pub mod auction;
pub mod client;
pub mod cluster;
mod endpoint;
pub mod instrument;
pub mod listener;

pub use endpoint::*;
pub use listener::{Limits, serve};
