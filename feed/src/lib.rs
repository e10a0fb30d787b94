//! carbonx-feed: market data for market makers (ITCH 5.0 over MoldUDP64 and
//! TCP).
//!
//! # Layout
//! - [`itch`]: ITCH 5.0 messages (`S R H J A E X D U P Q`, plus our End of
//!   Snapshot `G`) as plain structs over raw wire fields, with an encoder that
//!   writes into the caller's buffer and a check-then-parse decoder.
//! - [`moldudp`]: MoldUDP64 framing: packet header, the [`moldudp::Packer`]
//!   that fills one datagram in a buffer it owns, the checked datagram
//!   decoder, heartbeat, end of session and re-request packets.
//! - [`translate`]: engine events to ITCH messages, as PROTOCOL.md maps
//!   them (pure as well; the one module that knows the engine's types).
//!
//! Both modules are pure: functions over byte slices, no sockets, no clock,
//! no threads, no allocation. That keeps them byte-exact testable against
//! hand-written vectors and independent decoders (`itchy`, `moldudp`),
//! cheap on the publishing hot path, and shared unchanged by every side that
//! speaks the feed: the publishers (UDP, TCP, snapshot) that wrap them in I/O
//! and the client book builder that reads them. The codecs know nothing of
//! the engine's types; [`translate`] maps the engine's events to them.

pub mod itch;
pub mod moldudp;
pub mod translate;
