//! Golden rule tests: `engine/tests/testdata/*.txt`, readable by a market-rules
//! expert (the raft-rs data-driven style).
//!
//! A file is one trading session. Lines starting with `#` are comments;
//! `config key=value ...` lines at the top set the market (`stp=`,
//! `session=calendar`, `orders_max=`, `accounts=demo`, `show=day` to print
//! the day's reference, phase and state events, which are hidden
//! otherwise; any other `[market]` key with a TOML value, such as
//! `pick_levels=3` or `roll_at="16:00"`). Then cases, each: command lines, a `----` line, the events
//! expected, and a blank line. Cases run in order on the same engine.
//!
//! Commands:
//! - `at 2026-11-24 09:30:00` sets the local (Asia/Shanghai) time of the
//!   following commands (each one a nanosecond later than the last);
//! - `buy b1 CEA 100 @ 74.63 acct=1` and `sell ...`, with `@ market`, and
//!   options `ioc`, `fok`, `post-only`, `user=N`, and raw wire fields for
//!   reject cases: `price=746301`, `tif=7`, `display=X`, `iso=Y`, `minqty=5`,
//!   `cross=Y`;
//! - `cancel b1`, `reduce b1 to 40`, `replace b1 -> b2 60 @ 74.60` (options
//!   `ioc`, `post-only`, and `display=`, `iso=`, `minqty=`);
//! - `block b1 sell CEA 150000 @ 80.00 acct=1 cp=2 deal=D1` (`cp=none`: a
//!   counterparty code that names no account),
//!   `pick p1 buy CEA 15 ref=2 acct=2`;
//! - `announce A1 CEA 200000 acct=1 user=0 from 10:00 to 10:30 uniform floor=close`
//!   (an auction on the current date; `pay-as-bid`; `floor=minus10`), and
//!   `bid a1 CEA 1000 @ 75.00 acct=2 auction=A1` (options `user=N`,
//!   `price=` raw wire price); bids are cancelled and reduced like orders;
//! - `clock`, `roll`, `halt CEA`, `resume CEA`, `kill acct=1`, `reject b9 V`;
//! - `list CEA26 @ 74.63`, `delist CEA21` (reference data, effective at
//!   the next roll);
//! - `show acct=N` prints an account's cash and CEA holding (`stock=CODE`
//!   for another instrument's; with
//!   `accounts=demo` or `accounts=small`; `cap=N` sets a holding cap).
//!
//! `GOLDEN_REWRITE=1 cargo test -p carbonx-engine --test golden` rewrites the expectations
//! from what the engine does; every rewritten file must then be read
//! against docs/RULES.md before it is committed.

use carbonx_engine::accounts::{AccountTable, AccountsError};
use carbonx_engine::config::ConfigError;
use carbonx_engine::*;
use std::path::Path;
use std::str::FromStr;

/// Why a golden file could not be run at all. (A case whose events differ
/// from the expected ones is a failure the test reports, not an error.)
#[derive(Debug, thiserror::Error)]
enum GoldenError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
    /// A `config` word is not `key=value`, or its key or value is unknown.
    #[error("bad config setting {0:?}")]
    Setting(String),
    /// The engine refused the configured market.
    #[error("the engine refused the market: {0}")]
    Config(#[from] ConfigError),
    /// The `accounts=small` table did not load.
    #[error("the account table did not load: {0}")]
    Accounts(#[from] AccountsError),
    /// A field of a command line does not parse.
    #[error("bad {field} {text:?}")]
    Field {
        /// Which field.
        field: &'static str,
        /// The text found.
        text: String,
    },
    /// The first word of a line is not a command.
    #[error("unknown command {0:?}")]
    Command(String),
    /// `show acct=N` without an account table, or for an account not in it.
    #[error("cannot show the account: {0}")]
    Show(&'static str),
    /// A line of the file failed.
    #[error("line {line}: {source}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What was wrong with it.
        source: Box<GoldenError>,
    },
}

/// A field that does not parse.
fn bad(field: &'static str, text: &str) -> GoldenError {
    GoldenError::Field { field, text: text.to_string() }
}

/// `text` as a number (or anything else `FromStr`), or a [`GoldenError::Field`].
fn number<T: FromStr>(field: &'static str, text: &str) -> Result<T, GoldenError> {
    text.parse().map_err(|_| bad(field, text))
}

/// A stock code.
fn stock(text: &str) -> Result<StockCode, GoldenError> {
    StockCode::from_text(text).ok_or_else(|| bad("stock", text))
}

/// An auction id.
fn auction_id(text: &str) -> Result<AuctionId, GoldenError> {
    AuctionId::from_text(text).ok_or_else(|| bad("auction id", text))
}

/// Local midnight of 2026-11-24 (a Tuesday) in Asia/Shanghai, as Unix seconds.
const DAY0: i64 = 1_795_478_400 - 8 * 3600;

struct Session {
    engine: Engine,
    codes: Vec<StockCode>,
    now: u64,
    show_day: bool,
}

/// `accounts=small`: three accounts to reach every risk rule.
const SMALL_ACCOUNTS: &str = "account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER
0001,1000,0,0,0,0,0,0,0
0002,0,100,0,0,0,0,0,0
0003,100000,100,0,0,0,0,0,0
";

fn parse_config(lines: &[&str]) -> Result<(Engine, bool), GoldenError> {
    let mut config = EngineConfig::demo();
    let (mut accounts, mut show_day) = (None, false);
    for line in lines {
        for setting in line.split_whitespace().skip(1) {
            let bad_setting = || GoldenError::Setting(setting.to_string());
            let (key, value) = setting.split_once('=').ok_or_else(bad_setting)?;
            match key {
                "stp" => config.stp = toml_enum(value).ok_or_else(bad_setting)?,
                "session" => config.session = toml_enum(value).ok_or_else(bad_setting)?,
                "orders_max" => config.orders_max = value.parse().map_err(|_| bad_setting())?,
                "accounts" => accounts = Some(value.to_string()),
                "cap" => config.holding_cap = Some(value.parse().map_err(|_| bad_setting())?),
                "show" => show_day = value == "day",
                _ => config = with_market_key(&config, key, value).ok_or_else(bad_setting)?,
            }
        }
    }
    let codes: Vec<String> = config.instruments.iter().map(|i| i.code.clone()).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let engine = match accounts.as_deref() {
        None => Engine::new(config),
        Some("demo") => Engine::with_accounts(config, AccountTable::demo(7, 20)),
        Some("small") => {
            let table = AccountTable::from_csv(SMALL_ACCOUNTS, &codes)?;
            Engine::with_accounts(config, table)
        }
        Some(other) => return Err(GoldenError::Setting(format!("accounts={other}"))),
    };
    Ok((engine?, show_day))
}

/// `config` with one more `[market]` key set as a TOML value (`pick_levels=3`,
/// `morning_open="10:00"`): every setting of the market reachable by its
/// documented name.
fn with_market_key(config: &EngineConfig, key: &str, value: &str) -> Option<EngineConfig> {
    let mut table = toml::Table::try_from(config).ok()?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}")).ok()?.remove("v")?;
    table.insert(key.to_string(), value);
    table.try_into().ok()
}

/// A configuration enum by its TOML name (`cancel-newest`, `calendar`).
fn toml_enum<T: serde::de::DeserializeOwned>(value: &str) -> Option<T> {
    #[derive(serde::Deserialize)]
    struct Wrap<T> {
        v: T,
    }
    toml::from_str::<Wrap<T>>(&format!("v = \"{value}\"")).map(|w| w.v).ok()
}

fn yuan(text: &str) -> Result<u32, GoldenError> {
    Price::parse_yuan(text).map(Price::fen).ok_or_else(|| bad("price", text))
}

fn token(text: &str) -> Token {
    Token::from_text(text).expect("token of at most 14 characters")
}

/// `key=value` options and bare flags after the fixed words of a command.
struct Options<'a>(Vec<&'a str>);

impl<'a> Options<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
    fn num(&self, key: &'static str, default: u32) -> Result<u32, GoldenError> {
        self.get(key).map_or(Ok(default), |v| number(key, v))
    }
    fn has(&self, flag: &str) -> bool {
        self.0.contains(&flag)
    }
}

impl Session {
    fn parse_order(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // buy b1 CEA 100 @ 74.63 acct=1 ...
        let side = if w[0] == "buy" { Side::Buy } else { Side::Sell };
        let opts = Options(w[6..].to_vec());
        let stock = stock(w[2])?;
        let qty: u32 = number("qty", w[3])?;
        let user = UserId::new(opts.num("user", 0)? as u16);
        let mut o = NewOrder::limit(user, token(w[1]), AccountId::new(opts.num("acct", 0)?), side, qty, stock, 0);
        o.price = if w[5] == "market" { 0x7FFF_FFFF } else { yuan(w[5])? * 100 };
        if opts.has("ioc") || w[5] == "market" {
            o.tif = 0;
        }
        if opts.has("fok") {
            (o.tif, o.min_qty) = (0, qty);
        }
        if opts.has("post-only") {
            o.display = b'P';
        }
        o.price = opts.num("price", o.price)?;
        o.tif = opts.num("tif", o.tif)?;
        o.min_qty = opts.num("minqty", o.min_qty)?;
        o.display = opts.get("display").map_or(o.display, |d| d.as_bytes()[0]);
        o.cross_type = opts.get("cross").map_or(o.cross_type, |d| d.as_bytes()[0]);
        o.iso = opts.get("iso").map_or(o.iso, |d| d.as_bytes()[0]);
        Ok(Command::NewOrder(o))
    }

    fn parse_replace(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // replace b1 -> b2 60 @ 74.60 [ioc] [post-only] [display=X] [iso=Y] [minqty=N]
        let opts = Options(w[7..].to_vec());
        let user = UserId::new(opts.num("user", 0)? as u16);
        let qty = Qty::new(number("qty", w[4])?);
        let tif = if opts.has("ioc") { 0 } else { 99_999 };
        let display = if opts.has("post-only") { b'P' } else { b'Y' };
        let price = opts.num("price", yuan(w[6])? * 100)?;
        Ok(Command::Replace(Replace {
            user,
            token: token(w[1]),
            new_token: token(w[3]),
            qty,
            price,
            tif,
            display: opts.get("display").map_or(display, |d| d.as_bytes()[0]),
            iso: opts.get("iso").map_or(b'N', |d| d.as_bytes()[0]),
            min_qty: opts.num("minqty", 0)?,
        }))
    }

    fn parse_block(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // block b1 sell CEA 150000 @ 80.00 acct=1 cp=2 deal=D1
        let opts = Options(w[7..].to_vec());
        let mut deal_id = [b' '; 8];
        let deal = opts.get("deal").unwrap_or("");
        deal_id[..deal.len()].copy_from_slice(deal.as_bytes());
        Ok(Command::NewBlock(NewBlock {
            user: UserId::new(opts.num("user", 0)? as u16),
            token: token(w[1]),
            account: AccountId::new(opts.num("acct", 0)?),
            // `cp=none`: a counterparty code that names no account.
            counterparty: match opts.get("cp") {
                Some("none") => None,
                _ => Some(AccountId::new(opts.num("cp", 0)?)),
            },
            side: if w[2] == "buy" { Side::Buy } else { Side::Sell },
            qty: Qty::new(number("qty", w[4])?),
            stock: stock(w[3])?,
            price: yuan(w[6])? * 100,
            deal_id,
        }))
    }

    fn parse_pick(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // pick p1 buy CEA 15 ref=2 acct=2
        let opts = Options(w[5..].to_vec());
        Ok(Command::Pick(Pick {
            user: UserId::new(opts.num("user", 0)? as u16),
            token: token(w[1]),
            account: AccountId::new(opts.num("acct", 0)?),
            side: if w[2] == "buy" { Side::Buy } else { Side::Sell },
            qty: Qty::new(number("qty", w[4])?),
            stock: stock(w[3])?,
            target: OrderId::new(u64::from(opts.num("ref", 0)?)),
        }))
    }

    /// `HH:MM[:SS]` local time on the date of the current time.
    fn local_time(&self, text: &str) -> Result<Timestamp, GoldenError> {
        let local_day = (self.now / 1_000_000_000 + 8 * 3600) / 86_400;
        let mut parts = text.split(':').map(|p| number::<u64>("time", p));
        let missing = || bad("time", text);
        let (h, m) = (parts.next().ok_or_else(missing)??, parts.next().ok_or_else(missing)??);
        let s = parts.next().transpose()?.unwrap_or(0);
        let local = local_day * 86_400 + h * 3600 + m * 60 + s;
        Ok(Timestamp::from_nanos((local - 8 * 3600) * 1_000_000_000))
    }

    fn parse_announce(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // announce A1 CEA 200000 acct=1 user=0 from 10:00 to 10:30 uniform floor=close
        let opts = Options(w[4..].to_vec());
        let at = |word: &'static str| {
            w.iter().position(|x| *x == word).and_then(|i| w.get(i + 1)).ok_or_else(|| bad(word, "missing"))
        };
        let floor = match opts.get("floor") {
            Some("close") => FloorRule::PreviousClose,
            Some("minus10") => FloorRule::PreviousCloseMinus10,
            other => return Err(bad("floor", other.unwrap_or(""))),
        };
        Ok(Command::AnnounceAuction(AnnounceAuction {
            id: auction_id(w[1])?,
            stock: stock(w[2])?,
            seller: AccountId::new(opts.num("acct", 0)?),
            seller_user: UserId::new(opts.num("user", 0)? as u16),
            qty: Qty::new(number("qty", w[3])?),
            start: self.local_time(at("from")?)?,
            end: self.local_time(at("to")?)?,
            pricing: if opts.has("pay-as-bid") { Pricing::PayAsBid } else { Pricing::Uniform },
            floor,
        }))
    }

    fn parse_bid(&self, w: &[&str]) -> Result<Command, GoldenError> {
        // bid a1 CEA 1000 @ 75.00 acct=2 auction=A1
        let opts = Options(w[6..].to_vec());
        Ok(Command::AuctionBid(AuctionBid {
            user: UserId::new(opts.num("user", 0)? as u16),
            token: token(w[1]),
            account: AccountId::new(opts.num("acct", 0)?),
            qty: Qty::new(number("qty", w[3])?),
            stock: stock(w[2])?,
            price: opts.num("price", yuan(w[5])? * 100)?,
            auction: auction_id(opts.get("auction").unwrap_or(""))?,
        }))
    }

    fn instrument(&self, code: &str) -> Result<InstrumentId, GoldenError> {
        let stock = stock(code)?;
        let index = self.codes.iter().position(|c| *c == stock).ok_or_else(|| bad("stock", code))?;
        Ok(InstrumentId::new(index as u8))
    }

    fn parse(&mut self, line: &str) -> Result<Option<Command>, GoldenError> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let cmd = match w[0] {
            "at" => {
                let (date, time) = (w[1].replace('-', ""), w[2]);
                let days = carbonx_engine::calendar::days_from_yyyymmdd(number("date", &date)?)
                    .ok_or_else(|| bad("date", w[1]))?;
                let mut parts = time.split(':').map(|p| p.parse::<f64>().unwrap_or(0.0));
                let (h, m, s) = (parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0));
                let local = days * 86_400 + (h * 3600.0 + m * 60.0) as i64;
                self.now = ((local - 8 * 3600) as u64) * 1_000_000_000 + (s * 1e9).round() as u64;
                return Ok(None);
            }
            "buy" | "sell" => self.parse_order(&w)?,
            "cancel" => Command::Cancel(Cancel { user: UserId::new(0), token: token(w[1]), qty: Qty::ZERO }),
            "reduce" => Command::Cancel(Cancel {
                user: UserId::new(0),
                token: token(w[1]),
                qty: Qty::new(number("qty", w[3])?),
            }),
            "replace" => self.parse_replace(&w)?,
            "block" => self.parse_block(&w)?,
            "pick" => self.parse_pick(&w)?,
            "announce" => self.parse_announce(&w)?,
            "bid" => self.parse_bid(&w)?,
            "clock" => Command::Clock,
            "roll" => Command::Roll,
            "list" => Command::List(Listing {
                request: 1,
                stock: stock(w[1])?,
                prev_close: Price::parse_yuan(w[3]).ok_or_else(|| bad("price", w[3]))?,
            }),
            "delist" => Command::Delist(Delisting { request: 1, stock: stock(w[1])? }),
            "halt" => Command::Halt(self.instrument(w[1])?),
            "resume" => Command::Resume(self.instrument(w[1])?),
            "kill" => Command::CancelAccount(AccountId::new(Options(w[1..].to_vec()).num("acct", 0)?)),
            "reject" => {
                let reason = RejectReason::from_letter(w[2].as_bytes()[0]).ok_or_else(|| bad("reject reason", w[2]))?;
                Command::Reject(GatewayReject {
                    user: UserId::new(0),
                    token: token(w[1]),
                    reason,
                    names_new_token: true,
                })
            }
            other => return Err(GoldenError::Command(other.to_string())),
        };
        Ok(Some(cmd))
    }

    /// `show acct=N`: the account's cash and CEA holding, in yuan and tonnes.
    fn show_account(&self, line: &str) -> Result<Vec<String>, GoldenError> {
        let options = Options(line.split_whitespace().skip(1).collect());
        let account = AccountId::new(options.num("acct", 0)?);
        let code = options.get("stock").unwrap_or("CEA");
        let table = self.engine.accounts().ok_or(GoldenError::Show("no accounts configured"))?;
        let cash = table.cash(account).ok_or(GoldenError::Show("unknown account"))?;
        let h = table.holding(account, self.instrument(code)?).ok_or(GoldenError::Show("unknown account"))?;
        let yuan = |fen: i64| format!("{}.{:02}", fen / 100, fen % 100);
        let (available, locked) = (yuan(cash.available), yuan(cash.locked));
        let cea = format!("{code} available={} locked={} bought-today={}", h.available, h.locked, h.bought_today);
        Ok(vec![format!("account {} cash available={available} locked={locked}; {cea}", account.get())])
    }

    fn run(&mut self, line: &str) -> Result<Vec<String>, GoldenError> {
        if line.starts_with("show ") {
            return self.show_account(line);
        }
        let Some(cmd) = self.parse(line)? else {
            return Ok(Vec::new());
        };
        self.now += 1;
        let mut out = Vec::new();
        self.engine.apply(&cmd, Timestamp::from_nanos(self.now), &mut out);
        self.engine.check_invariants();
        if self.codes.len() != self.engine.instruments().len() {
            self.codes = self.engine.instruments().to_vec(); // a listing took effect at the roll
        }
        Ok(out.iter().filter_map(|e| self.show(e)).collect())
    }

    fn code(&self, i: InstrumentId) -> String {
        self.codes[i.index()].to_string()
    }

    fn show(&self, e: &Event) -> Option<String> {
        match e {
            Event::Accepted(_) | Event::Rejected { .. } | Event::Replaced { .. } => Some(self.show_order(e)),
            Event::Executed(_) | Event::Cancelled { .. } | Event::CancelRejected { .. } => Some(self.show_order(e)),
            Event::BookAdd { .. } | Event::BookReduce { .. } | Event::BookDelete { .. } | Event::BookReplace { .. } => {
                Some(self.show_book(e))
            }
            Event::AuctionAnnounced(_) | Event::AuctionRefused { .. } | Event::AuctionResult(_) => {
                Some(self.show_auction(e))
            }
            Event::ReferenceData { stock, change, refusal, .. } => {
                let what = match change {
                    ReferenceChange::List(price) => format!("listing {stock} @ {price}"),
                    ReferenceChange::Delist => format!("delisting {stock}"),
                };
                Some(match refusal {
                    None => format!("{what} scheduled for the next roll"),
                    Some(r) => format!("{what} refused {r:?}"),
                })
            }
            _ => self.show_day(e),
        }
    }

    fn price(wire: u32) -> String {
        if wire == 0x7FFF_FFFF {
            return "market".into();
        }
        Price::from_fen(wire / 100).map_or("?".into(), |p| p.to_string())
    }

    fn show_order(&self, e: &Event) -> String {
        let t = |t: &Token| format!("{t:?}");
        let side = |s: Side| if s == Side::Buy { "buy" } else { "sell" };
        let block = |m: Method| match m {
            Method::Listing => "",
            Method::Block => " block",
            Method::Auction => " auction",
        };
        match e {
            Event::Accepted(o) => {
                let (token, id, qty, code) = (t(&o.token), o.id.get(), o.qty.tonnes(), self.code(o.instrument));
                format!(
                    "accepted {token} ref={id} {} {qty} {code} @ {}{}",
                    side(o.side),
                    Self::price(o.wire_price),
                    block(o.method)
                )
            }
            Event::Rejected { token, reason, .. } => {
                format!("rejected {} {}", t(token), reason.letter() as char)
            }
            Event::Replaced { order: o, previous_token } => {
                let (token, was, id, qty) = (t(&o.token), t(previous_token), o.id.get(), o.qty.tonnes());
                format!("replaced {token} (was {was}) ref={id} {qty} @ {}", Self::price(o.wire_price))
            }
            Event::Executed(x) => {
                let (m, k, code) = (&x.maker, &x.taker, self.code(x.instrument));
                let parties =
                    format!("maker={}(ref={}) taker={}(ref={})", t(&m.token), m.id.get(), t(&k.token), k.id.get());
                format!(
                    "executed #{} {code} {} @ {} {parties}{}",
                    x.match_id.get(),
                    x.qty.tonnes(),
                    x.price,
                    block(x.method)
                )
            }
            Event::Cancelled { token, id, decrement, reason, .. } => {
                format!("cancelled {} ref={} -{} {}", t(token), id.get(), decrement.tonnes(), reason.letter() as char)
            }
            Event::CancelRejected { token, .. } => format!("cancel-rejected {}", t(token)),
            other => format!("{other:?}"),
        }
    }

    /// `HH:MM:SS` local time of a timestamp.
    fn clock_time(t: Timestamp) -> String {
        let secs = (t.nanos() / 1_000_000_000 + 8 * 3600) % 86_400;
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    }

    fn show_auction(&self, e: &Event) -> String {
        let pricing = |p: Pricing| if p == Pricing::Uniform { "uniform" } else { "pay-as-bid" };
        match e {
            Event::AuctionAnnounced(a) => {
                let (start, end) = (Self::clock_time(a.start), Self::clock_time(a.end));
                format!(
                    "auction {} announced ref={} sell {} {} acct={} user={} {start}..{end} {} floor={} cap={}",
                    a.id,
                    a.order_id.get(),
                    a.qty.tonnes(),
                    self.code(a.instrument),
                    a.seller.get(),
                    a.seller_user.get(),
                    pricing(a.pricing),
                    a.floor,
                    a.cap
                )
            }
            Event::AuctionRefused { id, reason } => format!("auction {id} refused {}", reason.letter() as char),
            Event::AuctionResult(r) => {
                let price = r.price.map_or("-".to_string(), |p| p.to_string());
                let turnover = format!("{}.{:02}", r.turnover / 100, r.turnover % 100);
                let (sold, offered, code) = (r.sold.tonnes(), r.offered.tonnes(), self.code(r.instrument));
                format!(
                    "auction {} {} {code} sold {sold} of {offered} @ {price} {} winners={} bids={} turnover={turnover}",
                    r.id,
                    if r.expired { "expired" } else { "result" },
                    pricing(r.pricing),
                    r.winners,
                    r.bids
                )
            }
            other => format!("{other:?}"),
        }
    }

    fn show_book(&self, e: &Event) -> String {
        let side = |s: Side| if s == Side::Buy { "buy" } else { "sell" };
        match *e {
            Event::BookAdd { instrument, id, side: s, qty, price } => {
                format!("book add {} ref={} {} {} @ {price}", self.code(instrument), id.get(), side(s), qty.tonnes())
            }
            Event::BookReduce { instrument, id, cancelled } => {
                format!("book reduce {} ref={} -{}", self.code(instrument), id.get(), cancelled.tonnes())
            }
            Event::BookDelete { instrument, id } => {
                format!("book delete {} ref={}", self.code(instrument), id.get())
            }
            Event::BookReplace { instrument, old, new, qty, price } => {
                let (code, old, new) = (self.code(instrument), old.get(), new.get());
                format!("book replace {code} ref={old} -> ref={new} {} @ {price}", qty.tonnes())
            }
            ref other => format!("{other:?}"),
        }
    }

    /// Statistics always (those without trades only with `show=day`);
    /// phases, states and references only with `show=day`.
    fn show_day(&self, e: &Event) -> Option<String> {
        match e {
            Event::DailyStats(s) if s.volume > 0 || self.show_day => {
                let method = match s.method {
                    Method::Listing => "listing",
                    Method::Block => "block",
                    Method::Auction => "auction",
                };
                let turnover = format!("{}.{:02}", s.turnover / 100, s.turnover % 100);
                let prices = format!("open={} high={} low={} close={}", s.open, s.high, s.low, s.close);
                Some(format!(
                    "stats {} {method} {prices} volume={} turnover={turnover}",
                    self.code(s.instrument),
                    s.volume
                ))
            }
            _ if !self.show_day => None,
            Event::Phase(p) => Some(format!("phase {p:?}")),
            Event::TradingState { instrument, state } => Some(format!("state {} {state:?}", self.code(*instrument))),
            Event::Reference(r) => {
                Some(format!("reference {} {} band {}..{}", self.code(r.instrument), r.reference, r.lower, r.upper))
            }
            _ => None,
        }
    }
}

/// Runs one file; returns the file as it should read (expectations from the engine).
fn run_file(path: &Path) -> Result<(String, Vec<String>), GoldenError> {
    let text = std::fs::read_to_string(path)?;
    let lines: Vec<&str> = text.lines().collect();
    let config: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("config ")).collect();
    let (engine, show_day) = parse_config(&config)?;
    let codes = engine.instruments().to_vec();
    let mut session = Session { engine, codes, now: (DAY0 as u64 + 10 * 3600) * 1_000_000_000, show_day };
    let (mut rewritten, mut failures, mut actual) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line == "----" {
            rewritten.push(line.to_string());
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim().is_empty() {
                end += 1;
            }
            let expected: Vec<&str> = lines[start..end].to_vec();
            if expected != actual.iter().map(String::as_str).collect::<Vec<_>>() {
                failures.push(format!(
                    "{}:{}: expected\n  {}\ngot\n  {}",
                    path.display(),
                    i + 1,
                    expected.join("\n  "),
                    actual.join("\n  ")
                ));
            }
            rewritten.append(&mut actual);
            i = end;
            continue;
        }
        rewritten.push(line.to_string());
        if !line.trim().is_empty() && !line.starts_with('#') && !line.starts_with("config ") {
            let events = session.run(line).map_err(|e| GoldenError::Line { line: i + 1, source: Box::new(e) })?;
            actual.extend(events);
        }
        i += 1;
    }
    Ok((rewritten.join("\n") + "\n", failures))
}

#[test]
fn a_bad_line_says_which_field_or_word() {
    let (engine, show_day) = parse_config(&["config stp=cancel-oldest"]).unwrap();
    let codes = engine.instruments().to_vec();
    let mut session = Session { engine, codes, now: (DAY0 as u64 + 10 * 3600) * 1_000_000_000, show_day };
    let err = session.run("buy b1 CEA ten @ 74.63 acct=1").unwrap_err();
    assert!(matches!(err, GoldenError::Field { field: "qty", .. }), "{err}");
    assert!(matches!(session.run("sell s1 CEA 1 @ 74.63 acct=x"), Err(GoldenError::Field { field: "acct", .. })));
    assert!(matches!(session.run("launch A1"), Err(GoldenError::Command(_))));
    assert!(matches!(session.run("show acct=1"), Err(GoldenError::Show(_))));
    assert!(matches!(parse_config(&["config stp=sideways"]), Err(GoldenError::Setting(_))));
}

#[test]
fn golden_rule_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "golden files missing in {}", dir.display());
    let rewrite = std::env::var("GOLDEN_REWRITE").is_ok();
    let mut failures = Vec::new();
    for path in &files {
        let (rewritten, file_failures) = run_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if rewrite {
            std::fs::write(path, rewritten).unwrap();
        } else {
            failures.extend(file_failures);
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) differ:\n\n{}", failures.len(), failures.join("\n\n"));
}
