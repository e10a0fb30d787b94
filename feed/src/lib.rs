//! carbonx-feed: market data for market makers (ITCH 5.0 over MoldUDP64 and
//! TCP, snapshots, and the client-side book builder).
//!
//! # Layout
//! Pure (no sockets, no clock, no threads):
//! - [`itch`]: ITCH 5.0 messages (`S R H J A E X D U P Q`, plus our End of
//!   Snapshot `G`) as plain structs over raw wire fields, with an encoder that
//!   writes into the caller's buffer and a check-then-parse decoder.
//! - [`moldudp`]: MoldUDP64 framing: packet header, the [`moldudp::Packer`]
//!   that fills one datagram in a buffer it owns, the checked datagram
//!   decoder, heartbeat, end of session and re-request packets.
//! - [`translate`]: engine events to ITCH messages, as PROTOCOL §7 maps them.
//! - [`book`]: the book built from the feed alone, with gap detection and
//!   top-N levels; the server's snapshots come from it too.
//! - [`stats`]: last trade, volume by method, the close and auction results, from the feed.
//!
//! With I/O:
//! - [`service`]: the feed thread: translate, number, log, book, publish MoldUDP64.
//! - [`counters`]: publisher and re-request counters, and the send to every destination.
//! - [`rerequest`]: the MoldUDP64 re-request server (UDP).
//! - [`access`]: the feed's users and passwords, connection caps per
//!   source address (before login) and per user (after it).
//! - [`snapshot`]: snapshots built off the feed thread and shared by requests.
//! - [`tcp`]: the TCP feed and the snapshot service (tokio), each connection
//!   driven by a [`carbonx_soup::session::ServerSession`].
//! - [`watch`]: a consumer: snapshot, then the TCP feed, into a [`book::BookBuilder`].
//!
//! The codecs are byte-exact testable against hand-written vectors and
//! independent decoders (`itchy`, `moldudp`). The day log of the feed is a
//! [`carbonx_soup::daylog::DayLog`] (SoupBinTCP packets, a file with a
//! bounded in-memory tail), read by the TCP feed and the re-request server
//! alike.
//!
//! Imports: [`carbonx_engine`] and [`carbonx_soup`] (the SoupBinTCP session
//! state machine, day log and client that the TCP feed, the snapshot service
//! and [`watch`] use) only; never `carbonx-gateway`.

pub mod access;
pub mod book;
pub mod counters;
pub mod itch;
pub mod moldudp;
pub mod rerequest;
pub mod service;
pub mod snapshot;
pub mod stats;
pub mod tcp;
pub mod translate;
pub mod watch;
