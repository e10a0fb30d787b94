//! `carbonx admin`: the operator's command line over the admin endpoint
//! ([`crate::admin`]). Each subcommand is one HTTP request; the answer is
//! printed (JSON, or a table for the book), a refusal goes to stderr with
//! the server's message and a non-zero exit code.

use serde_json::{Value, json};
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
        /// Window start: now, +90s, +10m, +1h or HH:MM or HH:MM:SS Beijing time.
        #[arg(long, default_value = "now")]
        start: String,
        /// Window end, in the same words.
        #[arg(long)]
        end: String,
        /// uniform or pay-as-bid.
        #[arg(long, default_value = "uniform")]
        pricing: String,
        /// close (previous close) or minus10 (previous close −10%).
        #[arg(long, default_value = "close")]
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
pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl AdminClient {
    /// A client of the endpoint at `base` (`http://127.0.0.1:7010`).
    pub fn new(base: &str, token: &str) -> AdminClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        AdminClient { base: base.trim_end_matches('/').to_string(), token: token.to_string(), agent }
    }

    /// Runs `action`; the text to print.
    ///
    /// # Errors
    /// The endpoint is unreachable, or it refused (the server's message).
    pub fn run(&self, action: &AdminAction) -> Result<String, AdminError> {
        match action {
            AdminAction::Halt { stock } => self.post(&format!("/halt/{stock}"), None).map(pretty),
            AdminAction::Resume { stock } => self.post(&format!("/resume/{stock}"), None).map(pretty),
            AdminAction::Kill { account } => self.post(&format!("/kill/{account}"), None).map(pretty),
            AdminAction::Roll => self.post("/roll", None).map(pretty),
            AdminAction::Snapshot => self.post("/snapshot", None).map(pretty),
            AdminAction::Deposit { account, asset, amount } => self.transfer(account, asset, amount),
            AdminAction::Withdraw { account, asset, amount } => {
                let negative = format!("-{}", amount.trim_start_matches('+'));
                if amount.starts_with('-') {
                    return Err(AdminError::Refused { status: 400, message: "give withdraw a positive amount".into() });
                }
                self.transfer(account, asset, &negative)
            }
            AdminAction::Sessions => self.get("/sessions").map(pretty),
            AdminAction::Disconnect { user } => self.post(&format!("/disconnect/{user}"), None).map(pretty),
            AdminAction::Book { stock, levels } => {
                self.get(&format!("/book/{stock}?levels={levels}")).map(|v| book_table(&v))
            }
            AdminAction::Metrics => self.text("/metrics"),
            AdminAction::Auction { action } => self.auction(action).map(pretty),
        }
    }

    fn auction(&self, action: &AuctionAction) -> Result<Value, AdminError> {
        match action {
            AuctionAction::Announce { id, stock, qty, seller, user, start, end, pricing, floor } => {
                let body = crate::admin::auction::AnnounceRequest {
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
                let body = serde_json::to_value(body).map_err(|e| self.unreachable(e))?;
                self.post("/auction", Some(&body))
            }
            AuctionAction::List => self.get("/auctions"),
            AuctionAction::Show { id } => self.get(&format!("/auction/{id}")),
        }
    }

    fn transfer(&self, account: &str, asset: &str, amount: &str) -> Result<String, AdminError> {
        let body = json!({ "account": account, "asset": asset, "amount": amount });
        self.post("/transfer", Some(&body)).map(pretty)
    }

    fn unreachable(&self, reason: impl ToString) -> AdminError {
        AdminError::Unreachable { url: self.base.clone(), reason: reason.to_string() }
    }

    fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, AdminError> {
        let request = self.agent.post(format!("{}{path}", self.base)).header("authorization", self.bearer());
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.send_empty(),
        };
        self.answer(response.map_err(|e| self.unreachable(e))?)
    }

    fn get(&self, path: &str) -> Result<Value, AdminError> {
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

    fn answer(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<Value, AdminError> {
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| self.unreachable(e))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| self.unreachable(format!("not JSON: {text}")))?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            let message = value.get("error").and_then(Value::as_str).unwrap_or(&text).to_string();
            Err(AdminError::Refused { status, message })
        }
    }
}

fn pretty(value: Value) -> String {
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
}

/// The book as two columns: bids on the left, asks on the right.
fn book_table(v: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string));
    let side = |key: &str| v.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let (bids, asks) = (side("bids"), side("asks"));
    let band = v.get("band").and_then(Value::as_array).map(|b| format!("{} .. {}", b[0], b[1]).replace('"', ""));
    let mut out = format!(
        "{}  reference {}  band {}{}\n{:>8} {:>10} {:>9} | {:<9} {:<10} {:<8}\n",
        text(v, "instrument").unwrap_or_default(),
        text(v, "reference").unwrap_or_default(),
        band.unwrap_or_default(),
        if v.get("halted") == Some(&Value::Bool(true)) { "  HALTED" } else { "" },
        "orders",
        "bid t",
        "bid",
        "ask",
        "ask t",
        "orders"
    );
    for row in 0..bids.len().max(asks.len()) {
        let cell = |levels: &[Value], key: &str| levels.get(row).and_then(|l| text(l, key)).unwrap_or_default();
        out.push_str(&format!(
            "{:>8} {:>10} {:>9} | {:<9} {:<10} {:<8}\n",
            cell(&bids, "orders"),
            cell(&bids, "qty"),
            cell(&bids, "price"),
            cell(&asks, "price"),
            cell(&asks, "qty"),
            cell(&asks, "orders")
        ));
    }
    out
}
