//! The operator's endpoint: HTTP with JSON on loopback (default
//! 127.0.0.1:7010), used by `carbonx admin` ([`crate::admin::client`]).
//! Its connections, their caps, timeouts and TLS are
//! [`crate::admin::listener`]'s; this file is the routes.
//!
//! Every state change is a journaled command sent into the one sequenced
//! stream ([`OperatorRequest::Command`]); the answer is built from the
//! events that command produced, after they are durable and published, so
//! that a reply of "halted" means the halt is in the journal and on the
//! feed. Reads (the book, the sessions) never change state and are not
//! journaled.
//!
//! Every route except `GET /metrics`, `GET /public/auctions`, `GET /healthz`
//! and `GET /readyz` needs `Authorization: Bearer <token>`
//! (`[admin] token`). Refusals are JSON `{"error": "..."}` with a 4xx
//! status: 401 (token), 404 (unknown instrument, account or user), 409 (a
//! valid request the market refuses: already halted, not enough to
//! withdraw, not connected), 503 (the engine's queue is full or stopped).
//!
//! | route | does |
//! |---|---|
//! | `POST /halt/{stock}`, `POST /resume/{stock}` | trading halt and resume |
//! | `POST /kill/{account}` | kill switch: cancel every live order and block of the account (`S`) |
//! | `POST /roll` | end-of-day roll (the only day end in always-open mode) |
//! | `POST /snapshot` | write an on-demand snapshot of the whole state (`DATA/snapshots/now-...`) |
//! | `POST /transfer` | deposit or withdraw cash or allowances: `{"account","asset","amount"}` |
//! | `GET /sessions` | every username: connected, next sequence number |
//! | `POST /disconnect/{user}` | ends a username's connection |
//! | `GET /book/{stock}?levels=10` | the top levels of a book, from the engine |
//! | `GET /metrics` | Prometheus text ([`crate::serve::metrics`]) |
//! | `GET /healthz` | 200 while the process answers (liveness) |
//! | `GET /readyz` | 200 once the journal is recovered and every listener is open, 503 before that and during shutdown (readiness) |
//! | `POST /auction`, `GET /auctions`, `GET /auction/{id}` | one-way bidding auctions ([`crate::admin::auction`]) |

use crate::admin::api::{
    BookAnswer, BookLevel, BookQuery, DayStatistics, DisconnectAnswer, InstrumentState, KillAnswer, Refused,
    RollAnswer, SessionRow, SessionsAnswer, SnapshotAnswer, TradingStateAnswer, TransferAnswer, TransferRequest,
};
use crate::serve::metrics::Metrics;
use crate::serve::sequencer::OperatorRequest;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carbonx_engine::accounts::parse_yuan_to_fen;
use carbonx_engine::{
    AccountId, Asset, CancelReason, Command, Engine, Event, InstrumentId, Side, StockCode, TradingState, Transfer,
    UserId,
};
use carbonx_gateway::hub::Hub;
use crossbeam::channel::{Sender, TrySendError};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Operator requests queued for the engine thread at most.
pub const OPERATOR_QUEUE_MAX: usize = 64;
/// How long a request waits for the engine thread's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most levels `GET /book` shows per side.
pub const BOOK_LEVELS_MAX: usize = 100;

/// What the handlers share.
pub struct AdminState {
    token: String,
    operator: Sender<OperatorRequest>,
    hub: Arc<Hub>,
    /// The directory as last read: an instrument listed at a roll (RULES
    /// §1.3) is read from the engine the first time it is named.
    stocks: std::sync::RwLock<Vec<StockCode>>,
    metrics: Arc<Metrics>,
    pub(crate) next_request: AtomicU64,
    /// True once the server has recovered and opened every listener, false
    /// again when it shuts down (`GET /readyz`).
    ready: Arc<AtomicBool>,
    /// The last `GET /public/auctions` answer and when it was read: public
    /// reads need no token, so a flood of them must not fill the operator
    /// queue the kill switch uses. The async lock makes them single-flight:
    /// at most one public read waits in the queue at any time.
    pub(crate) public_auctions: tokio::sync::Mutex<Option<(std::time::Instant, Value)>>,
    /// The Raft node, when the server runs with `[cluster]`.
    pub(crate) cluster: Option<Arc<crate::cluster::node::ClusterNode>>,
}

/// How long a `GET /public/auctions` answer is served from the cache.
pub const PUBLIC_CACHE_TTL: Duration = Duration::from_millis(500);
/// Largest request body the endpoint reads (a transfer or an auction is a few hundred bytes).
pub const BODY_MAX: usize = 64 * 1024;

/// A refusal: status and message.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(Refused { error: self.1 })).into_response()
    }
}

/// An answer as the endpoint sends it: through a [`Value`], whose keys are
/// in alphabetical order whatever the order of the type's fields.
pub(crate) fn to_answer(body: &impl Serialize) -> Answer {
    serde_json::to_value(body)
        .map(Json)
        .map_err(|err| refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("answer not serializable: {err}")))
}

pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

pub(crate) type Answer = Result<Json<Value>, Refusal>;

impl AdminState {
    /// The state over the engine thread's operator queue and the gateway's sessions.
    pub fn new(
        token: String,
        operator: Sender<OperatorRequest>,
        hub: Arc<Hub>,
        stocks: Vec<StockCode>,
        metrics: Arc<Metrics>,
    ) -> AdminState {
        let ready = Arc::new(AtomicBool::new(false));
        let stocks = std::sync::RwLock::new(stocks);
        let public_auctions = tokio::sync::Mutex::new(None);
        let next_request = AtomicU64::new(1);
        AdminState { token, operator, hub, stocks, metrics, next_request, ready, public_auctions, cluster: None }
    }

    /// Serves the cluster's routes over `node` ([`crate::admin::cluster`]).
    pub fn with_cluster(mut self, node: Arc<crate::cluster::node::ClusterNode>) -> AdminState {
        self.cluster = Some(node);
        self
    }

    /// The readiness flag `GET /readyz` reports: the server sets it once it
    /// listens and clears it when it shuts down.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Constant time: the answer's timing tells nothing about the token.
        if given.is_some_and(|given| carbonx_soup::secret::tokens_equal(&self.token, given)) {
            Ok(())
        } else {
            Err(refuse(StatusCode::UNAUTHORIZED, "missing or wrong admin token (Authorization: Bearer <token>)"))
        }
    }

    pub(crate) async fn instrument(&self, stock: &str) -> Result<(InstrumentId, StockCode), Refusal> {
        let unknown = || refuse(StatusCode::NOT_FOUND, format!("no instrument {stock}"));
        let code = StockCode::from_text(stock).ok_or_else(unknown)?;
        let known = |stocks: &[StockCode]| stocks.iter().position(|s| *s == code);
        let mut index = known(&self.stocks.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        if index.is_none() {
            let current = self.inspect(|engine| engine.instruments().to_vec()).await?;
            index = known(&current);
            *self.stocks.write().unwrap_or_else(std::sync::PoisonError::into_inner) = current;
        }
        let index = index.ok_or_else(unknown)?;
        Ok((InstrumentId::new(u8::try_from(index).map_err(|_| unknown())?), code))
    }

    pub(crate) fn account(&self, code: &str) -> Result<AccountId, Refusal> {
        let bytes: Option<[u8; 4]> = code.as_bytes().try_into().ok();
        bytes
            .and_then(|b| self.hub.directory.accounts.get(&b).copied())
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, format!("no account {code}")))
    }

    /// The user named `name` (`DEMO01`).
    pub(crate) fn user(&self, name: &str) -> Result<UserId, Refusal> {
        let users = &self.hub.directory.users;
        let found = users.iter().find(|u| String::from_utf8_lossy(&u.name).trim_end() == name);
        found.map(|u| u.id).ok_or_else(|| refuse(StatusCode::NOT_FOUND, format!("no user {name}")))
    }

    /// A user's name, or `#n` if unknown.
    pub(crate) fn user_name(&self, id: UserId) -> String {
        self.hub
            .directory
            .user(id)
            .map_or_else(|| format!("#{}", id.get()), |u| String::from_utf8_lossy(&u.name).trim_end().to_string())
    }

    /// An account's code (`0001`; `????` if unknown).
    pub(crate) fn account_code(&self, id: AccountId) -> String {
        String::from_utf8_lossy(&self.hub.directory.code(id)).into_owned()
    }

    /// An instrument's code.
    pub(crate) fn stock_name(&self, id: InstrumentId) -> String {
        let stocks = self.stocks.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        stocks.get(id.index()).map_or_else(|| format!("#{}", id.index()), ToString::to_string)
    }

    /// Journals and applies `command`; its events once durable.
    pub(crate) async fn execute(&self, command: Command) -> Result<Vec<Event>, Refusal> {
        if let Some(node) = self.cluster.as_ref().filter(|node| !node.is_leading()) {
            let leader =
                node.leader_admin().map_or_else(|| "none known yet".to_string(), |admin| format!("at {admin}"));
            let why = format!("this cluster node does not lead: send commands to the leader ({leader})");
            return Err(refuse(StatusCode::CONFLICT, why));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(OperatorRequest::Command(command, reply))?;
        wait(answer).await
    }

    /// Runs `read` on the engine thread between two batches.
    pub(crate) async fn inspect<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(OperatorRequest::Inspect(Box::new(move |engine| {
            let _ = reply.send(read(engine));
        })))?;
        wait(answer).await
    }

    fn submit(&self, request: OperatorRequest) -> Result<(), Refusal> {
        self.operator.try_send(request).map_err(|err| match err {
            TrySendError::Full(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the engine's operator queue is full"),
            TrySendError::Disconnected(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped"),
        })
    }
}

async fn wait<T>(answer: tokio::sync::oneshot::Receiver<T>) -> Result<T, Refusal> {
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped")),
        Err(_) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "no answer from the engine in time")),
    }
}

/// The routes over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/halt/{stock}", post(halt))
        .route("/resume/{stock}", post(resume))
        .route("/kill/{account}", post(kill))
        .route("/roll", post(roll))
        .route("/snapshot", post(snapshot))
        .route("/transfer", post(transfer))
        .route("/sessions", get(sessions))
        .route("/disconnect/{user}", post(disconnect))
        .route("/book/{stock}", get(book))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/auction", post(crate::admin::auction::announce))
        .route("/auctions", get(crate::admin::auction::list))
        .route("/auction/{id}", get(crate::admin::auction::show))
        .route("/public/auctions", get(crate::admin::auction::public_list))
        .route("/cluster", get(crate::admin::cluster::view))
        .route("/cluster/add", post(crate::admin::cluster::add))
        .route("/cluster/remove/{id}", post(crate::admin::cluster::remove))
        .route("/instrument", post(crate::admin::instrument::list))
        .route("/instrument/{code}/delist", post(crate::admin::instrument::delist))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such admin route; see `carbonx admin --help`") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_MAX))
        .with_state(state)
}

/// Liveness: the process answers HTTP.
async fn healthz() -> (StatusCode, &'static str) {
    (StatusCode::OK, "alive\n")
}

/// Readiness: recovered and listening.
async fn readyz(State(s): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    readiness(s.ready.load(Ordering::Acquire))
}

fn readiness(listening: bool) -> (StatusCode, &'static str) {
    if listening {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: starting or shutting down\n")
    }
}

async fn halt(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(stock): Path<String>) -> Answer {
    set_halted(&s, &headers, &stock, Halting::Halt).await
}

async fn resume(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(stock): Path<String>) -> Answer {
    set_halted(&s, &headers, &stock, Halting::Resume).await
}

/// A halt or a resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Halting {
    /// Stop trading an instrument.
    Halt,
    /// Trade it again.
    Resume,
}

async fn set_halted(s: &AdminState, headers: &HeaderMap, stock: &str, halting: Halting) -> Answer {
    s.authorize(headers)?;
    let (instrument, code) = s.instrument(stock).await?;
    let command = match halting {
        Halting::Halt => Command::Halt(instrument),
        Halting::Resume => Command::Resume(instrument),
    };
    let events = s.execute(command).await?;
    let state = events.iter().find_map(|e| match e {
        Event::TradingState { instrument: i, state } if *i == instrument => Some(*state),
        _ => None,
    });
    match state {
        Some(state) => to_answer(&TradingStateAnswer { instrument: code.to_string(), state: state_name(state) }),
        None if halting == Halting::Halt => {
            Err(refuse(StatusCode::CONFLICT, format!("{code} is already halted (or the market is closed)")))
        }
        None => Err(refuse(StatusCode::CONFLICT, format!("{code} is not halted (or the market is closed)"))),
    }
}

fn state_name(state: TradingState) -> InstrumentState {
    match state {
        TradingState::Trading => InstrumentState::Trading,
        TradingState::Paused => InstrumentState::Paused,
        TradingState::Halted => InstrumentState::Halted,
    }
}

async fn kill(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(account): Path<String>) -> Answer {
    s.authorize(&headers)?;
    let id = s.account(&account)?;
    let events = s.execute(Command::CancelAccount(id)).await?;
    let cancelled =
        events.iter().filter(|e| matches!(e, Event::Cancelled { reason: CancelReason::Supervisory, .. })).count();
    to_answer(&KillAnswer { account, cancelled })
}

async fn roll(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Answer {
    s.authorize(&headers)?;
    // RULES §4.3: in calendar mode the clock rolls the day at `roll_at`.
    if s.inspect(|engine| engine.config().session).await? == carbonx_engine::SessionMode::Calendar {
        return Err(refuse(
            StatusCode::CONFLICT,
            "the market runs the calendar (session = \"calendar\"): the day rolls by itself at \
             market.roll_at; `carbonx admin roll` is the day end of always-open mode only",
        ));
    }
    let events = s.execute(Command::Roll).await?;
    let statistics: Vec<DayStatistics> = events
        .iter()
        .filter_map(|e| match e {
            Event::DailyStats(d) => Some(DayStatistics {
                instrument: s.stock_name(d.instrument),
                method: d.method.name().to_string(),
                close: d.close.to_string(),
                volume: d.volume,
                turnover_yuan: fen_text(i128::try_from(d.turnover).unwrap_or(i128::MAX)),
            }),
            _ => None,
        })
        .collect();
    let session_date = s.inspect(Engine::session_date).await?;
    to_answer(&RollAnswer { rolled: true, session_date, statistics })
}

async fn snapshot(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Answer {
    s.authorize(&headers)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    s.submit(OperatorRequest::Snapshot(reply))?;
    match wait(answer).await? {
        Ok(path) => to_answer(&SnapshotAnswer { snapshot: path.display().to_string() }),
        Err(reason) => Err(refuse(StatusCode::CONFLICT, format!("no snapshot: {reason}"))),
    }
}

async fn transfer(State(s): State<Arc<AdminState>>, headers: HeaderMap, Json(body): Json<TransferRequest>) -> Answer {
    s.authorize(&headers)?;
    let account = s.account(&body.account)?;
    let asset = if body.asset.eq_ignore_ascii_case("cash") {
        Asset::Cash
    } else {
        Asset::Holding(s.instrument(&body.asset).await?.0)
    };
    let amount = parse_amount(asset, &body.amount).ok_or_else(|| {
        let unit = if asset == Asset::Cash { "yuan with at most two decimals" } else { "whole tonnes" };
        refuse(StatusCode::BAD_REQUEST, format!("amount {:?}: expected {unit}, non-zero", body.amount))
    })?;
    let request = s.next_request.fetch_add(1, Ordering::Relaxed);
    let transfer = Transfer { request, account, asset, amount };
    let events = s.execute(Command::Transfer(transfer)).await?;
    let accepted =
        events.iter().any(|e| matches!(e, Event::Transferred { transfer: t, accepted: true } if *t == transfer));
    let balance = s.inspect(move |engine| available(engine, account, asset)).await?;
    let shown = show_amount(asset, balance);
    if accepted {
        to_answer(&TransferAnswer { account: body.account, asset: body.asset, amount: body.amount, available: shown })
    } else {
        Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "{} has {shown} {} available; a withdrawal never takes locked or bought-today funds",
                body.account, body.asset
            ),
        ))
    }
}

/// A signed amount in fen (cash) or tonnes; `None` if malformed or zero.
/// Public for the fuzz targets ([`crate::fuzzing`]).
pub fn parse_amount(asset: Asset, text: &str) -> Option<i64> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match asset {
        Asset::Cash => parse_yuan_to_fen(digits)?,
        Asset::Holding(_) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        Asset::Holding(_) => return None,
    };
    (magnitude != 0).then_some(sign * magnitude)
}

fn available(engine: &Engine, account: AccountId, asset: Asset) -> i64 {
    let Some(table) = engine.accounts() else { return 0 };
    match asset {
        Asset::Cash => table.cash(account).map_or(0, |c| c.available),
        Asset::Holding(i) => table.holding(account, i).map_or(0, |h| h.available),
    }
}

/// Fen as yuan text with two decimals (`-12.05`).
pub fn fen_text(fen: i128) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
}

fn show_amount(asset: Asset, amount: i64) -> String {
    match asset {
        Asset::Cash => fen_text(i128::from(amount)),
        Asset::Holding(_) => amount.to_string(),
    }
}

async fn sessions(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Answer {
    s.authorize(&headers)?;
    let sessions = s
        .hub
        .sessions()
        .into_iter()
        .map(|i| SessionRow { user: i.name, connected: i.connected, next_seq: i.next_seq, drop_copy: i.drop_copy })
        .collect();
    to_answer(&SessionsAnswer { sessions })
}

async fn disconnect(State(s): State<Arc<AdminState>>, headers: HeaderMap, Path(user): Path<String>) -> Answer {
    s.authorize(&headers)?;
    // A username or a drop-copy desk: both are streams of the hub.
    let names = s.hub.directory.stream_names().position(|n| String::from_utf8_lossy(n).trim_end() == user);
    let id = names
        .and_then(|n| u16::try_from(n).ok())
        .map(UserId::new)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, format!("no user or drop-copy desk {user}")))?;
    if s.hub.disconnect(id) {
        to_answer(&DisconnectAnswer { user, disconnected: true })
    } else {
        Err(refuse(StatusCode::CONFLICT, format!("{user} is not connected")))
    }
}

async fn book(
    State(s): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(stock): Path<String>,
    Query(query): Query<BookQuery>,
) -> Answer {
    s.authorize(&headers)?;
    let (instrument, code) = s.instrument(&stock).await?;
    let levels = query.levels.unwrap_or(10).clamp(1, BOOK_LEVELS_MAX);
    let view = s
        .inspect(move |engine| {
            let side = |side| -> Vec<BookLevel> {
                engine
                    .depth(instrument, side, levels)
                    .map(|l| BookLevel { price: l.price.to_string(), qty: l.qty, orders: l.orders })
                    .collect()
            };
            let reference = engine.reference(instrument);
            BookAnswer {
                instrument: code.to_string(),
                halted: engine.is_halted(instrument),
                reference: reference.reference.to_string(),
                band: [reference.lower.to_string(), reference.upper.to_string()],
                bids: side(Side::Buy),
                asks: side(Side::Sell),
            }
        })
        .await?;
    to_answer(&view)
}

async fn metrics(State(s): State<Arc<AdminState>>) -> Response {
    let text = s.metrics.render(s.operator.len());
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_or_not_at_all() {
        let cea = Asset::Holding(InstrumentId::new(0));
        assert_eq!(parse_amount(Asset::Cash, "1000.5"), Some(100_050));
        assert_eq!(parse_amount(Asset::Cash, "-0.01"), Some(-1));
        assert_eq!(parse_amount(cea, "+500"), Some(500));
        for bad in ["", "0", "-0.00", "1.234", "1e3", "--1", "12a"] {
            assert_eq!(parse_amount(Asset::Cash, bad), None, "{bad}");
        }
        assert_eq!(parse_amount(cea, "1.5"), None);
        assert_eq!((fen_text(-1_205), fen_text(100_000_000)), ("-12.05".to_string(), "1000000.00".to_string()));
    }

    #[test]
    fn readiness_is_503_until_the_server_listens() {
        assert_eq!(readiness(false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true), (StatusCode::OK, "ready\n"));
    }
}
