//! The admin endpoint's JSON bodies, paths and query, and the parsers
//! behind them (amounts, auction window times, instrument and auction ids).

use super::byte;
use crate::admin::api::{AnnounceRequest, BookQuery, TransferRequest};
use crate::admin::auction::parse_when;
use crate::admin::{fen_text, parse_amount};
use axum::extract::Query;
use axum::http::Uri;
use carbonx_engine::{Asset, AuctionId, InstrumentId, StockCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// 2026-11-24 10:00 Beijing time, in ns since the epoch.
const NOW: u64 = 1_795_917_600_000_000_000;
const DAY_S: u64 = 86_400;
const BEIJING_OFFSET_S: u64 = 8 * 3600;

/// The first byte picks what the rest is: a `POST /transfer` body, a
/// `POST /auction` body, a path with its query, or one field's text.
pub fn admin_request(data: &[u8]) {
    let mut data = data;
    match byte(&mut data) % 4 {
        0 => {
            if let Some(body) = json_round_trip::<TransferRequest>(data) {
                amount(&body.amount);
            }
        }
        1 => {
            if let Some(body) = json_round_trip::<AnnounceRequest>(data) {
                [&body.id, &body.stock, &body.start, &body.end].into_iter().for_each(|t| field(t));
            }
        }
        2 => path(&String::from_utf8_lossy(data)),
        _ => field(&String::from_utf8_lossy(data)),
    }
}

/// A JSON body as the endpoint's extractor reads it; what parses
/// serialises back to JSON that parses to the same value.
fn json_round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let body: T = serde_json::from_slice(data).ok()?;
    let again = serde_json::to_vec(&body).expect("a body serialises");
    assert_eq!(serde_json::from_slice::<T>(&again).expect("its own JSON parses"), body);
    Some(body)
}

/// A request target: its query as `GET /book/{stock}` reads it, each path
/// segment as an instrument, account or auction id would be.
fn path(text: &str) {
    let Ok(uri) = Uri::try_from(format!("/{}", text.trim_start_matches('/'))) else { return };
    if let Ok(Query(query)) = Query::<BookQuery>::try_from_uri(&uri) {
        let levels = query.levels.unwrap_or(10).clamp(1, crate::admin::BOOK_LEVELS_MAX);
        assert!((1..=crate::admin::BOOK_LEVELS_MAX).contains(&levels));
    }
    uri.path().split('/').for_each(field);
}

/// One text field through every parser a path segment or body field meets.
fn field(text: &str) {
    if let Some(code) = StockCode::from_text(text) {
        assert_eq!(code.as_str(), text);
    }
    if let Some(id) = AuctionId::from_text(text) {
        assert_eq!(AuctionId::from_text(&id.to_string()), Some(id));
    }
    amount(text);
    window_time(text);
}

/// An amount parses for cash and for tonnes only when it shows the same way back.
fn amount(text: &str) {
    if let Some(fen) = parse_amount(Asset::Cash, text) {
        assert_ne!(fen, 0);
        assert_eq!(parse_amount(Asset::Cash, &fen_text(i128::from(fen))), Some(fen), "{text:?}");
    }
    if let Some(tonnes) = parse_amount(Asset::Holding(InstrumentId::new(0)), text) {
        assert_ne!(tonnes, 0);
        assert_eq!(parse_amount(Asset::Holding(InstrumentId::new(0)), &tonnes.to_string()), Some(tonnes));
    }
}

/// A relative time is never before now; a time of day is on now's Beijing date.
fn window_time(text: &str) {
    for now in [NOW, 0, u64::MAX] {
        let Some(at) = parse_when(text, now) else { continue };
        if text.starts_with('+') {
            assert!(at >= now, "{text:?}");
        } else if text != "now" {
            let day = |ns: u64| (ns / 1_000_000_000 + BEIJING_OFFSET_S) / DAY_S;
            assert_eq!(day(at), day(now), "{text:?}");
        }
    }
}
