//! carbonx-engine: the sans-IO matching engine of China's national carbon
//! market (CEA allowances and CCER offsets).
//!
//! # Layout
//! - [`types`]: integer newtypes for every unit and id (`Price` in fen,
//!   `Qty` in tonnes, `OrderId`, `AccountId`, `Timestamp`, ...).
//! - [`config`]: the market's numbers ([`EngineConfig`]), the demo market.
//! - [`command`] and [`event`]: the engine's whole vocabulary.
//! - [`Engine`] (`engine.rs`): the state and [`Engine::apply`], one `match`
//!   dispatching each command to a small handler in a sibling module:
//!   `validate.rs` (the check order of PROTOCOL §5.2), `matching.rs`
//!   (price-time matching, self-trade prevention, FOK, drains), `day.rs`
//!   (sessions, halts, close, roll), `risk.rs` (locks, checks and
//!   settlement when the engine has accounts) and `inspect.rs` (invariants, state
//!   hash, read-only queries).
//! - `book.rs`: the data structures: a preallocated order slab with a free
//!   list, and per side a price ladder over the band with an intrusive FIFO
//!   per level and an occupancy bitmap for the best-price search.
//! - `auction.rs`: one-way bidding auctions (sealed bids in a window,
//!   allocated by price then time when the window ends).
//! - `block.rs`: block agreement orders (matched by deal, never on the
//!   public book) and pick orders (trade one named order in the best
//!   `pick_levels` levels, 5 by default).
//! - `waiting.rs`: the block orders waiting for their counterparty: a slab
//!   in arrival order with indexes by token and by account and deal.
//! - `index.rs`: the compact hash index (key hash → slab slot) that stays
//!   cache-sized while few orders rest and never allocates: live orders and
//!   auction bids by (user, token), waiting blocks by token and by account
//!   and deal. There is no index by public reference (see `Orders` in `engine.rs`).
//! - [`hint`]: the cache prefetch a caller looking ahead may ask for.
//! - [`calendar`]: phases of the day from timestamps, dates, holidays.
//! - [`accounts`]: cash and holdings for pre-trade risk, CSV and demo accounts.
//! - [`journal`]: the journal record codec (the file writer is the binary's).
//! - [`snapshot`]: the whole state as plain data and an engine restored from it
//!   (start-of-day snapshots; the file format is the binary's).
//!
//! Sans-IO: no threads, no clock, no files, no sockets. Time, input and
//! output buffers come from the caller (the quinn-proto and raft-rs
//! pattern), which makes every run a deterministic function of the
//! command stream: the journal replays it exactly.

/// `assert!` for the invariant checks: a breach returns an
/// [`inspect::Breach`] instead of panicking, so that input (a restored
/// snapshot) can be refused; tests panic on it through
/// [`Engine::check_invariants`].
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::inspect::Breach(format!($($msg)+)));
        }
    };
}

/// `assert_eq!` for the invariant checks, as [`ensure!`].
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($msg:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    let what = format!($($msg)+);
                    return Err($crate::inspect::Breach(format!("{what}: {left:?} != {right:?}")));
                }
            }
        }
    };
}

pub mod accounts;
pub mod calendar;
pub mod command;
pub mod config;
pub mod event;
pub mod hint;
pub mod journal;
pub mod snapshot;
pub mod types;

mod auction;
mod block;
mod book;
mod day;
mod engine;
mod index;
mod inspect;
mod listing;
mod matching;
mod risk;
mod validate;
mod waiting;

pub use auction::RankedBid;
pub use calendar::{Phase, SessionHours, TimeOfDay};
pub use command::{
    AnnounceAuction, Asset, AuctionBid, Cancel, Command, Delisting, FloorRule, GatewayReject, Listing, NewBlock,
    NewOrder, Pick, Pricing, Replace, TimeInForce, Transfer,
};
pub use config::{EngineConfig, InstrumentConfig, SessionMode, StpMode};
pub use engine::Engine;
pub use event::{
    AuctionInfo, AuctionRefusal, AuctionResult, CancelReason, DailyStats, Event, EventSink, Execution, Method,
    OrderInfo, Party, Reference, ReferenceChange, ReferenceRefusal, RejectReason, TradingState,
};
pub use index::IndexKey;
pub use inspect::{Breach, LevelView, RestingOrder};
pub use types::{
    AccountId, AuctionId, InstrumentId, MatchId, OrderId, Price, Qty, Seq, Side, StockCode, Timestamp, Token, UserId,
};
