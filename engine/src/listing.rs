//! Reference data without a restart (RULES §1.3): the operator lists a new
//! instrument or delists one by a journaled command, effective at the next
//! roll. Until then it is only scheduled, so the day's directory, stock
//! locates and every account's holdings stay as they were all day.
//!
//! At the roll a listing joins the directory last (its stock locate is the
//! next free one), with the previous close it was listed with, an empty
//! book and a holding of 0 t in every account; the next day's references
//! (ITCH `R` and `J`) carry it. A delisted instrument keeps its place (the
//! locates of the others never move) and its holdings, is announced halted
//! and rejects new orders `S` from the next day. The directory's room,
//! `market.instruments_max`, is reserved at start; a listing beyond it is
//! refused.

use crate::book::Ladder;
use crate::command::{Delisting, Listing};
use crate::engine::{Book, Engine, Stats};
use crate::event::{Event, EventSink, ReferenceChange, ReferenceRefusal};
use crate::types::{InstrumentId, Price, Side, StockCode};

impl Engine {
    /// Adds a book for `code` at the end of the directory (at start, at the
    /// roll after a listing, in a restore). The caller checked the room.
    pub(crate) fn push_book(&mut self, code: StockCode, prev_close: Price) -> InstrumentId {
        let instrument = InstrumentId::new(u8::try_from(self.books.len()).expect("instruments_max <= 64"));
        let (lower, upper) = self.listing_band(prev_close);
        self.codes.push(code);
        self.books.push(Book {
            instrument,
            reference: prev_close,
            lower,
            upper,
            bids: Ladder::new(Side::Buy, lower, upper),
            asks: Ladder::new(Side::Sell, lower, upper),
            halted: false,
            delisted: false,
            announced: None,
            stats: Stats::default(),
            block_stats: Stats::default(),
            auction_stats: Stats::default(),
        });
        instrument
    }

    /// The book new orders for `stock` go to: `None` (reject `S`) for a
    /// code that is not listed or is delisted.
    pub(crate) fn tradable(&self, stock: StockCode) -> Option<InstrumentId> {
        stock.find_in(&self.codes).filter(|i| !self.books[i.index()].delisted)
    }

    /// An operator's listing: refused if the code is taken (listed, delisted
    /// or scheduled) or the directory would pass `instruments_max`.
    pub(crate) fn schedule_listing<O: EventSink>(&mut self, cmd: &Listing, out: &mut O) {
        let taken = cmd.stock.find_in(&self.codes).is_some() || self.pending_listings.iter().any(|l| l.0 == cmd.stock);
        let refusal = if taken {
            Some(ReferenceRefusal::AlreadyListed)
        } else if self.codes.len() + self.pending_listings.len() >= self.config.instruments_max as usize {
            Some(ReferenceRefusal::DirectoryFull)
        } else {
            self.pending_listings.push((cmd.stock, cmd.prev_close));
            None
        };
        let change = ReferenceChange::List(cmd.prev_close);
        out.push(Event::ReferenceData { request: cmd.request, stock: cmd.stock, change, refusal });
    }

    /// An operator's delisting: refused for a code not listed (a scheduled
    /// listing included) or already delisted or scheduled to be.
    pub(crate) fn schedule_delisting<O: EventSink>(&mut self, cmd: &Delisting, out: &mut O) {
        let refusal = match cmd.stock.find_in(&self.codes) {
            None => Some(ReferenceRefusal::UnknownStock),
            Some(i) if self.books[i.index()].delisted || self.pending_delistings.contains(&i) => {
                Some(ReferenceRefusal::AlreadyDelisted)
            }
            Some(i) => {
                self.pending_delistings.push(i);
                None
            }
        };
        let change = ReferenceChange::Delist;
        out.push(Event::ReferenceData { request: cmd.request, stock: cmd.stock, change, refusal });
    }

    /// At the roll, before the next day starts: the scheduled delistings,
    /// then the listings in the order they were made.
    pub(crate) fn apply_reference_changes(&mut self) {
        for k in 0..self.pending_delistings.len() {
            let i = self.pending_delistings[k];
            self.books[i.index()].delisted = true;
        }
        self.pending_delistings.clear();
        for k in 0..self.pending_listings.len() {
            let (code, prev_close) = self.pending_listings[k];
            self.push_book(code, prev_close);
            if let Some(accounts) = &mut self.accounts {
                accounts.add_instrument();
            }
            if let Some((_, holdings)) = &mut self.initial_totals {
                holdings.push(0);
            }
        }
        self.pending_listings.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::accounts::AccountTable;
    use crate::command::{Command, Delisting, Listing};
    use crate::config::EngineConfig;
    use crate::engine::Engine;
    use crate::event::{Event, RejectReason};
    use crate::types::{InstrumentId, Price, Side, StockCode, Timestamp};

    fn engine() -> Engine {
        Engine::with_accounts(EngineConfig::demo(), AccountTable::demo(7, 4)).unwrap()
    }

    fn at(n: u64) -> Timestamp {
        Timestamp::from_nanos(1_795_485_600_000_000_000 + n)
    }

    fn list(code: &str) -> Command {
        let stock = StockCode::from_text(code).unwrap();
        Command::List(Listing { request: 1, stock, prev_close: Price::from_fen(7_000).unwrap() })
    }

    fn cea26_buy(token: &str) -> Command {
        let mut order = Command::demo_order(token, 1, Side::Buy, 10, 7_000);
        if let Command::NewOrder(o) = &mut order {
            o.stock = StockCode::from_text("CEA26").unwrap();
        }
        order
    }

    fn restored(engine: &Engine) -> Engine {
        let json = serde_json::to_string(&engine.snapshot()).unwrap();
        Engine::restore(EngineConfig::demo(), &serde_json::from_str(&json).unwrap()).unwrap()
    }

    #[test]
    fn a_listing_scheduled_before_a_snapshot_takes_effect_at_the_roll_after_the_restore() {
        let mut live = engine();
        let mut out = Vec::new();
        live.apply(&list("CEA26"), at(1), &mut out);
        let delist = Command::Delist(Delisting { request: 2, stock: StockCode::from_text("CEA21").unwrap() });
        live.apply(&delist, at(2), &mut out);
        let mut copy = restored(&live);
        assert_eq!(copy.state_hash(), live.state_hash());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (n, command) in
            [Command::Roll, cea26_buy("n1"), Command::demo_order("n2", 1, Side::Buy, 1, 7_463)].iter().enumerate()
        {
            live.apply(command, at(10 + n as u64), &mut a);
            copy.apply(command, at(10 + n as u64), &mut b);
        }
        assert_eq!(a, b);
        assert_eq!(live.instruments().len(), 8);
        assert!(a.iter().any(|e| matches!(e, Event::Accepted(o) if o.instrument == InstrumentId::new(7))));
        // After the roll a snapshot keeps the listed instrument, its book and the holdings of 0 t.
        let again = restored(&live);
        assert_eq!(again.state_hash(), live.state_hash());
        assert_eq!(again.instruments()[7].to_string(), "CEA26");
        let holding = again.accounts().unwrap().holding(crate::types::AccountId::new(2), InstrumentId::new(7));
        assert_eq!(holding.map(|h| h.owned()), Some(0));
        let delisted = Command::Delist(Delisting { request: 3, stock: StockCode::from_text("CEA21").unwrap() });
        let mut out = Vec::new();
        live.apply(&delisted, at(20), &mut out);
        assert!(matches!(out[..], [Event::ReferenceData { refusal: Some(_), .. }]), "{out:?}");
        let mut order = Command::demo_order("n3", 1, Side::Buy, 1, 7_463);
        if let Command::NewOrder(o) = &mut order {
            o.stock = StockCode::from_text("CEA21").unwrap();
        }
        out.clear();
        live.apply(&order, at(21), &mut out);
        assert!(matches!(out[..], [Event::Rejected { reason: RejectReason::UnknownStock, .. }]), "{out:?}");
    }

    #[test]
    fn a_snapshot_from_before_reference_data_still_restores() {
        let mut live = engine();
        live.apply(&Command::demo_order("o1", 1, Side::Buy, 10, 7_463), at(1), &mut Vec::new());
        let mut json: serde_json::Value = serde_json::to_value(live.snapshot()).unwrap();
        let object = json.as_object_mut().unwrap();
        object.remove("pending_listings");
        object.remove("pending_delistings");
        for book in object["books"].as_array_mut().unwrap() {
            book.as_object_mut().unwrap().remove("delisted");
        }
        let old = serde_json::from_value(json).unwrap();
        assert_eq!(Engine::restore(EngineConfig::demo(), &old).unwrap().state_hash(), live.state_hash());
    }

    #[test]
    fn a_snapshot_whose_directory_is_not_the_configurations_plus_listings_is_refused() {
        let mut live = engine();
        live.apply(&list("CEA26"), at(1), &mut Vec::new());
        live.apply(&Command::Roll, at(2), &mut Vec::new());
        let mut snapshot = live.snapshot();
        snapshot.instruments.swap(0, 1);
        assert!(Engine::restore(EngineConfig::demo(), &snapshot).is_err());
        let mut small = EngineConfig::demo();
        small.instruments_max = 7;
        assert!(Engine::restore(small, &live.snapshot()).is_err(), "8 instruments in a directory of 7");
    }
}
