//! The programs an operator or a market maker runs beside a server.
//!
//! # Layout
//! - [`audit`]: `carbonx replay --events`, every journal record and its result as JSON lines.
//! - [`load`]: `carbonx load`: open-loop load with HDR latency percentiles.
//! - [`plot`]: SVG plots of a load run.
//! - [`replay`]: `carbonx replay`, the offline replay of a data directory.
//! - [`tls`]: the `--tls` options of our clients.
//! - [`watch`]: `carbonx watch`, the market maker's view from the feed.

pub mod audit;
pub mod load;
pub mod plot;
pub mod replay;
pub mod tls;
pub mod watch;
