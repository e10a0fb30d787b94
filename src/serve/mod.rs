//! `carbonx serve`: a running exchange. [`Server`] wires the threads together;
//! the other modules are the stages and the files they keep.
//!
//! # Layout
//! - `server.rs` ([`Server`]): recovery, the threads, the listeners, shutdown.
//! - [`sequencer`]: the engine thread: batch, journal, apply, publish (the
//!   live loop), recovery from a snapshot and the journal, and its clocks.
//! - [`fanout`]: routes each durable batch of events to the gateway, the feed
//!   and the end-of-day writer.
//! - [`journal_file`]: the journal files: group commit and recovery.
//! - [`snapshot_file`]: snapshot files: start-of-day (before each roll) and on demand.
//! - [`taken`]: the day's taken order tokens, a set that grows without stopping the engine thread.
//! - [`eod`]: end-of-day files (trades, positions, statistics) written at each day's end.
//! - [`metrics`]: Prometheus metrics from the sequencer, the gateway and the feed.

pub mod eod;
pub mod fanout;
pub mod journal_file;
pub mod metrics;
pub mod sequencer;
mod server;
pub mod snapshot_file;
pub mod taken;

pub use server::*;
