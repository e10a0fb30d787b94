//! `carbonx admin`: the operator's command line over the admin endpoint
//! ([`crate::admin`]). Each subcommand is one HTTP request; the answer is
//! printed (JSON, or a table for the book), a refusal goes to stderr with
//! the server's message and a non-zero exit code.

use crate::admin::api::{
    AddMemberRequest, AnnounceRequest, AuctionList, AuctionView, BookAnswer, BookLevel, ClusterView, DisconnectAnswer,
    KillAnswer, ListRequest, MembershipAnswer, ReferenceDataAnswer, Refused, RollAnswer, SessionsAnswer,
    SnapshotAnswer, TradingStateAnswer, TransferAnswer, TransferRequest,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// One admin action.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum AdminAction {
    /// Halts trading in an instrument (ITCH `H` halted; new orders rejected `H`).
    Halt {
        /// The instrument (`CEA`, `CEA21`.. `CCER`).
        stock: String,
    },
    /// Resumes a halted instrument.
    Resume {
        /// The instrument.
        stock: String,
    },
    /// Kill switch: cancels every live order and block of an account (reason `S`).
    Kill {
        /// The account (`0001`).
        account: String,
    },
    /// The end-of-day roll: the close, T+1 settlement, the next day starts.
    Roll,
    /// Writes a snapshot of the whole state now (for `carbonx replay --snapshot`).
    Snapshot,
    /// Registry deposit: cash in yuan (`cash 1000.00`) or allowances in tonnes (`CEA 500`).
    Deposit {
        /// The account.
        account: String,
        /// `cash` or an instrument.
        asset: String,
        /// Yuan (two decimals at most) or tonnes.
        amount: String,
    },
    /// Registry withdrawal from available cash or sellable allowances.
    Withdraw {
        /// The account.
        account: String,
        /// `cash` or an instrument.
        asset: String,
        /// Yuan (two decimals at most) or tonnes.
        amount: String,
    },
    /// Lists every username's session: connected, next sequence number.
    Sessions,
    /// Ends a username's connection.
    Disconnect {
        /// The username (`DEMO01`).
        user: String,
    },
    /// Shows an instrument's top price levels.
    Book {
        /// The instrument.
        stock: String,
        /// Levels per side.
        #[arg(long, default_value_t = 10)]
        levels: usize,
    },
    /// Prints the Prometheus metrics.
    Metrics,
    /// One-way bidding auctions: announce, list, show.
    Auction {
        /// What to do.
        #[command(subcommand)]
        action: AuctionAction,
    },
    /// Reference data: list or delist an instrument from the next trading day.
    Instrument {
        /// What to do.
        #[command(subcommand)]
        action: InstrumentAction,
    },
    /// The cluster (`[cluster]`): every member's view, or a membership change.
    Cluster {
        /// What to do (nothing: print every member's view).
        #[command(subcommand)]
        action: Option<ClusterAction>,
    },
}

/// A membership change, sent to the leader's admin endpoint.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum ClusterAction {
    /// Adds a running node as a voting member (it catches up first).
    Add {
        /// Its node id.
        id: u64,
        /// Its Raft address (`127.0.0.1:7311`).
        #[arg(long)]
        raft: String,
        /// Its order-entry address.
        #[arg(long)]
        order_entry: String,
        /// Its admin address.
        #[arg(long)]
        admin: String,
    },
    /// Removes a member (a dead machine being replaced).
    Remove {
        /// Its node id.
        id: u64,
    },
}

/// A reference-data action (RULES §1.3); each takes effect at the next roll.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum InstrumentAction {
    /// Lists a new instrument: from the next trading day it is in the
    /// directory and every account holds 0 t of it.
    Add {
        /// The code (1 to 8 letters or digits, `CEA26`).
        code: String,
        /// The reference of its first day, yuan (`74.63`).
        #[arg(long)]
        prev_close: String,
    },
    /// Delists an instrument: from the next trading day new orders are rejected.
    Delist {
        /// The code.
        code: String,
    },
}

/// An auction action.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum AuctionAction {
    /// Announces an auction: locks the seller's tonnes, opens the window for bids.
    Announce {
        /// The auction id (1 to 8 characters, unique today).
        id: String,
        /// The instrument.
        stock: String,
        /// Tonnes offered (at least 100,000).
        qty: u32,
        /// The selling account.
        #[arg(long)]
        seller: String,
        /// The username that receives the seller's fills.
        #[arg(long)]
        user: String,
        /// Window start: now, +DURATION (+90s, +10m, +1h30m) or HH:MM or HH:MM:SS Beijing time.
        #[arg(long, default_value = "now")]
        start: String,
        /// Window end, in the same words.
        #[arg(long)]
        end: String,
        /// uniform or pay-as-bid.
        #[arg(long, default_value = "uniform", value_parser = ["uniform", "pay-as-bid"])]
        pricing: String,
        /// close (previous close) or minus10 (previous close − market.auction_floor_pct, 10% by default).
        #[arg(long, default_value = "close", value_parser = ["close", "minus10"])]
        floor: String,
    },
    /// Lists today's auctions with their status and results.
    List,
    /// Shows one auction; after its end, the ranked bids and the allocation.
    Show {
        /// The auction id.
        id: String,
    },
}

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The endpoint could not be reached or answered garbage.
    #[error("admin endpoint {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the request.
    #[error("refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

/// The admin endpoint's client.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
    roots: Vec<ureq::tls::Certificate<'static>>,
}

impl AdminClient {
    /// A client of the endpoint at `base` (`http://127.0.0.1:7010`).
    /// An `https://` endpoint needs [`AdminClient::with_ca`]: this one
    /// trusts no certificate.
    pub fn new(base: &str, token: &str) -> AdminClient {
        AdminClient::with_roots(base, token, Vec::new())
    }

    /// A client of an HTTPS endpoint (`https://127.0.0.1:7010`, `[admin]
    /// tls`) whose certificate chains to the CA in the PEM file `ca`.
    ///
    /// # Errors
    /// The file cannot be read or holds no certificate.
    pub fn with_ca(base: &str, token: &str, ca: &std::path::Path) -> Result<AdminClient, AdminError> {
        let roots = trusted(ca).map_err(|reason| AdminError::Unreachable { url: base.to_string(), reason })?;
        Ok(AdminClient::with_roots(base, token, roots))
    }

    /// A client trusting `roots`.
    fn with_roots(base: &str, token: &str, roots: Vec<ureq::tls::Certificate<'static>>) -> AdminClient {
        let agent = agent(Duration::from_secs(20), roots.clone());
        AdminClient { base: base.trim_end_matches('/').to_string(), token: token.to_string(), agent, roots }
    }

    /// The same client with each request bounded by `timeout` instead of
    /// 20 s (a cluster member that is paused must not hold a caller up).
    pub fn with_timeout(self, timeout: Duration) -> AdminClient {
        AdminClient { agent: agent(timeout, self.roots.clone()), ..self }
    }

    /// Runs `action`; the text to print.
    ///
    /// # Errors
    /// The endpoint is unreachable, or it refused (the server's message).
    pub fn run(&self, action: &AdminAction) -> Result<String, AdminError> {
        match action {
            AdminAction::Halt { stock } => self.post::<TradingStateAnswer>(&format!("/halt/{stock}"), None).map(pretty),
            AdminAction::Resume { stock } => {
                self.post::<TradingStateAnswer>(&format!("/resume/{stock}"), None).map(pretty)
            }
            AdminAction::Kill { account } => self.post::<KillAnswer>(&format!("/kill/{account}"), None).map(pretty),
            AdminAction::Roll => self.post::<RollAnswer>("/roll", None).map(pretty),
            AdminAction::Snapshot => self.post::<SnapshotAnswer>("/snapshot", None).map(pretty),
            AdminAction::Deposit { account, asset, amount } => self.transfer(account, asset, amount),
            AdminAction::Withdraw { account, asset, amount } => {
                let negative = format!("-{}", amount.trim_start_matches('+'));
                if amount.starts_with('-') {
                    return Err(AdminError::Refused { status: 400, message: "give withdraw a positive amount".into() });
                }
                self.transfer(account, asset, &negative)
            }
            AdminAction::Sessions => self.get::<SessionsAnswer>("/sessions").map(pretty),
            AdminAction::Disconnect { user } => {
                self.post::<DisconnectAnswer>(&format!("/disconnect/{user}"), None).map(pretty)
            }
            AdminAction::Book { stock, levels } => {
                self.get::<BookAnswer>(&format!("/book/{stock}?levels={levels}")).map(|b| book_table(&b))
            }
            AdminAction::Metrics => self.text("/metrics"),
            AdminAction::Auction { action } => self.auction(action),
            AdminAction::Instrument { action: InstrumentAction::Add { code, prev_close } } => {
                let body = ListRequest { code: code.clone(), prev_close: prev_close.clone() };
                self.post::<ReferenceDataAnswer>("/instrument", Some(self.body(&body)?)).map(pretty)
            }
            AdminAction::Instrument { action: InstrumentAction::Delist { code } } => {
                self.post::<ReferenceDataAnswer>(&format!("/instrument/{code}/delist"), None).map(pretty)
            }
            AdminAction::Cluster { action: None } => self.cluster_views(),
            AdminAction::Cluster { action: Some(ClusterAction::Add { id, raft, order_entry, admin }) } => {
                let body = AddMemberRequest {
                    id: *id,
                    raft: raft.clone(),
                    order_entry: order_entry.clone(),
                    admin: admin.clone(),
                };
                self.post::<MembershipAnswer>("/cluster/add", Some(self.body(&body)?)).map(pretty)
            }
            AdminAction::Cluster { action: Some(ClusterAction::Remove { id }) } => {
                self.post::<MembershipAnswer>(&format!("/cluster/remove/{id}"), None).map(pretty)
            }
        }
    }

    /// This node's view of the cluster (`GET /cluster`, no token needed).
    ///
    /// # Errors
    /// The endpoint is unreachable, or runs without `[cluster]`.
    pub fn cluster_view(&self) -> Result<ClusterView, AdminError> {
        self.get::<ClusterView>("/cluster")
    }

    /// This node's view, then every other member's (asked at its own admin
    /// address, same scheme): one line per member that does not answer.
    fn cluster_views(&self) -> Result<String, AdminError> {
        let mine = self.get::<ClusterView>("/cluster")?;
        let scheme = if self.base.starts_with("https://") { "https" } else { "http" };
        let mut views = vec![serde_json::to_value(&mine).map_err(|e| self.unreachable(e))?];
        for member in mine.members.iter().filter(|m| m.id != mine.node) {
            let other = AdminClient { base: format!("{scheme}://{}", member.admin), ..self.clone() };
            views.push(match other.get::<ClusterView>("/cluster") {
                Ok(view) => serde_json::to_value(view).map_err(|e| self.unreachable(e))?,
                Err(err) => serde_json::json!({ "node": member.id, "error": err.to_string() }),
            });
        }
        Ok(pretty(views))
    }

    fn auction(&self, action: &AuctionAction) -> Result<String, AdminError> {
        match action {
            AuctionAction::Announce { id, stock, qty, seller, user, start, end, pricing, floor } => {
                let body = AnnounceRequest {
                    id: id.clone(),
                    stock: stock.clone(),
                    seller: seller.clone(),
                    user: user.clone(),
                    qty: *qty,
                    start: start.clone(),
                    end: end.clone(),
                    pricing: pricing.clone(),
                    floor: floor.clone(),
                };
                self.post::<AuctionView>("/auction", Some(self.body(&body)?)).map(pretty)
            }
            AuctionAction::List => self.get::<AuctionList>("/auctions").map(pretty),
            AuctionAction::Show { id } => self.get::<AuctionView>(&format!("/auction/{id}")).map(pretty),
        }
    }

    fn transfer(&self, account: &str, asset: &str, amount: &str) -> Result<String, AdminError> {
        let body =
            TransferRequest { account: account.to_string(), asset: asset.to_string(), amount: amount.to_string() };
        self.post::<TransferAnswer>("/transfer", Some(self.body(&body)?)).map(pretty)
    }

    fn body(&self, body: &impl Serialize) -> Result<Value, AdminError> {
        serde_json::to_value(body).map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, reason: impl ToString) -> AdminError {
        AdminError::Unreachable { url: self.base.clone(), reason: reason.to_string() }
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: Option<Value>) -> Result<T, AdminError> {
        let request = self.agent.post(format!("{}{path}", self.base)).header("authorization", self.bearer());
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        self.answer(response.map_err(|e| self.unreachable(e))?)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        let request = self.agent.get(format!("{}{path}", self.base)).header("authorization", self.bearer());
        self.answer(request.call().map_err(|e| self.unreachable(e))?)
    }

    fn text(&self, path: &str) -> Result<String, AdminError> {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call().map_err(|e| self.unreachable(e))?;
        response.body_mut().read_to_string().map_err(|e| self.unreachable(e))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The answer of type `T`, or the server's refusal ([`Refused`]).
    fn answer<T: DeserializeOwned>(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<T, AdminError> {
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| self.unreachable(e))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| self.unreachable(format!("not JSON: {text}")))?;
        if (200..300).contains(&status) {
            T::deserialize(value).map_err(|e| self.unreachable(format!("unexpected answer ({e}): {text}")))
        } else {
            let message = Refused::deserialize(value).map_or(text, |r| r.error);
            Err(AdminError::Refused { status, message })
        }
    }
}

/// An HTTP client of the admin endpoint: answers are read whatever their
/// status, `timeout` bounds a whole request, and an `https://` endpoint's
/// certificate must chain to one of `roots` (rustls with the exchange's
/// crypto provider; no roots: no `https://` endpoint is trusted).
pub fn agent(timeout: Duration, roots: Vec<ureq::tls::Certificate<'static>>) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(carbonx_soup::stream::crypto_provider())
        .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build()
        .into()
}

/// The certificates of the PEM file `ca`, to trust an `https://` endpoint.
///
/// # Errors
/// The file cannot be read or holds no certificate (the message names it).
pub fn trusted(ca: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    // The PEM reading every listener and client of ours uses.
    let certs = carbonx_soup::stream::load_certs(ca).map_err(|err| err.to_string())?;
    Ok(certs.iter().map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned()).collect())
}

/// An answer as JSON text, its keys in alphabetical order as on the wire.
fn pretty(answer: impl Serialize) -> String {
    serde_json::to_value(&answer)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|err| format!("answer not printable: {err}"))
}

/// The book as two columns: bids on the left, asks on the right.
fn book_table(book: &BookAnswer) -> String {
    let mut out = format!(
        "{}  reference {}  band {} .. {}{}\n{:>8} {:>10} {:>9} | {:<9} {:<10} {:<8}\n",
        book.instrument,
        book.reference,
        book.band[0],
        book.band[1],
        if book.halted { "  HALTED" } else { "" },
        "orders",
        "bid t",
        "bid",
        "ask",
        "ask t",
        "orders"
    );
    let cell = |level: Option<&BookLevel>, show: fn(&BookLevel) -> String| level.map(show).unwrap_or_default();
    for row in 0..book.bids.len().max(book.asks.len()) {
        let (bid, ask) = (book.bids.get(row), book.asks.get(row));
        out.push_str(&format!(
            "{:>8} {:>10} {:>9} | {:<9} {:<10} {:<8}\n",
            cell(bid, |l| l.orders.to_string()),
            cell(bid, |l| l.qty.to_string()),
            cell(bid, |l| l.price.clone()),
            cell(ask, |l| l.price.clone()),
            cell(ask, |l| l.qty.to_string()),
            cell(ask, |l| l.orders.to_string())
        ));
    }
    out
}
