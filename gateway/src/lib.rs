//! carbonx-gateway: the brokers' order-entry gateway (SoupBinTCP 3.0 + OUCH 4.2).
//!
//! # Layout
//! - [`ouch`]: OUCH 4.2 messages and the carbon extensions `b`, `p` and `a`
//!   (pure), split into [`ouch::inbound`] and [`ouch::outbound`].
//! - [`counters`]: messages in and out by type and rejects by reason, for `/metrics`.
//! - [`config`]: `[gateway]` settings; usernames, passwords, entitled accounts, throttles.
//! - [`intake`]: OUCH inbound → engine command, with the gateway's own checks
//!   (throttle `V`, entitlement `L`, side letter) as journaled rejects.
//! - [`replies`]: engine events → each user's OUCH messages (pure).
//! - [`fair`]: per-user queues drained round-robin into the sequencer's queue.
//! - [`hub`]: all users' streams (each a [`carbonx_soup::daylog::DayLog`])
//!   and the router thread that fills them from the sequencer.
//! - [`logins`]: failed logins delayed, counted and locked out per username and address.
//! - [`prelogin`]: connections not yet logged in, capped per source address.
//! - [`server`]: the tokio listener and per connection a reader and a writer
//!   task driving the two halves of a [`carbonx_soup::session`] state machine.
//! - [`client`]: the OUCH client for tests, tools and the load generator: a
//!   thin layer over [`carbonx_soup::client`] that encodes inbound and decodes
//!   outbound messages.
//!
//! Imports: [`carbonx_engine`] and [`carbonx_soup`] (SoupBinTCP framing,
//! session, day log, client) only; never `carbonx-feed`, which shares the
//! session layer through `carbonx-soup` instead.
//!
//! The flow: socket → reader task → [`intake`] → bounded crossbeam queue →
//! sequencer (journal, engine) → router thread → day log → writer task →
//! socket. The engine thread never touches a socket; a slow client only
//! falls behind in its own day log.

pub mod client;
pub mod config;
pub mod counters;
pub mod fair;
pub mod hub;
pub mod intake;
pub mod logins;
pub mod ouch;
pub mod prelogin;
pub mod replies;
pub mod server;
