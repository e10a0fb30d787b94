//! The books a test compares: the engine's resting orders and a feed
//! consumer's, in the same terms (reference → locate, side, shares, price).

use carbonx_engine::{InstrumentId, Side};
use carbonx_feed::book::{BookBuilder, FeedOrder};
use std::collections::BTreeMap;

/// One resting order: locate, side letter, open shares, price.
pub type Resting = (u16, u8, u32, u32);

/// The engine's resting orders in the feed's terms.
pub fn engine_book(engine: &carbonx_engine::Engine) -> BTreeMap<u64, Resting> {
    let mut out = BTreeMap::new();
    for i in 0..engine.instruments().len() {
        for side in [Side::Buy, Side::Sell] {
            for o in engine.resting(InstrumentId::new(i as u8), side) {
                out.insert(o.id.get(), (i as u16 + 1, side.letter(), o.qty.tonnes(), o.price.to_wire()));
            }
        }
    }
    out
}

/// A feed consumer's resting orders.
pub fn feed_book(book: &BookBuilder) -> BTreeMap<u64, Resting> {
    book.orders().into_iter().map(|(r, o): (u64, FeedOrder)| (r, (o.locate, o.side, o.shares, o.price))).collect()
}
