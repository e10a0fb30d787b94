//! carbonx-soup: the SoupBinTCP 3.0 session layer that order entry (the
//! gateway's OUCH) and market data (the feed's ITCH over TCP, snapshots,
//! drop copy) share. It depends on nothing else of carbonx.
//!
//! # Layout
//! Pure (no sockets, no clock, no threads):
//! - [`packet`]: SoupBinTCP 3.0 packets: the codec (check-then-parse, the
//!   length checked before anything is buffered) and the ASCII fields.
//! - [`session`]: the session as a sans-IO state machine, fed bytes and the
//!   caller's time, returning bytes to send and [`session::Event`]s: login
//!   within its timeout, heartbeats both ways, sequence numbers, replay,
//!   End of Session. Server side in two halves (reader, writer) and a
//!   client-side decoder.
//!
//! With I/O:
//! - [`daylog`]: one sequenced stream of a trading day as ready-to-send
//!   packets: a file with a bounded in-memory tail and a sparse index, read
//!   through a [`daylog::Cursor`].
//! - [`files`]: files that survive a power cut: write a temporary file,
//!   sync it, rename it, sync the directory (one helper for the journal's
//!   neighbours, the snapshots and the end-of-day files).
//! - [`failstop`]: the server-wide fail-stop switch every stage throws on
//!   a storage failure or a panic, and the test-only stage-panic hook.
//! - [`capped`]: connections counted per key (a source address, a
//!   username) with a cap, shared by every listener.
//! - [`server`]: the thin tokio side of a server session: one read within
//!   the session's deadlines, and the login reading that the gateway and the
//!   feed share.
//! - [`secret`]: password hashes (argon2 PHC strings) and constant-time
//!   token comparison, shared by every login of the exchange.
//! - [`stream`]: a connection that is plain TCP or TLS (rustls), and its
//!   halves; the TLS acceptor and connector from PEM files.
//! - [`client`]: a tokio client yielding raw sequenced payloads; the gateway's
//!   OUCH client and the feed's consumer sit on top of it.
//!
//! Who imports whom: the root app imports engine, soup, gateway and feed;
//! the gateway and the feed each import engine and soup, never each other;
//! this crate imports none of them.

pub mod capped;
pub mod client;
pub mod daylog;
pub mod failstop;
pub mod files;
pub mod packet;
pub mod secret;
pub mod server;
pub mod session;
pub mod stream;

pub use packet::{LoginRequest, Packet, SoupError};
