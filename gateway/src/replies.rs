//! Engine events to each user's OUCH messages. Pure: the hub numbers and
//! stores what this produces. Events carry the user and token of every
//! party, so routing needs no state but the directory.

use crate::config::Directory;
use crate::ouch::{Accepted, Executed, Outbound, Replaced};
use carbonx_engine::{Event, Method, OrderInfo, Phase, StockCode, UserId};

/// Translates events for one market.
pub struct Replies<'a> {
    /// Users and account codes.
    pub directory: &'a Directory,
    /// Instrument codes in directory order.
    pub stocks: &'a [StockCode],
}

impl Replies<'_> {
    /// The OUCH messages of `event` at `ns` nanoseconds after local
    /// midnight, each with the user whose stream it belongs to. Day phases
    /// go to every user: `S` start of day at the day's first phase, `E` end
    /// of day at the close.
    pub fn translate(&self, event: &Event, ns: u64, day_started: &mut bool, emit: &mut impl FnMut(UserId, Outbound)) {
        match event {
            Event::Accepted(o) => emit(o.user, Outbound::Accepted(self.accepted(o, ns))),
            Event::Replaced { order, previous_token } => {
                let replaced = Replaced { order: self.accepted(order, ns), previous_token: *previous_token.bytes() };
                emit(order.user, Outbound::Replaced(replaced));
            }
            Event::Executed(e) => {
                let (maker_flag, taker_flag) = match e.method {
                    Method::Listing => (b'A', b'R'),
                    Method::Block => (b'B', b'B'),
                    // The standard's cross flag, to the winning bidder and to the
                    // seller's username (its token is the auction id).
                    Method::Auction => (b'H', b'H'),
                };
                for (party, liquidity) in [(e.maker, maker_flag), (e.taker, taker_flag)] {
                    let fill = Executed {
                        timestamp: ns,
                        token: *party.token.bytes(),
                        shares: e.qty.tonnes(),
                        price: e.price.to_wire(),
                        liquidity,
                        match_number: e.match_id.get(),
                    };
                    emit(party.user, Outbound::Executed(fill));
                }
            }
            Event::Cancelled { user, token, decrement, reason, .. } => emit(
                *user,
                Outbound::Canceled {
                    timestamp: ns,
                    token: *token.bytes(),
                    decrement: decrement.tonnes(),
                    reason: reason.letter(),
                },
            ),
            Event::Rejected { user, token, reason } => {
                emit(*user, Outbound::Rejected { timestamp: ns, token: *token.bytes(), reason: reason.letter() });
            }
            Event::CancelRejected { user, token } => {
                emit(*user, Outbound::CancelReject { timestamp: ns, token: *token.bytes() });
            }
            Event::Phase(phase) => {
                let code = match phase {
                    Phase::Closed => b'E',
                    _ if !*day_started => b'S',
                    _ => return,
                };
                *day_started = code == b'S';
                for user in &self.directory.users {
                    emit(user.id, Outbound::SystemEvent { timestamp: ns, code });
                }
            }
            _ => {}
        }
    }

    fn accepted(&self, o: &OrderInfo, ns: u64) -> Accepted {
        Accepted {
            timestamp: ns,
            token: *o.token.bytes(),
            side: o.side.letter(),
            shares: o.qty.tonnes(),
            stock: self.stocks.get(o.instrument.index()).map_or([b' '; 8], |s| *s.bytes()),
            price: o.wire_price,
            tif: o.tif,
            firm: self.directory.code(o.account),
            display: o.display,
            order_ref: o.id.get(),
            capacity: o.capacity,
            iso: b'N',
            min_qty: o.min_qty,
            cross_type: o.method.cross_type(),
            state: b'L',
            bbo_weight: b' ',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbonx_engine::{
        AccountId, AuctionId, Execution, InstrumentId, MatchId, OrderId, Party, Price, Qty, Side, Token,
    };

    #[test]
    fn an_auction_fill_goes_to_the_bidder_and_to_the_sellers_username_with_flag_h() {
        let directory = Directory {
            users: Vec::new(),
            accounts: Default::default(),
            codes: vec![*b"0001", *b"0002"],
            desks: Vec::new(),
        };
        let stocks = [StockCode::from_text("CEA").unwrap()];
        let replies = Replies { directory: &directory, stocks: &stocks };
        let id = AuctionId::from_text("A1").unwrap();
        let seller = Party { user: UserId::new(7), token: id.token(), id: OrderId::new(1), account: AccountId::new(0) };
        let bidder = Party {
            user: UserId::new(3),
            token: Token::from_text("b1").unwrap(),
            id: OrderId::new(2),
            account: AccountId::new(1),
        };
        let fill = Event::Executed(Execution {
            method: Method::Auction,
            instrument: InstrumentId::new(0),
            match_id: MatchId::new(5),
            price: Price::from_fen(7_550).unwrap(),
            qty: Qty::new(1_000),
            taker_side: Side::Buy,
            maker: seller,
            taker: bidder,
        });
        let mut sent = Vec::new();
        replies.translate(&fill, 1, &mut true, &mut |user, message| sent.push((user, message)));
        let flags: Vec<(u16, [u8; 14], u8, u32)> = sent
            .iter()
            .map(|(user, m)| match m {
                Outbound::Executed(x) => (user.get(), x.token, x.liquidity, x.price),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(flags, [(7, *b"A1            ", b'H', 755_000), (3, *b"b1            ", b'H', 755_000)]);
    }
}
