//! The model's one-way bidding auctions: announcement, sealed bids, and
//! the allocation at the window's end.

use super::*;

/// One sealed bid (`qty` 0: cancelled or, once the auction ended, done).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefBid {
    pub(crate) id: u64,
    pub(crate) user: u16,
    pub(crate) token: [u8; 14],
    pub(crate) account: u32,
    pub(crate) qty: u32,
    pub(crate) price: u32,
}

/// A one-way bidding auction.
#[derive(Clone, Debug)]
pub(crate) struct RefAuction {
    pub(crate) info: AuctionInfo,
    pub(crate) book: usize,
    pub(crate) bids: Vec<RefBid>,
    pub(crate) ended: bool,
}

impl RefAuction {
    fn seller_lock(&self, qty: u32) -> Lock {
        let i = &self.info;
        Lock { account: i.seller.get(), book: self.book, side: Side::Sell, qty, price: i.floor.fen() }
    }

    fn bid_lock(&self, b: &RefBid) -> Lock {
        Lock { account: b.account, book: self.book, side: Side::Buy, qty: b.qty, price: b.price }
    }
}

impl Model {
    /// A live bid: (auction index, bid index).
    pub(crate) fn find_bid(&self, user: u16, token: [u8; 14]) -> Option<(usize, usize)> {
        self.auctions.iter().enumerate().filter(|(_, a)| !a.ended).find_map(|(i, a)| {
            a.bids.iter().position(|b| b.qty > 0 && b.user == user && b.token == token).map(|j| (i, j))
        })
    }

    /// An operator's announcement: refusals in the engine's documented
    /// order, then the seller's tonnes locked.
    pub(crate) fn announce(&mut self, a: &AnnounceAuction, now: Timestamp, out: &mut Vec<Event>) {
        let checked = self.check_announcement(a, now);
        let book = match checked {
            Ok(book) => book,
            Err(reason) => return out.push(Event::AuctionRefused { id: a.id, reason }),
        };
        let b = &self.books[book];
        let floor = if a.floor == FloorRule::PreviousClose { b.reference } else { b.lower };
        let info = AuctionInfo {
            id: a.id,
            order_id: OrderId::new(self.take_id()),
            instrument: InstrumentId::new(book as u8),
            seller: a.seller,
            seller_user: a.seller_user,
            qty: a.qty,
            start: a.start,
            end: a.end,
            pricing: a.pricing,
            floor_rule: a.floor,
            floor: price(floor),
            cap: price(self.books[book].upper),
        };
        let auction = RefAuction { info, book, bids: Vec::new(), ended: false };
        self.lock(&auction.seller_lock(a.qty.tonnes()));
        self.auctions.push(auction);
        out.push(Event::AuctionAnnounced(info));
    }

    fn check_announcement(&self, a: &AnnounceAuction, now: Timestamp) -> Result<usize, AuctionRefusal> {
        if self.auctions.iter().any(|x| x.info.id == a.id) {
            return Err(AuctionRefusal::DuplicateId);
        }
        let book = self.books.iter().position(|b| b.code == a.stock).ok_or(AuctionRefusal::UnknownStock)?;
        if !self.known(a.seller.get()) {
            return Err(AuctionRefusal::UnknownAccount);
        }
        if a.qty.tonnes() < self.auction_qty_min {
            return Err(AuctionRefusal::InvalidQty);
        }
        if a.end <= a.start || a.end <= now {
            return Err(AuctionRefusal::BadWindow);
        }
        let sell = Lock { account: a.seller.get(), book, side: Side::Sell, qty: a.qty.tonnes(), price: 0 };
        if self.risk(&sell).is_err() {
            return Err(AuctionRefusal::Holdings);
        }
        if self.auctions.len() >= self.auctions_max {
            return Err(AuctionRefusal::CapacityFull);
        }
        Ok(book)
    }

    /// A sealed bid: checked, accepted with cross type `A`, its cash locked.
    pub(crate) fn bid(&mut self, c: &AuctionBid, now: Timestamp, out: &mut Vec<Event>) {
        let (user, token) = (c.user.get(), *c.token.bytes());
        if self.token_live(user, token) {
            return;
        }
        let (a, fen) = match self.check_bid(c, now) {
            Ok(v) => v,
            Err(reason) => return out.push(Event::Rejected { user: c.user, token: c.token, reason }),
        };
        let id = self.take_id();
        out.push(Event::Accepted(OrderInfo {
            method: Method::Auction,
            user: c.user,
            token: c.token,
            id: OrderId::new(id),
            account: c.account,
            instrument: InstrumentId::new(self.auctions[a].book as u8),
            side: Side::Buy,
            qty: c.qty,
            wire_price: c.price,
            tif: 99_999,
            display: b'Y',
            capacity: b'A',
            min_qty: 0,
        }));
        let bid = RefBid { id, user, token, account: c.account.get(), qty: c.qty.tonnes(), price: fen };
        self.lock(&self.auctions[a].bid_lock(&bid));
        self.auctions[a].bids.push(bid);
    }

    fn check_bid(&self, c: &AuctionBid, now: Timestamp) -> Result<(usize, u32), RejectReason> {
        if !self.known(c.account.get()) {
            return Err(RejectReason::NotEntitled);
        }
        if c.qty.tonnes() == 0 || c.qty.tonnes() < self.auction_bid_qty_min {
            return Err(RejectReason::InvalidQty);
        }
        let book = self.books.iter().position(|b| b.code == c.stock).ok_or(RejectReason::UnknownStock)?;
        if c.price % 100 != 0 || c.price / 100 == 0 || c.price / 100 > 999_999 {
            return Err(RejectReason::InvalidPrice);
        }
        let fen = c.price / 100;
        let open = |x: &RefAuction| {
            x.info.id == c.auction && x.book == book && !x.ended && x.info.start <= now && now < x.info.end
        };
        let a = self.auctions.iter().position(open).ok_or(RejectReason::InvalidField)?;
        let auction = &self.auctions[a];
        if auction.info.seller == c.account {
            return Err(RejectReason::InvalidField);
        }
        if self.books[book].halted {
            return Err(RejectReason::Halted);
        }
        if fen < auction.info.floor.fen() || fen > auction.info.cap.fen() {
            return Err(RejectReason::OutsideBand);
        }
        self.risk(&Lock { account: c.account.get(), book, side: Side::Buy, qty: c.qty.tonnes(), price: fen })?;
        if auction.bids.len() >= self.auction_bids_max {
            return Err(RejectReason::CapacityFull);
        }
        Ok((a, fen))
    }

    /// Cancels `decrement` tonnes of a live bid and gives back their cash.
    pub(crate) fn take_from_bid(
        &mut self,
        a: usize,
        j: usize,
        decrement: u32,
        reason: CancelReason,
        out: &mut Vec<Event>,
    ) {
        let bid = self.auctions[a].bids[j];
        let lock = self.auctions[a].bid_lock(&RefBid { qty: decrement, ..bid });
        self.release(&lock);
        self.auctions[a].bids[j].qty -= decrement;
        let (user, token, id) = (UserId::new(bid.user), tok(bid.token), OrderId::new(bid.id));
        out.push(Event::Cancelled { user, token, id, decrement: Qty::new(decrement), reason });
    }

    pub(crate) fn drain_bids(&mut self, pred: impl Fn(&RefBid) -> bool, reason: CancelReason, out: &mut Vec<Event>) {
        for a in 0..self.auctions.len() {
            for j in 0..self.auctions[a].bids.len() {
                let bid = self.auctions[a].bids[j];
                if !self.auctions[a].ended && bid.qty > 0 && pred(&bid) {
                    self.take_from_bid(a, j, bid.qty, reason, out);
                }
            }
        }
    }

    /// Every open auction whose window ended by `now`, in announcement order.
    pub(crate) fn end_auctions(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        for a in 0..self.auctions.len() {
            if !self.auctions[a].ended && self.auctions[a].info.end <= now {
                self.allocate(a, out);
            }
        }
    }

    /// Rank by price, then time; fill up to the offered tonnes (the
    /// marginal bid partly); uniform: everyone pays the lowest winning
    /// price; pay-as-bid: each its own.
    fn allocate(&mut self, a: usize, out: &mut Vec<Event>) {
        let live = self.auctions[a].bids.iter().filter(|b| b.qty > 0).count() as u32;
        self.auctions[a].bids.sort_by_key(|b| (u32::MAX - b.price, b.id));
        let info = self.auctions[a].info;
        let mut fills = Vec::new();
        let mut left = info.qty.tonnes();
        for (j, b) in self.auctions[a].bids.iter().enumerate() {
            let fill = b.qty.min(left);
            if fill > 0 {
                left -= fill;
                fills.push((j, fill, b.price));
            }
        }
        let sold = info.qty.tonnes() - left;
        let clearing = fills.last().map(|&(_, _, p)| p);
        let uniform = info.pricing == Pricing::Uniform;
        let pays = |own: u32| if uniform { clearing.unwrap() } else { own };
        let turnover: u128 = fills.iter().map(|&(_, q, p)| u128::from(pays(p)) * u128::from(q)).sum();
        let average = (sold > 0).then(|| ((2 * turnover + u128::from(sold)) / (2 * u128::from(sold))) as u32);
        let result_price = if uniform { clearing } else { average };
        self.push_result(a, sold, result_price, turnover, fills.len() as u32, live, false, out);
        for &(j, fill, own) in &fills {
            self.fill_bid(a, j, fill, pays(own), out);
        }
        self.finish(a, left, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_result(
        &mut self,
        a: usize,
        sold: u32,
        price_fen: Option<u32>,
        turnover: u128,
        winners: u32,
        bids: u32,
        expired: bool,
        out: &mut Vec<Event>,
    ) {
        let i = self.auctions[a].info;
        out.push(Event::AuctionResult(AuctionResult {
            id: i.id,
            instrument: i.instrument,
            pricing: i.pricing,
            offered: i.qty,
            sold: Qty::new(sold),
            price: price_fen.map(price),
            turnover,
            winners,
            bids,
            expired,
        }));
    }

    fn fill_bid(&mut self, a: usize, j: usize, fill: u32, at: u32, out: &mut Vec<Event>) {
        let auction = &self.auctions[a];
        let bid = auction.bids[j];
        let (seller, buyer) = (auction.seller_lock(fill), auction.bid_lock(&bid));
        let (info, book) = (auction.info, auction.book);
        if let Some(accounts) = &mut self.accounts {
            accounts.settle(&seller, &buyer, fill, at);
        }
        record(&mut self.books[book].auction_tally, at, fill);
        self.auctions[a].bids[j].qty -= fill;
        let match_id = MatchId::new(self.next_match);
        self.next_match += 1;
        let mut seller_token = [b' '; 14];
        seller_token[..8].copy_from_slice(info.id.bytes());
        out.push(Event::Executed(Execution {
            method: Method::Auction,
            instrument: info.instrument,
            match_id,
            price: price(at),
            qty: Qty::new(fill),
            taker_side: Side::Buy,
            maker: Party { user: info.seller_user, token: tok(seller_token), id: info.order_id, account: info.seller },
            taker: Party {
                user: UserId::new(bid.user),
                token: tok(bid.token),
                id: OrderId::new(bid.id),
                account: AccountId::new(bid.account),
            },
        }));
    }

    /// What is left of every bid is cancelled (`T`), the unsold tonnes go back.
    fn finish(&mut self, a: usize, unsold: u32, out: &mut Vec<Event>) {
        for j in 0..self.auctions[a].bids.len() {
            let bid = self.auctions[a].bids[j];
            if bid.qty > 0 {
                self.release(&self.auctions[a].bid_lock(&bid));
                self.auctions[a].bids[j].qty = 0;
                let (user, token, id) = (UserId::new(bid.user), tok(bid.token), OrderId::new(bid.id));
                out.push(Event::Cancelled {
                    user,
                    token,
                    id,
                    decrement: Qty::new(bid.qty),
                    reason: CancelReason::Expired,
                });
            }
        }
        let seller = self.auctions[a].seller_lock(unsold);
        self.release(&seller);
        self.auctions[a].ended = true;
    }

    /// The close came first: no fill, bids cancelled in arrival order.
    pub(crate) fn expire(&mut self, a: usize, out: &mut Vec<Event>) {
        let live = self.auctions[a].bids.iter().filter(|b| b.qty > 0).count() as u32;
        self.push_result(a, 0, None, 0, 0, live, true, out);
        let offered = self.auctions[a].info.qty.tonnes();
        self.finish(a, offered, out);
    }
}
