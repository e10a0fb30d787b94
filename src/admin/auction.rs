//! The operator's one-way bidding auctions (RULES §2.4) on
//! the admin endpoint ([`crate::admin`]).
//!
//! | route | does |
//! |---|---|
//! | `POST /auction` | announce: [`AnnounceRequest`]; journaled, locks the seller's tonnes |
//! | `GET /auctions` | today's auctions: window, status, live bids, result |
//! | `GET /auction/{id}` | one auction; after its end also the ranked bids and the allocation |
//! | `GET /public/auctions` | no token: the announcements and results, what the exchange publishes (no bid counts) |
//!
//! Window times are the operator's words: `now`, `+90s`, `+10m`, `+1h`
//! (from the server's clock), or `HH:MM` or `HH:MM:SS` Beijing time today. Bids
//! are sealed: while an auction is open its bids are only counted, never
//! listed (the exchange publishes them only as the allocation).

use crate::admin::api::{
    AnnounceRequest, AuctionFloor, AuctionList, AuctionOutcome, AuctionPricing, AuctionStatus, AuctionView,
    RankedBidView,
};
use crate::admin::{AdminState, Answer, fen_text, refuse, to_answer};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use carbonx_engine::{
    AnnounceAuction, AuctionId, AuctionInfo, AuctionRefusal, AuctionResult, Command, Engine, Event, FloorRule, Pricing,
    RankedBid, Timestamp,
};
use std::sync::Arc;

/// Beijing time is UTC+8 all year.
const BEIJING_OFFSET_S: u64 = 8 * 3600;
const SECOND_NS: u64 = 1_000_000_000;

pub(crate) async fn announce(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Json(body): Json<AnnounceRequest>,
) -> Answer {
    s.authorize(&headers)?;
    let command = announcement(&s, &body, system_now()).await?;
    let id = command.id;
    let events = s.execute(Command::AnnounceAuction(command)).await?;
    for event in &events {
        match event {
            Event::AuctionAnnounced(info) if info.id == id => return to_answer(&describe(&s, info)),
            Event::AuctionRefused { id: refused, reason } if *refused == id => {
                return Err(refuse(StatusCode::CONFLICT, format!("auction {id} refused: {}", refusal_text(*reason))));
            }
            _ => {}
        }
    }
    Err(refuse(StatusCode::SERVICE_UNAVAILABLE, format!("no answer to the announcement of {id}")))
}

/// The engine command for `body`, every name resolved.
async fn announcement(
    s: &AdminState,
    body: &AnnounceRequest,
    now: u64,
) -> Result<AnnounceAuction, crate::admin::Refusal> {
    let bad = |message: String| refuse(StatusCode::BAD_REQUEST, message);
    let id = AuctionId::from_text(&body.id)
        .ok_or_else(|| bad(format!("auction id {:?}: 1 to 8 printable characters, no spaces", body.id)))?;
    let (_, stock) = s.instrument(&body.stock).await?;
    let seller = s.account(&body.seller)?;
    let seller_user = s.user(&body.user)?;
    let when = |text: &str| {
        parse_when(text, now)
            .map(Timestamp::from_nanos)
            .ok_or_else(|| bad(format!("time {text:?}: expected now, +90s, +10m, +1h or HH:MM[:SS] Beijing time")))
    };
    let pricing = match body.pricing.as_str() {
        "uniform" => Pricing::Uniform,
        "pay-as-bid" => Pricing::PayAsBid,
        other => return Err(bad(format!("pricing {other:?}: expected uniform or pay-as-bid"))),
    };
    let floor = match body.floor.as_str() {
        "close" => FloorRule::PreviousClose,
        "minus10" => FloorRule::PreviousCloseMinus10,
        other => return Err(bad(format!("floor {other:?}: expected close or minus10"))),
    };
    let qty = carbonx_engine::Qty::new(body.qty);
    let (start, end) = (when(&body.start)?, when(&body.end)?);
    Ok(AnnounceAuction { id, stock, seller, seller_user, qty, start, end, pricing, floor })
}

pub(crate) async fn list(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Answer {
    s.authorize(&headers)?;
    let auctions = s.inspect(todays_auctions).await?;
    let now = system_now();
    let auctions = auctions.iter().map(|(info, bids, result)| summary(&s, info, *bids, result.as_ref(), now)).collect();
    to_answer(&AuctionList { auctions })
}

/// `GET /public/auctions`: what the exchange publishes of each auction
/// (the announcement, the status, the result), for `carbonx watch` and
/// anyone without the admin token. Live bid counts stay private.
pub(crate) async fn public_list(State(s): State<Arc<AdminState>>) -> Answer {
    let mut cached = s.public_auctions.lock().await;
    if let Some((read_at, body)) = cached.as_ref()
        && read_at.elapsed() < crate::admin::endpoint::PUBLIC_CACHE_TTL
    {
        return Ok(axum::Json(body.clone()));
    }
    let axum::Json(body) = read_public(&s).await?;
    *cached = Some((std::time::Instant::now(), body.clone()));
    Ok(axum::Json(body))
}

/// Reads the public auction list from the engine (through the operator queue).
async fn read_public(s: &AdminState) -> Answer {
    let auctions = s.inspect(todays_auctions).await?;
    let now = system_now();
    let auctions = auctions
        .iter()
        .map(|(info, _, result)| AuctionView {
            live_bids: None,
            seller: None,
            user: None,
            seller_order: None,
            ..summary(s, info, 0, result.as_ref(), now)
        })
        .collect();
    to_answer(&AuctionList { auctions })
}

/// Every auction today with its live bid count and its result if ended.
fn todays_auctions(engine: &Engine) -> Vec<(AuctionInfo, usize, Option<AuctionResult>)> {
    engine.auctions().map(|(info, _, bids)| (info, bids, engine.auction_result(info.id))).collect()
}

pub(crate) async fn show(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    s.authorize(&headers)?;
    let unknown = || refuse(StatusCode::NOT_FOUND, format!("no auction {id} today"));
    let key = AuctionId::from_text(&id).ok_or_else(unknown)?;
    let found = s
        .inspect(move |engine| {
            let live = engine.auctions().find(|(info, _, _)| info.id == key).map(|(_, _, bids)| bids)?;
            let info = engine.auction(key)?;
            Some((info, live, engine.auction_result(key), engine.ranked_bids(key).collect::<Vec<_>>()))
        })
        .await?;
    let (info, live, result, ranked) = found.ok_or_else(unknown)?;
    let mut view = summary(&s, &info, live, result.as_ref(), system_now());
    if result.is_some() {
        view.ranked_bids = Some(ranked.iter().enumerate().map(|(rank, b)| ranked_bid(&s, rank + 1, b)).collect());
    }
    to_answer(&view)
}

/// An auction as announced: names, window, pricing, floor and cap.
fn describe(s: &AdminState, info: &AuctionInfo) -> AuctionView {
    AuctionView {
        id: info.id.to_string(),
        stock: s.stock_name(info.instrument),
        seller: Some(s.account_code(info.seller)),
        user: Some(s.user_name(info.seller_user)),
        qty: info.qty.tonnes(),
        start: beijing_time(info.start),
        end: beijing_time(info.end),
        start_ns: info.start.nanos(),
        end_ns: info.end.nanos(),
        pricing: pricing_name(info.pricing),
        floor_rule: match info.floor_rule {
            FloorRule::PreviousClose => AuctionFloor::PreviousClose,
            FloorRule::PreviousCloseMinus10 => AuctionFloor::PreviousCloseMinus10,
        },
        floor: info.floor.to_string(),
        cap: info.cap.to_string(),
        seller_order: Some(info.order_id.get()),
        status: None,
        live_bids: None,
        result: None,
        ranked_bids: None,
    }
}

/// [`describe`] plus the status, the live bid count and the result.
fn summary(s: &AdminState, info: &AuctionInfo, live: usize, result: Option<&AuctionResult>, now: u64) -> AuctionView {
    let status = match result {
        Some(r) if r.expired => AuctionStatus::Expired,
        Some(_) => AuctionStatus::Ended,
        None if now < info.start.nanos() => AuctionStatus::Scheduled,
        None => AuctionStatus::Open,
    };
    let result = result.map(|r| AuctionOutcome {
        offered: r.offered.tonnes(),
        sold: r.sold.tonnes(),
        price: r.price.map(|p| p.to_string()),
        turnover_yuan: fen_text(i128::try_from(r.turnover).unwrap_or(i128::MAX)),
        winners: r.winners,
        bids: r.bids,
    });
    AuctionView { status: Some(status), live_bids: Some(live), result, ..describe(s, info) }
}

fn ranked_bid(s: &AdminState, rank: usize, b: &RankedBid) -> RankedBidView {
    RankedBidView {
        rank,
        order: b.id.get(),
        user: s.user_name(b.user),
        account: s.account_code(b.account),
        price: b.price.to_string(),
        entered: b.entered.tonnes(),
        withdrawn: b.withdrawn.tonnes(),
        filled: b.filled.tonnes(),
        paid: b.paid.map(|p| p.to_string()),
    }
}

fn pricing_name(pricing: Pricing) -> AuctionPricing {
    match pricing {
        Pricing::Uniform => AuctionPricing::Uniform,
        Pricing::PayAsBid => AuctionPricing::PayAsBid,
    }
}

fn refusal_text(reason: AuctionRefusal) -> &'static str {
    match reason {
        AuctionRefusal::UnknownStock => "unknown instrument",
        AuctionRefusal::UnknownAccount => "unknown seller account",
        AuctionRefusal::InvalidQty => "quantity below the auction minimum",
        AuctionRefusal::Holdings => "the seller lacks that many sellable tonnes",
        AuctionRefusal::BadWindow => "the window must end after it starts and after now",
        AuctionRefusal::DuplicateId => "the id was already used today",
        AuctionRefusal::Closed => "the trading day is closed",
        AuctionRefusal::CapacityFull => "today's auctions are used up (auctions_max)",
    }
}

/// The server's clock in nanoseconds since the Unix epoch.
fn system_now() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// `now`, `+90s`, `+10m`, `+1h` (from `now_ns`) or `HH:MM[:SS]` Beijing
/// time on `now_ns`'s Beijing date, as nanoseconds since the epoch.
/// `None` for anything else, or a time before the epoch or past `u64`
/// nanoseconds; never panics, whatever the text (it comes from a request).
pub fn parse_when(text: &str, now_ns: u64) -> Option<u64> {
    if text == "now" {
        return Some(now_ns);
    }
    if let Some(relative) = text.strip_prefix('+') {
        // The one duration syntax of every flag (`crate::config::parse_duration`).
        let after =
            crate::config::parse_duration(relative).ok().filter(|_| !relative.starts_with(char::is_whitespace))?;
        return now_ns.checked_add(u64::try_from(after.as_nanos()).ok()?);
    }
    let parts: Vec<u64> = text.split(':').map(|p| decimal(p).filter(|_| p.len() == 2)).collect::<Option<_>>()?;
    let (h, m, sec) = match parts[..] {
        [h, m] => (h, m, 0),
        [h, m, sec] => (h, m, sec),
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let local_day = (now_ns / SECOND_NS + BEIJING_OFFSET_S) / 86_400;
    let local = local_day.checked_mul(86_400)?.checked_add(h * 3600 + m * 60 + sec)?;
    local.checked_sub(BEIJING_OFFSET_S)?.checked_mul(SECOND_NS)
}

/// A non-empty run of ASCII digits as a number (no sign, no spaces).
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `HH:MM:SS` Beijing time.
fn beijing_time(at: Timestamp) -> String {
    let local = (at.nanos() / SECOND_NS + BEIJING_OFFSET_S) % 86_400;
    format!("{:02}:{:02}:{:02}", local / 3600, local / 60 % 60, local % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 10:00:00 Beijing.
    const NOW: u64 = (1_795_478_400 - 8 * 3600 + 10 * 3600) * SECOND_NS;

    #[test]
    fn window_times_parse_in_the_operators_words() {
        assert_eq!(parse_when("now", NOW), Some(NOW));
        assert_eq!(parse_when("+90s", NOW), Some(NOW + 90 * SECOND_NS));
        assert_eq!(parse_when("+10m", NOW), Some(NOW + 600 * SECOND_NS));
        assert_eq!(parse_when("+1h", NOW), Some(NOW + 3600 * SECOND_NS));
        // The one duration syntax of every flag: units combine, milliseconds and days too.
        assert_eq!(parse_when("+1m30s", NOW), Some(NOW + 90 * SECOND_NS));
        assert_eq!(parse_when("+500ms", NOW), Some(NOW + SECOND_NS / 2));
        assert_eq!(parse_when("+1d", NOW), Some(NOW + 86_400 * SECOND_NS));
        assert_eq!(parse_when("10:30", NOW), Some(NOW + 1800 * SECOND_NS));
        assert_eq!(parse_when("09:59:30", NOW), Some(NOW - 30 * SECOND_NS));
        assert_eq!(beijing_time(Timestamp::from_nanos(NOW + 61 * SECOND_NS)), "10:01:01");
        for bad in
            ["", "+", "+5", "+ 5s", "+-5s", "24:00", "10:60", "9:30", "10:00:00:00", "soon", "+99999999999999999h"]
        {
            assert_eq!(parse_when(bad, NOW), None, "{bad}");
        }
    }

    #[test]
    fn window_times_with_multibyte_characters_are_refused_not_a_panic() {
        for bad in ["+é", "+5é", "+\u{1F600}", "é", "1é:00", "+1:30", "10:+1", "é:éé"] {
            assert_eq!(parse_when(bad, NOW), None, "{bad}");
        }
        // Before 08:00 UTC on the first day of the epoch, and at the end of time.
        assert_eq!(parse_when("00:00", 0), None);
        assert_eq!(parse_when("23:59", u64::MAX), None);
        assert_eq!(parse_when("+1h", u64::MAX), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_when_never_panics(text in "\\PC{0,12}", now in proptest::prelude::any::<u64>()) {
            let _ = parse_when(&text, now);
        }

        #[test]
        fn parse_when_never_panics_on_near_misses(
            text in "[+0-9:smhé\u{1F600}now]{0,10}",
            now in proptest::prelude::any::<u64>(),
        ) {
            let _ = parse_when(&text, now);
        }
    }
}
