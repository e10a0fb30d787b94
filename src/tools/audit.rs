//! `carbonx replay --events`: what happened to this order, from the journal
//! alone. Every journal record is printed as one JSON line: its sequence
//! number, local date and time, the command and the events it caused
//! (empty when it resent a taken token, which the sequencer ignores).
//! Filters keep the lines that involve an account, a user, a token or an
//! instrument (as the command's sender or as any party of its result: the
//! maker of a fill, the owner of a cancelled order), within a time of day.
//!
//! `--book CODE --at HH:MM:SS` rebuilds a book at a moment the way a feed
//! consumer does: the replayed events go through the feed's translator
//! into its book builder, which is frozen at the first record after the
//! moment.

use crate::serve::sequencer::Publisher;
use carbonx_engine::calendar::{Calendar, yyyymmdd_from_days};
use carbonx_engine::command::MARKET_PRICE;
use carbonx_engine::{AccountId, Command, Engine, Event, InstrumentId, OrderId, Side, StockCode, Timestamp, Token};
use carbonx_engine::{UserId, event::Party};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::translate::Translator;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Parses a time of day, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction`, into
/// nanoseconds since midnight.
pub fn parse_time_of_day(text: &str) -> Option<u64> {
    let (clock, fraction) = text.trim().split_once('.').map_or((text.trim(), None), |(c, f)| (c, Some(f)));
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
        return None;
    }
    let number = |s: &str, max: u64| s.parse::<u64>().ok().filter(|&n| n < max);
    let seconds =
        number(parts[0], 24)? * 3600 + number(parts[1], 60)? * 60 + parts.get(2).map_or(Some(0), |s| number(s, 60))?;
    let nanos = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) && parts.len() == 3 => {
            f.parse::<u64>().ok()? * 10u64.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    Some(seconds * NANOS_PER_SEC + nanos)
}

/// `HH:MM:SS.nnnnnnnnn`.
fn format_time_of_day(nanos: u64) -> String {
    let secs = nanos / NANOS_PER_SEC;
    format!("{:02}:{:02}:{:02}.{:09}", secs / 3600, secs / 60 % 60, secs % 60, nanos % NANOS_PER_SEC)
}

/// Which lines to print: every filter given must hold (for one party of the line).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// An account code (`0001`).
    pub account: Option<String>,
    /// A username (`DEMO01`).
    pub user: Option<String>,
    /// An order token.
    pub token: Option<String>,
    /// An instrument code.
    pub instrument: Option<String>,
    /// From this time of day on (nanoseconds since local midnight), inclusive.
    pub from: Option<u64>,
    /// Before this time of day, exclusive.
    pub to: Option<u64>,
}

/// A book to rebuild: an instrument at a time of day, on a date (default: the last day replayed).
#[derive(Clone, Debug)]
pub struct BookRequest {
    /// Instrument code.
    pub instrument: String,
    /// Nanoseconds since local midnight.
    pub at: u64,
    /// `YYYYMMDD`; `None`: the last date in the journal.
    pub date: Option<u32>,
}

/// One party of a line: who, which order, which book.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Who {
    /// Username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Order token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Account code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The order's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
}

/// A command or an event as printed: its kind, the party, the usual order
/// fields, and `detail` (the full value) for the rest.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Item {
    /// `new_order`, `accepted`, `executed`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Who sent it or whose order it is.
    #[serde(flatten)]
    pub who: Who,
    /// The replacement token (replace, replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_token: Option<String>,
    /// Instrument code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// `buy` or `sell` (a fill: the taker's side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<&'static str>,
    /// Tonnes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<u64>,
    /// Yuan, or `market`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// A fill's resting side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maker: Option<Who>,
    /// A fill's incoming side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taker: Option<Who>,
    /// Why (rejects, cancels, refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every field, as the engine names them.
    pub detail: String,
}

/// One journal record and its result.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Line {
    /// Journal sequence number (restarts at 1 after each roll).
    pub seq: u64,
    /// Local date, `YYYYMMDD`.
    pub date: u32,
    /// Local time of day, `HH:MM:SS.nnnnnnnnn`.
    pub time: String,
    /// What was journaled.
    pub command: Item,
    /// The events it caused, in order.
    pub result: Vec<Item>,
    #[serde(skip)]
    time_of_day: u64,
}

/// Names for the engine's numbers: users, accounts, instruments.
pub struct Names {
    users: Vec<String>,
    accounts: Vec<String>,
    instruments: Vec<String>,
}

impl Names {
    /// The names of `engine`'s accounts and instruments and of `users` (in configuration order).
    pub fn new(engine: &Engine, users: Vec<String>) -> Names {
        let accounts = engine.accounts().map_or_else(Vec::new, |table| {
            (0..table.len() as u32)
                .map(|n| table.code(AccountId::new(n)).map_or_else(String::new, |c| String::from_utf8_lossy(c).into()))
                .collect()
        });
        Names { users, accounts, instruments: engine.instruments().iter().map(ToString::to_string).collect() }
    }

    fn user(&self, user: UserId) -> String {
        self.users.get(usize::from(user.get())).cloned().unwrap_or_else(|| format!("#{}", user.get()))
    }

    fn account(&self, account: AccountId) -> String {
        self.accounts.get(account.get() as usize).cloned().unwrap_or_else(|| format!("#{}", account.get()))
    }

    fn instrument(&self, instrument: InstrumentId) -> String {
        self.instruments.get(instrument.index()).cloned().unwrap_or_else(|| format!("#{}", instrument.index()))
    }
}

fn token(token: &Token) -> String {
    format!("{token:?}")
}

fn stock(code: &StockCode) -> String {
    code.to_string()
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// A wire price (four implied decimals) in yuan.
fn wire_price(price: u32) -> String {
    match price {
        MARKET_PRICE => "market".to_string(),
        p if p % 100 == 0 => format!("{}.{:02}", p / 10_000, p / 100 % 100),
        p => format!("{}.{:04}", p / 10_000, p % 10_000),
    }
}

impl Names {
    fn who(&self, user: UserId, token: &Token, account: AccountId) -> Who {
        Who {
            user: Some(self.user(user)),
            token: Some(self::token(token)),
            account: Some(self.account(account)),
            order: None,
        }
    }

    fn sender(&self, user: UserId, token: &Token) -> Who {
        Who { user: Some(self.user(user)), token: Some(self::token(token)), ..Who::default() }
    }

    fn party(&self, party: &Party) -> Who {
        Who { order: Some(party.id.get()), ..self.who(party.user, &party.token, party.account) }
    }

    /// A command as printed.
    pub fn command(&self, command: &Command) -> Item {
        let item = Item { detail: format!("{command:?}"), ..Item::default() };
        self.order_command(command, item.clone()).unwrap_or_else(|| self.other_command(command, item))
    }

    /// An order's command: entry, cancel, replace, block, pick.
    fn order_command(&self, command: &Command, item: Item) -> Option<Item> {
        Some(match command {
            Command::NewOrder(o) => Item {
                kind: "new_order",
                who: self.who(o.user, &o.token, o.account),
                instrument: Some(stock(&o.stock)),
                side: Some(side(o.side)),
                qty: Some(o.qty.tonnes().into()),
                price: Some(wire_price(o.price)),
                ..item
            },
            Command::Cancel(c) => {
                Item { kind: "cancel", who: self.sender(c.user, &c.token), qty: Some(c.qty.tonnes().into()), ..item }
            }
            Command::Replace(r) => Item {
                kind: "replace",
                who: self.sender(r.user, &r.token),
                other_token: Some(token(&r.new_token)),
                qty: Some(r.qty.tonnes().into()),
                price: Some(wire_price(r.price)),
                ..item
            },
            Command::NewBlock(b) => Item {
                kind: "block",
                who: self.who(b.user, &b.token, b.account),
                instrument: Some(stock(&b.stock)),
                side: Some(side(b.side)),
                qty: Some(b.qty.tonnes().into()),
                price: Some(wire_price(b.price)),
                ..item
            },
            Command::Pick(p) => Item {
                kind: "pick",
                who: Who { order: Some(p.target.get()), ..self.who(p.user, &p.token, p.account) },
                instrument: Some(stock(&p.stock)),
                side: Some(side(p.side)),
                qty: Some(p.qty.tonnes().into()),
                ..item
            },
            _ => return None,
        })
    }

    /// Any other command: the clock, the operator's, the gateway's, auctions
    /// (and, as `other`, one added later).
    fn other_command(&self, command: &Command, item: Item) -> Item {
        match command {
            Command::Clock => Item { kind: "clock", ..item },
            Command::Roll => Item { kind: "roll", ..item },
            Command::Halt(i) => Item { kind: "halt", instrument: Some(self.instrument(*i)), ..item },
            Command::Resume(i) => Item { kind: "resume", instrument: Some(self.instrument(*i)), ..item },
            Command::CancelAccount(a) => {
                Item { kind: "cancel_account", who: Who { account: Some(self.account(*a)), ..Who::default() }, ..item }
            }
            Command::CancelUser(u) => {
                Item { kind: "cancel_user", who: Who { user: Some(self.user(*u)), ..Who::default() }, ..item }
            }
            Command::Transfer(t) => {
                Item { kind: "transfer", who: Who { account: Some(self.account(t.account)), ..Who::default() }, ..item }
            }
            Command::Reject(g) => Item {
                kind: "gateway_reject",
                who: self.sender(g.user, &g.token),
                reason: Some(format!("{:?}", g.reason)),
                ..item
            },
            Command::AnnounceAuction(a) => Item {
                kind: "announce_auction",
                who: Who {
                    user: Some(self.user(a.seller_user)),
                    account: Some(self.account(a.seller)),
                    ..Who::default()
                },
                instrument: Some(stock(&a.stock)),
                qty: Some(a.qty.tonnes().into()),
                ..item
            },
            Command::AuctionBid(b) => Item {
                kind: "auction_bid",
                who: self.who(b.user, &b.token, b.account),
                qty: Some(b.qty.tonnes().into()),
                ..item
            },
            _ => Item { kind: "other", ..item },
        }
    }

    /// An event as printed (without the owner of a bare order reference: see [`Orders`]).
    pub fn event(&self, event: &Event) -> Item {
        let item = Item { detail: format!("{event:?}"), ..Item::default() };
        self.order_event(event, item.clone())
            .or_else(|| self.book_event(event, item.clone()))
            .unwrap_or_else(|| self.market_event(event, item))
    }

    /// What a user sees of an order: accepted, rejected, filled, cancelled.
    fn order_event(&self, event: &Event, item: Item) -> Option<Item> {
        let on = |i: InstrumentId| Some(self.instrument(i));
        Some(match event {
            Event::Accepted(o) | Event::Replaced { order: o, .. } => Item {
                kind: if matches!(event, Event::Accepted(_)) { "accepted" } else { "replaced" },
                who: Who { order: Some(o.id.get()), ..self.who(o.user, &o.token, o.account) },
                other_token: match event {
                    Event::Replaced { previous_token, .. } => Some(token(previous_token)),
                    _ => None,
                },
                instrument: on(o.instrument),
                side: Some(side(o.side)),
                qty: Some(o.qty.tonnes().into()),
                price: Some(wire_price(o.wire_price)),
                ..item
            },
            Event::Rejected { user, token, reason } => {
                Item { kind: "rejected", who: self.sender(*user, token), reason: Some(format!("{reason:?}")), ..item }
            }
            Event::Executed(x) => Item {
                kind: "executed",
                instrument: on(x.instrument),
                side: Some(side(x.taker_side)),
                qty: Some(x.qty.tonnes().into()),
                price: Some(x.price.to_string()),
                maker: Some(self.party(&x.maker)),
                taker: Some(self.party(&x.taker)),
                ..item
            },
            Event::Cancelled { user, token, id, decrement, reason } => Item {
                kind: "cancelled",
                who: Who { order: Some(id.get()), ..self.sender(*user, token) },
                qty: Some(decrement.tonnes().into()),
                reason: Some(format!("{reason:?}")),
                ..item
            },
            Event::CancelRejected { user, token } => {
                Item { kind: "cancel_rejected", who: self.sender(*user, token), ..item }
            }
            _ => return None,
        })
    }

    /// What the feed shows of an order.
    fn book_event(&self, event: &Event, item: Item) -> Option<Item> {
        let on = |i: InstrumentId| Some(self.instrument(i));
        let order = |id: OrderId| Who { order: Some(id.get()), ..Who::default() };
        Some(match event {
            Event::BookAdd { instrument, id, side: s, qty, price } => Item {
                kind: "book_add",
                who: order(*id),
                instrument: on(*instrument),
                side: Some(side(*s)),
                qty: Some(qty.tonnes().into()),
                price: Some(price.to_string()),
                ..item
            },
            Event::BookReduce { instrument, id, cancelled } => Item {
                kind: "book_reduce",
                who: order(*id),
                instrument: on(*instrument),
                qty: Some(cancelled.tonnes().into()),
                ..item
            },
            Event::BookDelete { instrument, id } => {
                Item { kind: "book_delete", who: order(*id), instrument: on(*instrument), ..item }
            }
            Event::BookReplace { instrument, new, qty, price, .. } => Item {
                kind: "book_replace",
                who: order(*new),
                instrument: on(*instrument),
                qty: Some(qty.tonnes().into()),
                price: Some(price.to_string()),
                ..item
            },
            _ => return None,
        })
    }

    /// The market's and the operator's events (and, as `other`, one added later).
    fn market_event(&self, event: &Event, item: Item) -> Item {
        let on = |i: InstrumentId| Some(self.instrument(i));
        match event {
            Event::Phase(_) => Item { kind: "phase", ..item },
            Event::TradingState { instrument, .. } => {
                Item { kind: "trading_state", instrument: on(*instrument), ..item }
            }
            Event::DailyStats(s) => Item { kind: "daily_stats", instrument: on(s.instrument), ..item },
            Event::Reference(r) => {
                Item { kind: "reference", instrument: on(r.instrument), price: Some(r.reference.to_string()), ..item }
            }
            Event::Transferred { transfer, .. } => Item {
                kind: "transferred",
                who: Who { account: Some(self.account(transfer.account)), ..Who::default() },
                ..item
            },
            Event::AuctionAnnounced(a) => Item {
                kind: "auction_announced",
                who: Who {
                    user: Some(self.user(a.seller_user)),
                    account: Some(self.account(a.seller)),
                    order: Some(a.order_id.get()),
                    ..Who::default()
                },
                instrument: on(a.instrument),
                qty: Some(a.qty.tonnes().into()),
                ..item
            },
            Event::AuctionRefused { reason, .. } => {
                Item { kind: "auction_refused", reason: Some(format!("{reason:?}")), ..item }
            }
            Event::AuctionResult(r) => Item { kind: "auction_result", instrument: on(r.instrument), ..item },
            _ => Item { kind: "other", ..item },
        }
    }
}

/// Who owns each order reference seen so far, so that an event naming only
/// the reference (a book change, a cancel) names its account and book too.
/// Kept as numbers (24 bytes an order), not names: a day has millions.
#[derive(Default)]
struct Orders(HashMap<u64, Owner>);

/// An order's owner and book.
#[derive(Clone, Copy)]
struct Owner {
    user: UserId,
    token: Token,
    account: AccountId,
    instrument: Option<InstrumentId>,
}

impl Orders {
    fn learn(&mut self, event: &Event) {
        let (id, owner) = match event {
            Event::Accepted(o) | Event::Replaced { order: o, .. } => {
                (o.id, Owner { user: o.user, token: o.token, account: o.account, instrument: Some(o.instrument) })
            }
            Event::AuctionAnnounced(a) => {
                let owner = Owner {
                    user: a.seller_user,
                    token: Token::from_bytes([b' '; 14]),
                    account: a.seller,
                    instrument: Some(a.instrument),
                };
                (a.order_id, owner)
            }
            _ => return,
        };
        self.0.insert(id.get(), owner);
    }

    fn complete(&self, item: &mut Item, names: &Names) {
        let Some(owner) = item.who.order.and_then(|id| self.0.get(&id)) else {
            return;
        };
        let who = &mut item.who;
        who.user = who.user.take().or_else(|| Some(names.user(owner.user)));
        if owner.token.bytes() != &[b' '; 14] {
            who.token = who.token.take().or_else(|| Some(token(&owner.token)));
        }
        who.account = who.account.take().or_else(|| Some(names.account(owner.account)));
        item.instrument = item.instrument.take().or_else(|| owner.instrument.map(|i| names.instrument(i)));
    }
}

impl Filter {
    /// True when some party of `line` matches every party filter, and its time is in range.
    pub fn keeps(&self, line: &Line) -> bool {
        let t = line.time_of_day;
        if self.from.is_some_and(|from| t < from) || self.to.is_some_and(|to| t >= to) {
            return false;
        }
        std::iter::once(&line.command).chain(&line.result).any(|item| self.matches(item))
    }

    fn matches(&self, item: &Item) -> bool {
        if !eq(self.instrument.as_ref(), item.instrument.as_ref()) {
            return false;
        }
        let tokens = |who: &Who, other: Option<&String>| {
            self.token.as_ref().is_none_or(|t| who.token.as_ref() == Some(t) || other == Some(t))
        };
        let party = |who: &Who, other: Option<&String>| {
            eq(self.account.as_ref(), who.account.as_ref())
                && eq(self.user.as_ref(), who.user.as_ref())
                && tokens(who, other)
        };
        party(&item.who, item.other_token.as_ref())
            || item.maker.as_ref().is_some_and(|m| party(m, None))
            || item.taker.as_ref().is_some_and(|t| party(t, None))
    }
}

/// A filter value (if any) equals the item's.
fn eq(wanted: Option<&String>, found: Option<&String>) -> bool {
    wanted.is_none_or(|w| found == Some(w))
}

/// A rebuilt book at a moment: best first, as the feed shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct BookView {
    /// Instrument code.
    pub instrument: String,
    /// The date it was taken on, `YYYYMMDD`.
    pub date: u32,
    /// The moment, `HH:MM:SS.nnnnnnnnn`.
    pub at: String,
    /// Bids, highest first.
    pub bids: Vec<LevelView>,
    /// Asks, lowest first.
    pub asks: Vec<LevelView>,
}

/// One level of a [`BookView`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LevelView {
    /// Yuan.
    pub price: String,
    /// Tonnes.
    pub qty: u64,
    /// Orders at this price.
    pub orders: u32,
}

/// Rebuilds one book through the feed's translator and book builder.
struct BookAt {
    request: BookRequest,
    locate: u16,
    translator: Translator,
    builder: BookBuilder,
    /// The book at `request.at` of each date seen.
    taken: BTreeMap<u32, BookView>,
    date: Option<u32>,
}

impl BookAt {
    fn view(&self, date: u32) -> BookView {
        let levels = |side| {
            self.builder
                .top(self.locate, side, usize::MAX)
                .into_iter()
                .map(|l| LevelView { price: wire_price(l.price), qty: l.shares, orders: l.orders })
                .collect()
        };
        BookView {
            instrument: self.request.instrument.clone(),
            date,
            at: format_time_of_day(self.request.at),
            bids: levels(b'B'),
            asks: levels(b'S'),
        }
    }

    /// A record of `date` at `time_of_day` is about to apply: take the book
    /// of a day that ended, or of this day once its moment has passed.
    fn before(&mut self, date: u32, time_of_day: u64) {
        if let Some(previous) = self.date.filter(|&d| d != date) {
            self.take(previous);
        }
        self.date = Some(date);
        if time_of_day > self.request.at {
            self.take(date);
        }
    }

    fn take(&mut self, date: u32) {
        if !self.taken.contains_key(&date) {
            let view = self.view(date);
            self.taken.insert(date, view);
        }
    }

    fn apply(&mut self, events: &[Event]) {
        for event in events {
            let builder = &mut self.builder;
            self.translator.translate(event, 0, &mut |message| builder.apply_unsequenced(&message));
        }
    }

    /// The book asked for: on the requested date, else the last one replayed.
    fn finish(mut self) -> Option<BookView> {
        if let Some(date) = self.date {
            self.take(date);
        }
        match self.request.date {
            Some(date) => self.taken.remove(&date),
            None => self.taken.pop_last().map(|(_, view)| view),
        }
    }
}

/// What the audit prints to: the filtered lines, and the book when asked.
pub struct Audit {
    names: Names,
    calendar: Calendar,
    filter: Filter,
    orders: Orders,
    pending: Option<Line>,
    book: Option<BookAt>,
    out: Box<dyn Write>,
    /// The first write error (a closed pipe): printing stops there.
    failed: Option<std::io::Error>,
    /// Lines printed.
    pub printed: u64,
}

/// A book to rebuild, from the replay's starting state.
pub struct BookSeed(BookAt);

/// Why a book cannot be rebuilt.
#[derive(Debug, thiserror::Error)]
#[error("no instrument {0:?} in this market")]
pub struct UnknownInstrument(pub String);

impl Audit {
    /// An audit of `engine`'s market printing JSON lines to `out`.
    pub fn new(engine: &Engine, names: Names, filter: Filter, out: Box<dyn Write>) -> Audit {
        let calendar = Calendar::new(engine.config());
        Audit {
            names,
            calendar,
            filter,
            orders: Orders::default(),
            pending: None,
            book: None,
            out,
            failed: None,
            printed: 0,
        }
    }

    /// Rebuilds `book` instead of printing lines.
    pub fn rebuild_book(&mut self, book: BookSeed) {
        self.book = Some(book.0);
    }

    /// The book `request` asks for, holding `engine`'s resting orders (the
    /// restored snapshot's), as a feed snapshot would.
    ///
    /// # Errors
    /// The market has no such instrument.
    pub fn book_seed(engine: &Engine, request: BookRequest) -> Result<BookSeed, UnknownInstrument> {
        let index = engine.instruments().iter().position(|c| c.to_string() == request.instrument);
        let instrument = index
            .and_then(|i| u8::try_from(i).ok())
            .map(InstrumentId::new)
            .ok_or_else(|| UnknownInstrument(request.instrument.clone()))?;
        let mut book = BookAt {
            locate: instrument.index() as u16 + 1,
            translator: Translator::new(engine.instruments()),
            builder: BookBuilder::new(),
            taken: BTreeMap::new(),
            date: None,
            request,
        };
        for s in [Side::Buy, Side::Sell] {
            let resting: Vec<Event> = engine
                .resting(instrument, s)
                .map(|o| Event::BookAdd { instrument, id: o.id, side: o.side, qty: o.qty, price: o.price })
                .collect();
            book.apply(&resting);
        }
        Ok(BookSeed(book))
    }

    fn print_pending(&mut self) {
        let Some(line) = self.pending.take() else { return };
        if self.book.is_some() || self.failed.is_some() || !self.filter.keeps(&line) {
            return;
        }
        let text = serde_json::to_string(&line).expect("a line serialises");
        match writeln!(self.out, "{text}") {
            Ok(()) => self.printed += 1,
            Err(err) => self.failed = Some(err),
        }
    }

    /// Prints the last line; the book asked for (if any); the first write error.
    ///
    /// # Errors
    /// Writing failed.
    pub fn finish(&mut self) -> Result<Option<BookView>, std::io::Error> {
        self.print_pending();
        match self.failed.take() {
            // `carbonx replay --events | head`: the reader had enough.
            Some(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(None),
            Some(err) => return Err(err),
            None => {}
        }
        self.out.flush()?;
        Ok(self.book.take().and_then(BookAt::finish))
    }
}

impl Publisher for Audit {
    fn replaying(&mut self, seq: u64, timestamp: Timestamp, command: &Command) {
        self.print_pending();
        let (day, _) = self.calendar.local(timestamp);
        let (date, time_of_day) = (yyyymmdd_from_days(day), self.calendar.nanos_since_midnight(timestamp));
        if let Some(book) = &mut self.book {
            book.before(date, time_of_day);
        }
        let command = self.names.command(command);
        let time = format_time_of_day(time_of_day);
        self.pending = Some(Line { seq, date, time, command, result: Vec::new(), time_of_day });
    }

    fn publish(&mut self, _now: Timestamp, events: &[Event]) {
        if let Some(book) = &mut self.book {
            book.apply(events);
        }
        let Some(line) = &mut self.pending else { return };
        for event in events {
            let mut item = self.names.event(event);
            self.orders.complete(&mut item, &self.names);
            self.orders.learn(event);
            line.result.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_parse_to_nanoseconds_and_bad_ones_do_not() {
        assert_eq!(parse_time_of_day("09:30"), Some(34_200 * NANOS_PER_SEC));
        assert_eq!(parse_time_of_day("09:30:05"), Some(34_205 * NANOS_PER_SEC));
        assert_eq!(parse_time_of_day("09:30:05.25"), Some(34_205 * NANOS_PER_SEC + 250_000_000));
        for bad in ["24:00", "9", "09:60", "09:30:61", "09:30.5", "x:00", "09:30:00.1234567890", ""] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
        assert_eq!(format_time_of_day(34_205 * NANOS_PER_SEC + 250_000_000), "09:30:05.250000000");
    }

    #[test]
    fn wire_prices_print_in_yuan() {
        assert_eq!(wire_price(750_000), "75.00");
        assert_eq!(wire_price(750_050), "75.0050");
        assert_eq!(wire_price(MARKET_PRICE), "market");
    }
}
