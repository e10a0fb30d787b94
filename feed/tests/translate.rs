//! Engine events to ITCH: a scripted day checked message by message, and a
//! seeded random session whose books, rebuilt from the ITCH messages alone,
//! must equal the engine's own books. Every message also round-trips
//! through the codec.

use carbonx_engine::accounts::AccountTable;
use carbonx_engine::*;
use carbonx_feed::itch::Message;
use carbonx_feed::translate::Translator;
use carbonx_testkit::Rng;
use std::collections::BTreeMap;

/// Applies `cmd` and returns its ITCH messages, each checked to round-trip.
fn itch(engine: &mut Engine, translator: &Translator, cmd: &Command, n: u64) -> Vec<Message> {
    let mut events = Vec::new();
    engine.apply(cmd, Timestamp::from_nanos(n), &mut events);
    let mut messages = Vec::new();
    for e in &events {
        translator.translate(e, n, &mut |m| messages.push(m));
    }
    for m in &messages {
        let mut buf = [0u8; 64];
        let len = m.encode(&mut buf);
        assert_eq!(&Message::decode(&buf[..len]).unwrap(), m);
    }
    messages
}

fn types(messages: &[Message]) -> String {
    messages.iter().map(|m| m.message_type() as char).collect()
}

#[test]
fn a_scripted_day_maps_as_protocol_md_says() {
    let mut e = Engine::with_accounts(EngineConfig::demo(), AccountTable::demo(7, 10)).unwrap();
    let t = Translator::new(e.instruments());
    // The first command of the day: R and J per instrument, Q (start of market hours), H per instrument, then A.
    let first = itch(&mut e, &t, &Command::demo_order("s1", 1, Side::Sell, 10, 7_500), 1);
    assert_eq!(types(&first), format!("S{}S{}A", "RJ".repeat(7), "H".repeat(7)));
    assert!(matches!(&first[0], Message::SystemEvent(s) if s.event_code == b'O'));
    let Message::LuldAuctionCollar(j) = &first[2] else { panic!("{first:?}") };
    assert_eq!((j.reference_price, j.upper_price, j.lower_price), (746_300, 820_900, 671_700));
    // A buy filled in full against part of it: one E on the maker's reference, no A.
    assert_eq!(types(&itch(&mut e, &t, &Command::demo_order("b1", 2, Side::Buy, 4, 7_600), 2)), "E");
    // Reduce keeps priority: X. Cancel: D.
    let reduce =
        Command::Cancel(Cancel { user: UserId::new(0), token: Token::from_text("s1").unwrap(), qty: Qty::new(2) });
    assert_eq!(types(&itch(&mut e, &t, &reduce, 3)), "X");
    let replace = Command::Replace(Replace {
        user: UserId::new(0),
        token: Token::from_text("s1").unwrap(),
        new_token: Token::from_text("s1b").unwrap(),
        qty: Qty::new(5),
        price: 760_000,
        tif: 99_999,
        display: b'Y',
        iso: b'N',
        min_qty: 0,
    });
    // Loses priority without trading: U.
    assert_eq!(types(&itch(&mut e, &t, &replace, 4)), "U");
    // A block trade prints one P; the close prints Q (cross type C) after the expiry D.
    let block = |token: &str, account, counterparty, side| {
        Command::NewBlock(NewBlock {
            user: UserId::new(0),
            token: Token::from_text(token).unwrap(),
            account: AccountId::new(account),
            counterparty: Some(AccountId::new(counterparty)),
            side,
            qty: Qty::new(100_000),
            stock: StockCode::from_text("CEA").unwrap(),
            price: 800_000,
            deal_id: *b"DEAL0001",
        })
    };
    itch(&mut e, &t, &block("k1", 3, 4, Side::Sell), 5);
    assert_eq!(types(&itch(&mut e, &t, &block("k2", 4, 3, Side::Buy), 6)), "P");
    let roll = itch(&mut e, &t, &Command::Roll, 7);
    assert_eq!(&types(&roll)[..3], "DQQ", "{roll:?}");
    let codes: String = roll
        .iter()
        .filter_map(|m| if let Message::SystemEvent(s) = m { Some(char::from(s.event_code)) } else { None })
        .collect();
    assert_eq!(codes, "MECOQ", "the close (M, E, C), then the next day (O, Q)");
    let Message::CrossTrade(q) = &roll[1] else { panic!() };
    assert_eq!((q.price, q.cross_type, q.shares), (750_000, b'C', 0));
}

/// A market maker's view: resting orders by reference, from ITCH alone.
#[derive(Default)]
struct FeedBook(BTreeMap<u64, (u16, u8, u32, u32)>);

impl FeedBook {
    fn apply(&mut self, m: &Message) {
        match m {
            Message::AddOrder(a) => {
                self.0.insert(a.order_ref, (a.header.locate, a.side, a.shares, a.price));
            }
            Message::OrderExecuted(x) => self.take(x.order_ref, x.shares),
            Message::OrderCancel(x) => self.take(x.order_ref, x.shares),
            Message::OrderDelete(d) => {
                self.0.remove(&d.order_ref).expect("delete of a known order");
            }
            Message::OrderReplace(u) => {
                let (locate, side, _, _) = self.0.remove(&u.original_ref).expect("replace of a known order");
                self.0.insert(u.new_ref, (locate, side, u.shares, u.price));
            }
            _ => {}
        }
    }

    fn take(&mut self, order_ref: u64, shares: u32) {
        let entry = self.0.get_mut(&order_ref).expect("execution or cancel of a known order");
        entry.2 -= shares;
        if entry.2 == 0 {
            self.0.remove(&order_ref);
        }
    }
}

#[test]
fn books_rebuilt_from_itch_equal_the_engines() {
    let mut e = Engine::new(EngineConfig::demo()).unwrap();
    let t = Translator::new(e.instruments());
    let (mut rng, mut book, mut tokens) =
        (Rng::new(carbonx_testkit::seed("itch books", 42)), FeedBook::default(), Vec::<String>::new());
    for n in 0..20_000u64 {
        let live =
            if tokens.is_empty() { String::new() } else { tokens[rng.below(tokens.len() as u64) as usize].clone() };
        let cmd = match rng.below(10) {
            0..=5 => {
                let token = format!("t{n}");
                tokens.push(token.clone());
                let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
                Command::demo_order(
                    &token,
                    rng.below(30) as u32,
                    side,
                    1 + rng.below(50) as u32,
                    7_430 + rng.below(60) as u32,
                )
            }
            6 => Command::Cancel(Cancel {
                user: UserId::new(0),
                token: Token::from_text(&live).unwrap_or(Token::from_bytes([b' '; 14])),
                qty: Qty::new(rng.below(20) as u32),
            }),
            _ => {
                let token = format!("t{n}");
                tokens.push(token.clone());
                Command::Replace(Replace {
                    user: UserId::new(0),
                    token: Token::from_text(&live).unwrap_or(Token::from_bytes([b' '; 14])),
                    new_token: Token::from_text(&token).unwrap(),
                    qty: Qty::new(1 + rng.below(50) as u32),
                    price: (7_430 + rng.below(60) as u32) * 100,
                    tif: 99_999,
                    display: b'Y',
                    iso: b'N',
                    min_qty: 0,
                })
            }
        };
        for m in itch(&mut e, &t, &cmd, n + 1) {
            book.apply(&m);
        }
    }
    let mut engine_view: BTreeMap<u64, (u16, u8, u32, u32)> = BTreeMap::new();
    for side in [Side::Buy, Side::Sell] {
        for o in e.resting(InstrumentId::new(0), side) {
            engine_view.insert(
                o.id.get(),
                (1, if side == Side::Buy { b'B' } else { b'S' }, o.qty.tonnes(), o.price.to_wire()),
            );
        }
    }
    assert!(engine_view.len() > 100, "the session should leave a real book");
    assert_eq!(book.0, engine_view);
}

#[test]
fn an_auction_is_one_intraday_cross_then_one_trade_per_fill_and_bids_stay_sealed() {
    let mut e = Engine::with_accounts(EngineConfig::demo(), AccountTable::demo(7, 10)).unwrap();
    let t = Translator::new(e.instruments());
    let (stock, id) = (StockCode::from_text("CEA").unwrap(), AuctionId::from_text("A1").unwrap());
    let announce = Command::AnnounceAuction(AnnounceAuction {
        id,
        stock,
        seller: AccountId::new(0),
        seller_user: UserId::new(0),
        qty: Qty::new(100_000),
        start: Timestamp::from_nanos(1),
        end: Timestamp::from_nanos(100),
        pricing: Pricing::PayAsBid,
        floor: FloorRule::PreviousClose,
    });
    itch(&mut e, &t, &announce, 1);
    for (n, (token, account, fen)) in [("a", 1, 7_500), ("b", 2, 7_600), ("c", 3, 7_463)].into_iter().enumerate() {
        let bid = Command::AuctionBid(AuctionBid {
            user: UserId::new(1),
            token: Token::from_text(token).unwrap(),
            account: AccountId::new(account),
            qty: Qty::new(40_000),
            stock,
            price: fen * 100,
            auction: id,
        });
        assert_eq!(types(&itch(&mut e, &t, &bid, 2 + n as u64)), "", "sealed bids are not published");
    }
    let messages = itch(&mut e, &t, &Command::Clock, 100);
    assert_eq!(types(&messages), "QPPP");
    let Message::CrossTrade(q) = &messages[0] else { panic!("{messages:?}") };
    // (40,000 × 76.00 + 40,000 × 75.00 + 20,000 × 74.63) / 100,000 = 75.326 → 75.33.
    assert_eq!((q.shares, q.price, q.cross_type, q.match_number), (100_000, 753_300, b'I', 0));
    let prices: Vec<(u32, u32)> = messages[1..]
        .iter()
        .map(|m| if let Message::Trade(p) = m { (p.price, p.shares) } else { panic!("{m:?}") })
        .collect();
    assert_eq!(prices, [(760_000, 40_000), (750_000, 40_000), (746_300, 20_000)]);
}

#[test]
fn an_instrument_listed_at_the_roll_gets_its_directory_entry_and_its_code_on_every_message() {
    let mut e = Engine::with_accounts(EngineConfig::demo(), AccountTable::demo(7, 10)).unwrap();
    let mut t = Translator::new(e.instruments());
    let stock = StockCode::from_text("CEA26").unwrap();
    let prev_close = Price::from_fen(7_463).unwrap();
    let mut events = Vec::new();
    for (n, cmd) in [Command::List(Listing { request: 1, stock, prev_close }), Command::Roll].iter().enumerate() {
        e.apply(cmd, Timestamp::from_nanos(n as u64 + 1), &mut events);
    }
    let mut order = Command::demo_order("b1", 1, Side::Buy, 10, 7_463);
    if let Command::NewOrder(o) = &mut order {
        o.stock = stock;
    }
    e.apply(&order, Timestamp::from_nanos(3), &mut events);
    let mut messages = Vec::new();
    for event in &events {
        t.learn(event);
        t.translate(event, 3, &mut |m| messages.push(m));
    }
    let directory = messages.iter().rev().find_map(|m| match m {
        Message::StockDirectory(r) => Some((r.header.locate, r.stock)),
        _ => None,
    });
    assert_eq!(directory, Some((8, *stock.bytes())), "the next day's last R");
    let add = messages.iter().find_map(|m| match m {
        Message::AddOrder(a) => Some((a.header.locate, a.stock)),
        _ => None,
    });
    assert_eq!(add, Some((8, *stock.bytes())));
}
