//! The admin endpoint's requests and answers, defined once: the endpoint
//! ([`crate::admin`], [`crate::admin::auction`]) serializes them and
//! `carbonx admin` ([`crate::admin::client`]) deserializes them.
//!
//! On the wire each is a JSON object with its keys in alphabetical order
//! (the endpoint and the client both go through [`serde_json::Value`]).
//! Prices and money are decimal text (`"74.63"`), never floats; absent
//! optional fields are left out, except where `null` says "none" (an
//! auction's clearing price, a bid's paid price, the next session date).

use serde::{Deserialize, Serialize};

/// Every refusal: a 4xx or 5xx status with this body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Refused {
    /// What was refused and why.
    pub error: String,
}

/// An instrument's trading state as the answers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstrumentState {
    /// Open for trading.
    Trading,
    /// Paused by the exchange (volatility).
    Paused,
    /// Halted by the operator.
    Halted,
}

/// `POST /halt/{stock}` and `POST /resume/{stock}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct TradingStateAnswer {
    /// The instrument.
    pub instrument: String,
    /// Its state after the command.
    pub state: InstrumentState,
}

/// `POST /kill/{account}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct KillAnswer {
    /// The account.
    pub account: String,
    /// Orders and blocks cancelled.
    pub cancelled: usize,
}

/// One instrument's day in [`RollAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct DayStatistics {
    /// The instrument.
    pub instrument: String,
    /// The trading method (`listing`, `block`, `auction`).
    pub method: String,
    /// The close (yuan).
    pub close: String,
    /// Tonnes traded.
    pub volume: u64,
    /// Turnover (yuan, two decimals).
    pub turnover_yuan: String,
}

/// `POST /roll`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RollAnswer {
    /// Always true: a refused roll is a [`Refused`].
    pub rolled: bool,
    /// The new trading day (`YYYYMMDD`), `null` if none started.
    pub session_date: Option<u32>,
    /// The rolled day's statistics.
    pub statistics: Vec<DayStatistics>,
}

/// `POST /snapshot`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SnapshotAnswer {
    /// The file written.
    pub snapshot: String,
}

/// `POST /transfer`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct TransferRequest {
    /// The account code (`0001`).
    pub account: String,
    /// `cash` or an instrument code.
    pub asset: String,
    /// Yuan with at most two decimals for cash, whole tonnes for an
    /// instrument; a leading `-` withdraws.
    pub amount: String,
}

/// `POST /transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct TransferAnswer {
    /// The account code.
    pub account: String,
    /// `cash` or the instrument, as requested.
    pub asset: String,
    /// The amount, as requested.
    pub amount: String,
    /// What the account has available now (yuan or tonnes).
    pub available: String,
}

/// One username in [`SessionsAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SessionRow {
    /// The username (or drop-copy desk).
    pub user: String,
    /// Whether it is logged in now.
    pub connected: bool,
    /// The sequence number its next message gets.
    pub next_seq: u64,
    /// Whether it is a drop-copy desk.
    pub drop_copy: bool,
}

/// `GET /sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SessionsAnswer {
    /// Every username.
    pub sessions: Vec<SessionRow>,
}

/// `POST /disconnect/{user}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct DisconnectAnswer {
    /// The username.
    pub user: String,
    /// Always true: a user not connected is a [`Refused`].
    pub disconnected: bool,
}

/// `GET /book/{stock}`'s query.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct BookQuery {
    /// Levels per side (default 10, at most [`crate::admin::BOOK_LEVELS_MAX`]).
    pub levels: Option<usize>,
}

/// One price level in [`BookAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct BookLevel {
    /// The price (yuan).
    pub price: String,
    /// Tonnes at the price.
    pub qty: u64,
    /// Orders at the price.
    pub orders: u32,
}

/// `GET /book/{stock}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct BookAnswer {
    /// The instrument.
    pub instrument: String,
    /// Whether the operator halted it.
    pub halted: bool,
    /// The day's reference price (yuan).
    pub reference: String,
    /// The price band: lowest and highest accepted price (yuan).
    pub band: [String; 2],
    /// Bids, best first.
    pub bids: Vec<BookLevel>,
    /// Asks, best first.
    pub asks: Vec<BookLevel>,
}

/// `POST /auction`'s body.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The auction id: 1 to 8 printable ASCII characters, unique today.
    pub id: String,
    /// The instrument.
    pub stock: String,
    /// The selling account (`0001`).
    pub seller: String,
    /// The username whose order-entry stream receives the seller's fills.
    pub user: String,
    /// Tonnes offered (at least the auction minimum, 100,000 t).
    pub qty: u32,
    /// Window start: `now`, `+90s`, `+10m`, `+1h` or `HH:MM` or `HH:MM:SS` Beijing time.
    pub start: String,
    /// Window end, in the same words.
    pub end: String,
    /// `uniform` or `pay-as-bid`.
    pub pricing: String,
    /// `close` (the previous close) or `minus10` (previous close − `market.auction_floor_pct`, 10% by default).
    pub floor: String,
}

/// How an auction's winners pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuctionPricing {
    /// Every winner pays the clearing price.
    #[serde(rename = "uniform")]
    Uniform,
    /// Every winner pays its own bid.
    #[serde(rename = "pay-as-bid")]
    PayAsBid,
}

impl AuctionPricing {
    /// The name on the wire (`uniform`, `pay-as-bid`).
    pub fn name(self) -> &'static str {
        match self {
            AuctionPricing::Uniform => "uniform",
            AuctionPricing::PayAsBid => "pay-as-bid",
        }
    }
}

/// An auction's floor price rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuctionFloor {
    /// The previous close.
    #[serde(rename = "close")]
    PreviousClose,
    /// The previous close less 10%.
    #[serde(rename = "minus10")]
    PreviousCloseMinus10,
}

/// Where an auction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuctionStatus {
    /// Announced, its window not yet open.
    Scheduled,
    /// Taking bids.
    Open,
    /// Allocated.
    Ended,
    /// Ended by the close before its window did: nothing sold, every bid expired.
    Expired,
}

impl AuctionStatus {
    /// The name on the wire (`scheduled`, `open`, `ended`, `expired`).
    pub fn name(self) -> &'static str {
        match self {
            AuctionStatus::Scheduled => "scheduled",
            AuctionStatus::Open => "open",
            AuctionStatus::Ended => "ended",
            AuctionStatus::Expired => "expired",
        }
    }
}

/// An ended auction's allocation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuctionOutcome {
    /// Tonnes offered.
    pub offered: u32,
    /// Tonnes sold.
    pub sold: u32,
    /// The price (yuan): uniform, the lowest winning bid; pay-as-bid, the
    /// weighted average of the winning prices; `null` if nothing sold.
    pub price: Option<String>,
    /// Turnover (yuan, two decimals).
    pub turnover_yuan: String,
    /// Winning bids.
    pub winners: u32,
    /// Bids live at the end.
    pub bids: u32,
}

/// One bid of an ended auction, in allocation order.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RankedBidView {
    /// 1 for the first bid served.
    pub rank: usize,
    /// The bid's order id.
    pub order: u64,
    /// The bidder's username.
    pub user: String,
    /// The bidder's account.
    pub account: String,
    /// The bid price (yuan).
    pub price: String,
    /// Tonnes bid.
    pub entered: u32,
    /// Tonnes withdrawn before the end.
    pub withdrawn: u32,
    /// Tonnes won.
    pub filled: u32,
    /// The price paid (yuan), `null` if nothing was won.
    pub paid: Option<String>,
}

/// An auction: the announcement, and (in lists and `GET /auction/{id}`)
/// its status, live bids and result. The public list leaves out the
/// seller, its user and order and the live bid count.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuctionView {
    /// The auction id.
    pub id: String,
    /// The instrument.
    pub stock: String,
    /// The selling account (not public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller: Option<String>,
    /// The username receiving the seller's fills (not public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Tonnes offered.
    pub qty: u32,
    /// Window start, `HH:MM:SS` Beijing time.
    pub start: String,
    /// Window end, `HH:MM:SS` Beijing time.
    pub end: String,
    /// Window start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Window end, nanoseconds since the Unix epoch.
    pub end_ns: u64,
    /// How winners pay.
    pub pricing: AuctionPricing,
    /// The floor rule.
    pub floor_rule: AuctionFloor,
    /// The floor price (yuan).
    pub floor: String,
    /// The cap price (yuan).
    pub cap: String,
    /// The seller's order id (not public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_order: Option<u64>,
    /// Where it stands (not in the announcement's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AuctionStatus>,
    /// Bids live now (not public, not in the announcement's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_bids: Option<usize>,
    /// The allocation, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AuctionOutcome>,
    /// The bids in allocation order (`GET /auction/{id}` once ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranked_bids: Option<Vec<RankedBidView>>,
}

/// `GET /auctions` and `GET /public/auctions`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuctionList {
    /// Today's auctions.
    pub auctions: Vec<AuctionView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_names_on_the_wire() {
        for pricing in [AuctionPricing::Uniform, AuctionPricing::PayAsBid] {
            assert_eq!(serde_json::to_value(pricing).unwrap(), pricing.name());
        }
        for status in [AuctionStatus::Scheduled, AuctionStatus::Open, AuctionStatus::Ended, AuctionStatus::Expired] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.name());
        }
    }
}

/// `POST /instrument`'s body: list a new instrument from the next trading day.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ListRequest {
    /// The new code (1 to 8 ASCII letters or digits, `CEA26`).
    pub code: String,
    /// The reference of its first trading day, yuan (`"74.63"`).
    pub prev_close: String,
}

/// `POST /instrument` and `POST /instrument/{code}/delist`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReferenceDataAnswer {
    /// The instrument.
    pub instrument: String,
    /// `list` or `delist`.
    pub change: String,
    /// A listing's previous close (yuan); absent for a delisting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_close: Option<String>,
    /// When it takes effect: always `"next roll"` (RULES §1.3).
    pub effective: String,
}

/// `GET /cluster`: one node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterView {
    /// This node's id.
    pub node: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// Raft's current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The last log index known committed (as saved by this node).
    pub commit_index: u64,
    /// The last log index applied to the engine.
    pub applied_index: u64,
    /// The engine's state hash after `applied_index`, `0x` and 16 hex digits.
    pub state_hash: String,
    /// The membership.
    pub members: Vec<MemberView>,
}

/// One member in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberView {
    /// Node id.
    pub id: u64,
    /// Raft address.
    pub raft: String,
    /// Order-entry address.
    pub order_entry: String,
    /// Admin address.
    pub admin: String,
}

/// `POST /cluster/add`: a new voting member (it must be running, with
/// `[cluster]` naming itself; it catches up as a learner first).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct AddMemberRequest {
    /// Its node id.
    pub id: u64,
    /// Its Raft address.
    pub raft: String,
    /// Its order-entry address.
    pub order_entry: String,
    /// Its admin address.
    pub admin: String,
}

/// `POST /cluster/add` and `POST /cluster/remove/{id}`: the voters after the change.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct MembershipAnswer {
    /// The voting members' ids.
    pub voters: Vec<u64>,
}
