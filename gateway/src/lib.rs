//! carbonx-gateway: the brokers' order-entry gateway (SoupBinTCP 3.0 + OUCH 4.2).
//!
//! # Layout
//! - [`soup`]: SoupBinTCP 3.0 packet codec (pure, check-then-parse).
//! - [`ouch`]: OUCH 4.2 messages and the carbon extensions `b` and `p` (pure).
//! - [`counters`]: messages in and out by type and rejects by reason, for `/metrics`.
//! - [`config`]: `[gateway]` settings; usernames, passwords, entitled accounts, throttles.
//! - [`intake`]: OUCH inbound → engine command, with the gateway's own checks
//!   (throttle `V`, entitlement `L`, side letter) as journaled rejects.
//! - [`replies`]: engine events → each user's OUCH messages (pure).
//! - [`daylog`]: one user's sequenced stream of the day: a file with a bounded in-memory tail.
//! - [`hub`]: all users' streams and the router thread that fills them from the sequencer.
//! - [`server`]: the tokio listener, login, reader and writer tasks, heartbeats.
//! - [`client`]: a SoupBinTCP + OUCH client for tests, tools and the load generator.
//!
//! The flow: socket → reader task → [`intake`] → bounded crossbeam queue →
//! sequencer (journal, engine) → router thread → [`daylog`] → writer task →
//! socket. The engine thread never touches a socket; a slow client only
//! falls behind in its own day log.

pub mod client;
pub mod config;
pub mod counters;
pub mod daylog;
pub mod hub;
pub mod intake;
pub mod ouch;
pub mod replies;
pub mod server;
pub mod soup;
