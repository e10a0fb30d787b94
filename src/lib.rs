//! carbonx: the exchange core for China's national carbon market. This
//! library is the wiring around the engine; the `carbonx` binary
//! (`main.rs`) is a thin command line over it, and integration tests use
//! it to run whole servers in-process.
//!
//! # Layout
//! - [`admin`]: the operator's HTTP endpoint (halt, kill switch, roll, transfers, sessions, book, `/metrics`).
//! - [`admin_auction`]: the operator's one-way bidding auctions on that endpoint.
//! - [`admin_client`]: `carbonx admin`, the command line over that endpoint.
//! - [`metrics`]: Prometheus metrics from the sequencer, the gateway and the feed.
//! - [`eod`]: end-of-day files (trades, positions, statistics) written at each day's end.
//! - [`config`]: the TOML configuration and the embedded demo market.
//! - [`fanout`]: routes each durable batch of events to the gateway and the feed.
//! - [`sequencer`]: the engine thread: batch, journal, apply, publish.
//! - [`replay`]: `carbonx replay`, the offline replay of a data directory.
//! - [`server`]: `carbonx serve`: recovery, the threads, the listeners, shutdown.
//! - [`watch`]: `carbonx watch`, the market maker's view from the feed.
//! - [`load`]: `carbonx load`: open-loop load with HDR latency percentiles.
//! - [`plot`]: SVG plots of a load run.
//! - [`snapshot_file`]: snapshot files: start-of-day (before each roll) and on demand.
//! - [`journal_file`]: the journal files: group commit and recovery.
//! - [`taken`]: the day's taken order tokens, a set that doubles without stopping the engine thread.
//!
//! The engine itself is the sans-IO crate `carbonx-engine`; the gateway and
//! the feed are `carbonx-gateway` and `carbonx-feed`.

pub mod admin;
pub mod admin_auction;
pub mod admin_client;
pub mod config;
pub mod eod;
pub mod fanout;
pub mod journal_file;
pub mod load;
pub mod metrics;
pub mod plot;
pub mod replay;
pub mod sequencer;
pub mod server;
pub mod snapshot_file;
pub mod taken;
pub mod watch;
