//! The seeded generator of random commands that reach every rule.

use super::*;

/// Builds random commands that reach every rule, using tokens it has sent.
pub(crate) struct Generator {
    rng: Rng,
    sent: Vec<(u16, Token)>,
    /// The live orders' tokens (from the model), so that most cancels and replaces hit.
    pub(crate) live: Vec<(u16, Token, usize)>,
    counter: u64,
    stocks: Vec<StockCode>,
    pub(crate) references: Vec<u32>,
    /// With accounts: also block pairs (and mismatches) and registry transfers.
    accounts: bool,
    /// The mirror of the last block order, sent next most of the time.
    pending_block: Option<NewBlock>,
    /// The command's time (ns), for auction windows.
    pub(crate) now: u64,
    /// Announcements sent (id, book): most bids go to a recent one.
    announced: Vec<(AuctionId, usize)>,
}

impl Generator {
    /// A generator for books `stocks` around `references`; with `accounts`
    /// it also sends block pairs and registry transfers.
    pub(crate) fn new(seed: u64, stocks: Vec<StockCode>, references: Vec<u32>, accounts: bool) -> Generator {
        let (sent, live, announced) = (Vec::new(), Vec::new(), Vec::new());
        let rng = Rng::new(seed);
        Generator { rng, sent, live, counter: 0, stocks, references, accounts, pending_block: None, now: 0, announced }
    }

    fn token(&mut self) -> Token {
        self.counter += 1;
        Token::from_text(&format!("t{}", self.counter)).unwrap()
    }

    /// A token to cancel or replace, and the book it is most likely in.
    fn old_token(&mut self) -> (u16, Token, usize) {
        if !self.live.is_empty() && self.rng.chance(75) {
            return self.live[self.rng.below(self.live.len() as u64) as usize];
        }
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        if self.sent.is_empty() || self.rng.chance(3) {
            return (self.rng.below(3) as u16, self.token(), book);
        }
        let recent = self.sent.len().min(400) as u64;
        let (user, token) = self.sent[self.sent.len() - 1 - self.rng.below(recent) as usize];
        (user, token, book)
    }

    fn wire_price(&mut self, book: usize) -> u32 {
        let r = self.references[book];
        let fen = match self.rng.below(100) {
            0 => r * 110 / 100 + 1,          // one tick above the band
            1 => (r * 90).div_ceil(100) - 1, // one tick below
            2 => 0,
            _ => r - 15 + self.rng.below(31) as u32,
        };
        if self.rng.chance(1) { fen * 100 + 37 } else { fen * 100 }
    }

    fn new_order(&mut self) -> Command {
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let user = self.rng.below(3) as u16;
        let token = self.token();
        self.sent.push((user, token));
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        let qty = match self.rng.below(200) {
            0 => 0,
            1 => 100_000,
            2 => 99_999,
            _ => 1 + self.rng.below(60) as u32,
        };
        let account = if self.accounts { self.account() } else { AccountId::new(self.rng.below(20) as u32) };
        let mut o = NewOrder::limit(UserId::new(user), token, account, side, qty, self.stocks[book], 0);
        o.price = self.wire_price(book);
        self.order_type(&mut o);
        o.stock = if self.rng.chance(1) { StockCode::from_text("XYZ").unwrap() } else { o.stock };
        Command::NewOrder(o)
    }

    fn order_type(&mut self, o: &mut NewOrder) {
        match self.rng.below(100) {
            0..=9 => o.tif = 0,
            10..=14 => (o.tif, o.min_qty) = (0, o.qty.tonnes()),
            15..=18 => (o.tif, o.price) = (0, MARKET),
            19..=23 => o.display = b'P',
            24 => o.tif = 7,
            25 => o.display = b'X',
            26 => o.min_qty = 3,
            27 => o.cross_type = b'Y',
            28 => o.price = MARKET,
            _ => {}
        }
    }

    fn replace(&mut self) -> Command {
        let (user, token, book) = self.old_token();
        let new_token = self.token();
        self.sent.push((user, new_token));
        let (tif, min_qty) = match self.rng.below(20) {
            0 => (0, 0),
            1 => (5, 0),
            _ => (99_999, 0),
        };
        let display = if self.rng.chance(5) { b'P' } else { b'Y' };
        let qty = Qty::new(self.rng.below(60) as u32);
        let price = self.wire_price(book);
        Command::Replace(Replace {
            user: UserId::new(user),
            token,
            new_token,
            qty,
            price,
            tif,
            display,
            iso: b'N',
            min_qty,
        })
    }

    pub(crate) fn next(&mut self) -> Command {
        if self.accounts {
            match self.rng.below(1000) {
                0..=59 => return self.block(),
                60..=69 => return self.transfer(),
                70..=74 => return self.announce(),
                75..=134 => return self.auction_bid(),
                _ => {}
            }
        }
        match self.rng.below(1000) {
            0..=449 => self.new_order(),
            450..=599 => {
                let (user, token, _) = self.old_token();
                let qty = if self.rng.chance(60) { 0 } else { self.rng.below(40) as u32 };
                Command::Cancel(Cancel { user: UserId::new(user), token, qty: Qty::new(qty) })
            }
            600..=979 => self.replace(),
            980..=981 => Command::Halt(InstrumentId::new(self.rng.below(3) as u8)),
            982..=991 => Command::Resume(InstrumentId::new(self.rng.below(3) as u8)),
            992..=994 => Command::CancelAccount(AccountId::new(self.rng.below(20) as u32)),
            995 => Command::CancelUser(UserId::new(self.rng.below(4) as u16)),
            996 => Command::Roll,
            997 => {
                let (user, token, _) = self.old_token();
                let reason = RejectReason::Throttled;
                Command::Reject(GatewayReject { user: UserId::new(user), token, reason, names_new_token: true })
            }
            _ => Command::Clock,
        }
    }
}

impl Generator {
    /// Account ids: mostly the 20 known ones, now and then an unknown one (`L`).
    fn account(&mut self) -> AccountId {
        AccountId::new(if self.rng.chance(1) { 20 } else { self.rng.below(20) as u32 })
    }

    /// A block order: the mirror of the previous one (sometimes spoiled:
    /// another price, quantity or deal), or a new agreement.
    fn block(&mut self) -> Command {
        let token = self.token();
        let user = UserId::new(self.rng.below(3) as u16);
        self.sent.push((user.get(), token));
        if let Some(mut mirror) = self.pending_block.take().filter(|_| self.rng.chance(80)) {
            (mirror.token, mirror.user) = (token, user);
            match self.rng.below(20) {
                0 => mirror.price += 100,
                1 => mirror.qty = Qty::new(mirror.qty.tonnes() + 1),
                2 => mirror.deal_id = *b"OTHER   ",
                _ => {}
            }
            return Command::NewBlock(mirror);
        }
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let r = self.references[book];
        let fen = r * 65 / 100 + self.rng.below(u64::from(r) * 70 / 100) as u32; // ±35%: some outside ±30%
        let qty = if self.rng.chance(2) { 99 } else { 100 + self.rng.below(100) as u32 };
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        let deal_id: [u8; 8] = format!("D{:<7}", self.rng.below(40)).as_bytes().try_into().unwrap();
        let (account, counterparty) = (self.account(), self.account());
        let stock = self.stocks[book];
        let qty = Qty::new(qty);
        // Now and then (one price in 50) a counterparty code that names no account.
        let named = Some(counterparty).filter(|_| fen % 50 != 7);
        let order = NewBlock { user, token, account, counterparty: named, side, qty, stock, price: fen * 100, deal_id };
        self.pending_block =
            Some(NewBlock { side: side.opposite(), account: counterparty, counterparty: Some(account), ..order });
        Command::NewBlock(order)
    }

    fn auction_id(&mut self) -> AuctionId {
        AuctionId::from_text(&format!("A{}", self.rng.below(12))).unwrap()
    }

    /// An announcement: a window of a few hundred commands (the clock is
    /// one nanosecond per command), now and then a bad one.
    fn announce(&mut self) -> Command {
        let book = self.rng.below(self.stocks.len() as u64) as usize;
        let stock = if self.rng.chance(2) { StockCode::from_text("XYZ").unwrap() } else { self.stocks[book] };
        let qty = match self.rng.below(20) {
            0 => 99,
            1 => 5_000,
            _ => 100 + self.rng.below(200) as u32,
        };
        let start = self.now + self.rng.below(30);
        let end = if self.rng.chance(3) { start } else { start + 20 + self.rng.below(400) };
        let id = self.auction_id();
        self.announced.push((id, book));
        Command::AnnounceAuction(AnnounceAuction {
            id,
            stock,
            seller: self.account(),
            seller_user: UserId::new(self.rng.below(3) as u16),
            qty: Qty::new(qty),
            start: Timestamp::from_nanos(start),
            end: Timestamp::from_nanos(end),
            pricing: if self.rng.chance(50) { Pricing::Uniform } else { Pricing::PayAsBid },
            floor: if self.rng.chance(50) { FloorRule::PreviousClose } else { FloorRule::PreviousCloseMinus10 },
        })
    }

    /// A bid around the reference (the floor is the reference or 10% under,
    /// the cap 10% over), in one of the recent auctions.
    fn auction_bid(&mut self) -> Command {
        let recent = self.announced.len().min(3) as u64;
        let (auction, book) = if recent > 0 && self.rng.chance(90) {
            self.announced[self.announced.len() - 1 - self.rng.below(recent) as usize]
        } else {
            (self.auction_id(), self.rng.below(self.stocks.len() as u64) as usize)
        };
        let token = self.token();
        let user = UserId::new(self.rng.below(3) as u16);
        self.sent.push((user.get(), token));
        let r = self.references[book];
        let fen = r * 88 / 100 + self.rng.below(u64::from(r) * 24 / 100) as u32;
        let qty = if self.rng.chance(2) { 0 } else { 1 + self.rng.below(80) as u32 };
        let (account, stock) = (self.account(), self.stocks[book]);
        Command::AuctionBid(AuctionBid { user, token, account, qty: Qty::new(qty), stock, price: fen * 100, auction })
    }

    fn transfer(&mut self) -> Command {
        self.counter += 1;
        let asset = match self.rng.below(10) {
            0..=4 => Asset::Cash,
            9 => Asset::Holding(InstrumentId::new(self.stocks.len() as u8)), // no such instrument
            _ => Asset::Holding(InstrumentId::new(self.rng.below(self.stocks.len() as u64) as u8)),
        };
        let magnitude = if asset == Asset::Cash { 1 + self.rng.below(500_000) } else { 1 + self.rng.below(300) } as i64;
        let amount = if self.rng.chance(50) { magnitude } else { -magnitude };
        Command::Transfer(Transfer { request: self.counter, account: self.account(), asset, amount })
    }
}
