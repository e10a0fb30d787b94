//! Engine events to ITCH 5.0 messages, as PROTOCOL §7.3 and §7.4 map them. Pure: the
//! publishers number and send what this produces.
//!
//! | engine event | ITCH |
//! |---|---|
//! | `Reference` (start of day) | (before the first instrument's: System Event `O` start of messages) `R` Stock Directory, then `J` collar: reference = previous close, upper/lower = listing band |
//! | `Phase`: PreOpen / Morning or AllDay / Closed | System Event `S` start of system hours / `Q` start of market hours / `M` end of market hours, then `E` end of system hours and `C` end of messages |
//! | `TradingState` | `H`: `T` trading, `P` paused (lunch, pre-open), `H` halted |
//! | `BookAdd`, `BookReduce`, `BookDelete`, `BookReplace` | `A`, `X`, `D`, `U` |
//! | `Executed` listing / block or auction | `E` on the maker's reference / `P` (reference 0, side `B`) |
//! | `AuctionResult` with a sale | `Q` Cross Trade: shares sold, uniform or average price, match 0, cross type `I` (before the auction's `P`s) |
//! | `DailyStats` listing (at the close) | `Q` Cross Trade: shares 0, official close, match 0, cross type `C` |
//!
//! Order-entry events (accepted, rejected, replaced, cancelled) have no
//! market-data message of their own: the book events carry what the public
//! sees, and accounts never appear.

use crate::itch::{
    AddOrder, CrossTrade, Header, LuldAuctionCollar, Message, OrderCancel, OrderDelete, OrderExecuted, OrderReplace,
    StockDirectory, StockTradingAction, SystemEvent, Trade,
};
use carbonx_engine::{Event, InstrumentId, Method, Phase, Side, StockCode, TradingState};

/// Translates engine events for one market's directory.
pub struct Translator {
    stocks: Vec<[u8; 8]>,
}

impl Translator {
    /// A translator for the instruments in directory order (`Engine::instruments()`).
    pub fn new(instruments: &[StockCode]) -> Translator {
        Translator { stocks: instruments.iter().map(|c| *c.bytes()).collect() }
    }

    fn stock(&self, instrument: InstrumentId) -> [u8; 8] {
        self.stocks.get(instrument.index()).copied().unwrap_or([b' '; 8])
    }

    /// Learns an instrument listed at a roll (RULES §1.3) from the new
    /// day's reference, which names it: call before [`Translator::translate`].
    pub fn learn(&mut self, event: &Event) {
        let Event::Reference(r) = event else { return };
        let (index, known) = (r.instrument.index(), self.stocks.len());
        if index < known {
            self.stocks[index] = *r.stock.bytes();
        } else if index == known {
            self.stocks.push(*r.stock.bytes());
        }
    }

    /// The ITCH messages of one event at `ns` nanoseconds after local midnight.
    pub fn translate(&self, event: &Event, ns: u64, emit: &mut impl FnMut(Message)) {
        let header = |i: InstrumentId| Header::new(i.index() as u16 + 1, ns);
        match *event {
            Event::Reference(r) => {
                if r.instrument.index() == 0 {
                    // The day's first message: the engine starts each day with the references.
                    emit(SystemEvent { header: Header::new(0, ns), event_code: SystemEvent::START_OF_MESSAGES }.into());
                }
                let stock = *r.stock.bytes();
                emit(StockDirectory::carbon(header(r.instrument), stock).into());
                let (reference_price, upper_price, lower_price) =
                    (r.reference.to_wire(), r.upper.to_wire(), r.lower.to_wire());
                let collar = LuldAuctionCollar {
                    header: header(r.instrument),
                    stock,
                    reference_price,
                    upper_price,
                    lower_price,
                    extension: 0,
                };
                emit(collar.into());
            }
            Event::Phase(phase) => {
                if let Some(event_code) = system_event(phase) {
                    emit(SystemEvent { header: Header::new(0, ns), event_code }.into());
                }
                if phase == Phase::Closed {
                    // Nothing follows the close until the next day: end of system hours, end of messages.
                    for event_code in [SystemEvent::END_OF_SYSTEM_HOURS, SystemEvent::END_OF_MESSAGES] {
                        emit(SystemEvent { header: Header::new(0, ns), event_code }.into());
                    }
                }
            }
            Event::TradingState { instrument, state } => {
                let trading_state = match state {
                    TradingState::Trading => StockTradingAction::TRADING,
                    TradingState::Paused => StockTradingAction::PAUSED,
                    TradingState::Halted => StockTradingAction::HALTED,
                };
                let h = header(instrument);
                emit(
                    StockTradingAction {
                        header: h,
                        stock: self.stock(instrument),
                        trading_state,
                        reserved: b' ',
                        reason: *b"    ",
                    }
                    .into(),
                );
            }
            _ => self.translate_book(event, ns, emit),
        }
    }

    fn translate_book(&self, event: &Event, ns: u64, emit: &mut impl FnMut(Message)) {
        let header = |i: InstrumentId| Header::new(i.index() as u16 + 1, ns);
        match *event {
            Event::BookAdd { instrument, id, side, qty, price } => {
                let side = if side == Side::Buy { AddOrder::BUY } else { AddOrder::SELL };
                let (order_ref, shares, stock, price) =
                    (id.get(), qty.tonnes(), self.stock(instrument), price.to_wire());
                emit(AddOrder { header: header(instrument), order_ref, side, shares, stock, price }.into());
            }
            Event::BookReduce { instrument, id, cancelled } => {
                emit(
                    OrderCancel { header: header(instrument), order_ref: id.get(), shares: cancelled.tonnes() }.into(),
                );
            }
            Event::BookDelete { instrument, id } => {
                emit(OrderDelete { header: header(instrument), order_ref: id.get() }.into())
            }
            Event::BookReplace { instrument, old, new, qty, price } => {
                let (original_ref, new_ref, shares, price) = (old.get(), new.get(), qty.tonnes(), price.to_wire());
                emit(OrderReplace { header: header(instrument), original_ref, new_ref, shares, price }.into());
            }
            Event::Executed(x) if x.method != Method::Listing => {
                let (shares, stock, price, match_number) =
                    (x.qty.tonnes(), self.stock(x.instrument), x.price.to_wire(), x.match_id.get());
                emit(
                    Trade {
                        header: header(x.instrument),
                        order_ref: 0,
                        side: b'B',
                        shares,
                        stock,
                        price,
                        match_number,
                    }
                    .into(),
                );
            }
            Event::Executed(x) => {
                let (order_ref, shares, match_number) = (x.maker.id.get(), x.qty.tonnes(), x.match_id.get());
                emit(OrderExecuted { header: header(x.instrument), order_ref, shares, match_number }.into());
            }
            Event::AuctionResult(r) => {
                if let Some(price) = r.price {
                    let cross = CrossTrade {
                        header: header(r.instrument),
                        shares: u64::from(r.sold.tonnes()),
                        stock: self.stock(r.instrument),
                        price: price.to_wire(),
                        match_number: 0,
                        cross_type: CrossTrade::INTRADAY,
                    };
                    emit(cross.into());
                }
            }
            Event::DailyStats(s) if s.method == Method::Listing => {
                let (stock, price) = (self.stock(s.instrument), s.close.to_wire());
                let cross = CrossTrade {
                    header: header(s.instrument),
                    shares: 0,
                    stock,
                    price,
                    match_number: 0,
                    cross_type: CrossTrade::CLOSING,
                };
                emit(cross.into());
            }
            _ => {}
        }
    }
}

/// The System Event code for a phase, if it has one.
fn system_event(phase: Phase) -> Option<u8> {
    match phase {
        Phase::PreOpen => Some(SystemEvent::START_OF_SYSTEM_HOURS),
        Phase::Morning | Phase::AllDay => Some(SystemEvent::START_OF_MARKET_HOURS),
        Phase::Closed => Some(SystemEvent::END_OF_MARKET_HOURS),
        Phase::Lunch | Phase::Afternoon => None,
    }
}
