//! Reference data without a restart (RULES §1.3) on the admin endpoint
//! ([`crate::admin`]): listing and delisting instruments, each a journaled
//! command that takes effect at the next roll.
//!
//! | route | does |
//! |---|---|
//! | `POST /instrument` | list: [`ListRequest`]; from the next trading day the directory (ITCH `R`, `J`) carries it and every account holds 0 t |
//! | `POST /instrument/{code}/delist` | delist: from the next trading day new orders are rejected `S` |

use crate::admin::api::{ListRequest, ReferenceDataAnswer};
use crate::admin::{AdminState, Answer, refuse, to_answer};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use carbonx_engine::{Command, Delisting, Event, Listing, Price, StockCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) async fn list(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Json(body): Json<ListRequest>,
) -> Answer {
    s.authorize(&headers)?;
    let stock = code(&body.code)?;
    let prev_close = Price::parse_yuan(&body.prev_close).ok_or_else(|| {
        let why = "expected yuan between 0.01 and 9999.99 on the 0.01 tick";
        refuse(StatusCode::BAD_REQUEST, format!("prev_close {:?}: {why}", body.prev_close))
    })?;
    let request = s.next_request.fetch_add(1, Ordering::Relaxed);
    let events = s.execute(Command::List(Listing { request, stock, prev_close })).await?;
    answer(&events, request, "list", Some(prev_close.to_string()))
}

pub(crate) async fn delist(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(code_text): Path<String>,
) -> Answer {
    s.authorize(&headers)?;
    let stock = code(&code_text)?;
    let request = s.next_request.fetch_add(1, Ordering::Relaxed);
    let events = s.execute(Command::Delist(Delisting { request, stock })).await?;
    answer(&events, request, "delist", None)
}

fn code(text: &str) -> Result<StockCode, crate::admin::Refusal> {
    StockCode::from_text(text).filter(|c| c.to_string() == text).ok_or_else(|| {
        refuse(StatusCode::BAD_REQUEST, format!("instrument code {text:?}: 1 to 8 ASCII letters or digits"))
    })
}

/// The engine's answer to request `request`: scheduled (200) or refused (409).
fn answer(events: &[Event], request: u64, change: &str, prev_close: Option<String>) -> Answer {
    let outcome = events.iter().find_map(|e| match e {
        Event::ReferenceData { request: r, stock, refusal, .. } if *r == request => Some((*stock, *refusal)),
        _ => None,
    });
    match outcome {
        Some((stock, None)) => to_answer(&ReferenceDataAnswer {
            instrument: stock.to_string(),
            change: change.to_string(),
            prev_close,
            effective: "next roll".to_string(),
        }),
        Some((stock, Some(refusal))) => {
            Err(refuse(StatusCode::CONFLICT, format!("{change} {stock} refused: {}", refusal.reason())))
        }
        None => Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "the engine did not answer the request")),
    }
}
