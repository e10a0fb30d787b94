//! carbonx: the exchange core for China's national carbon market. This
//! library is the wiring around the engine; the `carbonx` binary
//! (`main.rs`) is a thin command line over it, and integration tests use
//! it to run whole servers in-process.
//!
//! # Layout
//! Three rooms and the configuration they share:
//! - [`serve`]: `carbonx serve`, the running exchange: the threads and their
//!   wiring, the sequencer, the journal and snapshot files, the fan-out, the
//!   day's taken tokens, the end-of-day files and the metrics.
//! - [`admin`]: the operator's HTTP endpoint, its auctions, and `carbonx
//!   admin`, the command line over it.
//! - [`tools`]: the programs run beside a server: `load`, `replay`, `watch`
//!   and the plots of a load run.
//! - [`cluster`]: replication on openraft (`[cluster]`): the Raft log, state
//!   machine and network.
//! - [`config`]: the TOML configuration and the embedded demo market.
//!
//! Imports: this crate uses all four of ours, `carbonx-engine` (the sans-IO
//! engine), `carbonx-soup` (SoupBinTCP sessions), `carbonx-gateway` (order
//! entry) and `carbonx-feed` (market data); none of them imports it.

pub mod admin;
pub mod cluster;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod serve;
pub mod tools;
