//! From an OUCH inbound message to an engine command. The gateway decides
//! only the checks that need the session: the throttle (`V`), entitlement
//! (`L`) and the side letter; everything else travels to the engine as the
//! wire carried it (the intermarket sweep letter as is, a block order's
//! counterparty as the account its code names, if any), so the engine
//! decides every other reject in the one check order of PROTOCOL §5.2:
//! fields in wire order. The gateway's own rejects become
//! [`Command::Reject`] and are journaled like orders, so the user's
//! sequenced stream replays byte for byte; the sequencer ignores one under
//! a taken token as it ignores the message itself (PROTOCOL §4.9).

use crate::config::{Directory, User};
use crate::ouch::{AuctionBid, CancelOrder, EnterBlock, EnterOrder, Inbound, PickOrder, ReplaceOrder};
use carbonx_engine::{
    AccountId, AuctionBid as EngineBid, AuctionId, Cancel, Command, GatewayReject, NewBlock, NewOrder, OrderId, Pick,
    Qty, RejectReason, Replace, Side, StockCode, Token, UserId,
};

/// A token bucket: `rate` tokens per second, at most `burst` banked.
#[derive(Clone, Debug)]
pub struct Throttle {
    rate: u64,
    burst: u64,
    /// Tokens, scaled by 1e9 so that refill is exact integer arithmetic.
    scaled: u64,
    last_ns: u64,
}

impl Throttle {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32) -> Throttle {
        let (rate, burst) = (u64::from(rate_per_sec.max(1)), u64::from(burst.max(1)));
        Throttle { rate, burst, scaled: burst * 1_000_000_000, last_ns: 0 }
    }

    /// Takes one token at `now_ns` (a monotonic clock); false when empty.
    pub fn take(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let cap = self.burst * 1_000_000_000;
        self.scaled = self.scaled.saturating_add(elapsed.saturating_mul(self.rate)).min(cap);
        if self.scaled >= 1_000_000_000 {
            self.scaled -= 1_000_000_000;
            true
        } else {
            false
        }
    }
}

/// Turns one user's inbound messages into commands.
pub struct Intake<'a> {
    /// The market's users and accounts.
    pub directory: &'a Directory,
    /// The user whose session this is.
    pub user: &'a User,
}

impl Intake<'_> {
    /// The command for an inbound message the throttle let through (see
    /// [`Intake::throttled`]): the engine's command, or the gateway's
    /// reject for it.
    pub fn command(&self, inbound: &Inbound) -> Command {
        let id = self.user.id;
        match inbound {
            Inbound::Cancel(CancelOrder { token, shares }) => {
                Command::Cancel(Cancel { user: id, token: Token::from_bytes(*token), qty: Qty::new(*shares) })
            }
            Inbound::Enter(order) => self.enter(order),
            Inbound::Replace(replace) => replace_command(id, replace),
            Inbound::Block(block) => self.block(block),
            Inbound::Pick(pick) => self.pick(pick),
            Inbound::Bid(bid) => self.bid(bid),
        }
    }

    /// The throttle's reject (`V`) of a message past the user's rate:
    /// every kind is throttled, cancels and malformed messages too (`bytes`
    /// when it did not decode). An order's reject names its new token (and
    /// is ignored like the order when that token is taken); a cancel's
    /// names the order it meant to cancel.
    pub fn throttled(&self, decoded: Option<&Inbound>, bytes: &[u8]) -> Command {
        let user = self.user.id;
        match decoded {
            Some(inbound) => reject(user, token_of(inbound), RejectReason::Throttled),
            None => self.unusable(bytes, RejectReason::Throttled),
        }
    }

    /// The reject for a `U` packet that is not a valid OUCH message: `O`
    /// under the token its bytes would carry (blank if too short).
    pub fn malformed(&self, bytes: &[u8]) -> Command {
        self.unusable(bytes, RejectReason::InvalidField)
    }

    /// A reject of an undecodable message for `reason`.
    fn unusable(&self, bytes: &[u8], reason: RejectReason) -> Command {
        let mut token = [b' '; 14];
        if let Some(field) = bytes.get(1..15) {
            token.copy_from_slice(field);
        }
        let (user, token) = (self.user.id, Token::from_bytes(token));
        // Too malformed to tell which token it would take: never a resend.
        Command::Reject(GatewayReject { user, token, reason, names_new_token: false })
    }

    fn entitled(&self, code: &[u8; 4]) -> Option<AccountId> {
        self.directory.accounts.get(code).copied().filter(|a| self.user.accounts.contains(a))
    }

    fn enter(&self, o: &EnterOrder) -> Command {
        let (user, token) = (self.user.id, Token::from_bytes(o.token));
        let Some(account) = self.entitled(&o.firm) else {
            return reject(user, token, RejectReason::NotEntitled);
        };
        let side = match side(o.side) {
            Ok(side) => side,
            Err(reason) => return reject(user, token, reason),
        };
        Command::NewOrder(NewOrder {
            user,
            token,
            account,
            side,
            qty: Qty::new(o.shares),
            stock: StockCode::from_bytes(o.stock),
            price: o.price,
            tif: o.tif,
            display: o.display,
            capacity: o.capacity,
            iso: o.iso,
            min_qty: o.min_qty,
            cross_type: o.cross_type,
        })
    }

    fn block(&self, b: &EnterBlock) -> Command {
        let (user, token) = (self.user.id, Token::from_bytes(b.token));
        let Some(account) = self.entitled(&b.account) else {
            return reject(user, token, RejectReason::NotEntitled);
        };
        let side = match side(b.side) {
            Ok(side) => side,
            Err(reason) => return reject(user, token, reason),
        };
        Command::NewBlock(NewBlock {
            user,
            token,
            account,
            counterparty: self.directory.accounts.get(&b.counterparty).copied(),
            side,
            qty: Qty::new(b.shares),
            stock: StockCode::from_bytes(b.stock),
            price: b.price,
            deal_id: b.deal_id,
        })
    }

    /// A bid names only its buying account here; whether the auction is
    /// open, the instrument, price, quantity and funds are the engine's.
    fn bid(&self, b: &AuctionBid) -> Command {
        let (user, token) = (self.user.id, Token::from_bytes(b.token));
        let Some(account) = self.entitled(&b.account) else {
            return reject(user, token, RejectReason::NotEntitled);
        };
        Command::AuctionBid(EngineBid {
            user,
            token,
            account,
            qty: Qty::new(b.shares),
            stock: StockCode::from_bytes(b.stock),
            price: b.price,
            auction: AuctionId::from_bytes(b.auction),
        })
    }

    fn pick(&self, p: &PickOrder) -> Command {
        let (user, token) = (self.user.id, Token::from_bytes(p.token));
        let Some(account) = self.entitled(&p.account) else {
            return reject(user, token, RejectReason::NotEntitled);
        };
        match side(p.side) {
            Ok(side) => Command::Pick(Pick {
                user,
                token,
                account,
                side,
                qty: Qty::new(p.shares),
                stock: StockCode::from_bytes(p.stock),
                target: OrderId::new(p.target),
            }),
            Err(reason) => reject(user, token, reason),
        }
    }
}

fn replace_command(user: UserId, r: &ReplaceOrder) -> Command {
    Command::Replace(Replace {
        user,
        token: Token::from_bytes(r.existing),
        new_token: Token::from_bytes(r.replacement),
        qty: Qty::new(r.shares),
        price: r.price,
        tif: r.tif,
        display: r.display,
        iso: r.iso,
        min_qty: r.min_qty,
    })
}

/// The side letter: `B`/`S`; the short-sale letters `T`/`E` are rejected
/// `i` (no short selling in this market), anything else `O`.
fn side(letter: u8) -> Result<Side, RejectReason> {
    match letter {
        b'B' => Ok(Side::Buy),
        b'S' => Ok(Side::Sell),
        b'T' | b'E' => Err(RejectReason::ShortSale),
        _ => Err(RejectReason::InvalidField),
    }
}

/// The token a reject of this message names: the order's, or the replacement's.
fn token_of(inbound: &Inbound) -> Token {
    Token::from_bytes(match inbound {
        Inbound::Enter(m) => m.token,
        Inbound::Replace(m) => m.replacement,
        Inbound::Cancel(m) => m.token,
        Inbound::Block(m) => m.token,
        Inbound::Pick(m) => m.token,
        Inbound::Bid(m) => m.token,
    })
}

/// The reject of a message under the new token it names: ignored like the
/// message when that token is taken (PROTOCOL §4.9, decided at apply time).
fn reject(user: UserId, token: Token, reason: RejectReason) -> Command {
    Command::Reject(GatewayReject { user, token, reason, names_new_token: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;

    fn directory() -> Directory {
        let codes = (1..=3_400u32).map(|n| carbonx_soup::packet::alpha::<4>(&format!("{n:04}")).unwrap()).collect();
        Directory::new(&GatewayConfig::demo(), codes).unwrap()
    }

    fn order(firm: &[u8; 4], side: u8) -> Inbound {
        let mut order = EnterOrder::limit("T1", side, 10, "CEA", 746_300, "");
        order.firm = *firm;
        Inbound::Enter(order)
    }

    fn reason(command: &Command) -> Option<u8> {
        match command {
            Command::Reject(r) => Some(r.reason.letter()),
            _ => None,
        }
    }

    #[test]
    fn entitlement_then_side_decide_in_that_order() {
        let dir = directory();
        let intake = Intake { directory: &dir, user: &dir.users[0] };
        assert_eq!(reason(&intake.command(&order(b"0001", b'B'))), None);
        assert_eq!(reason(&intake.command(&order(b"0341", b'B'))), Some(b'L'));
        assert_eq!(reason(&intake.command(&order(b"XXXX", b'Q'))), Some(b'L'));
        assert_eq!(reason(&intake.command(&order(b"0001", b'T'))), Some(b'i'));
        assert_eq!(reason(&intake.command(&order(b"0001", b'E'))), Some(b'i'));
        assert_eq!(reason(&intake.command(&order(b"0001", b'Q'))), Some(b'O'));
    }

    #[test]
    fn the_throttle_rejects_orders_and_malformed_messages() {
        let dir = directory();
        let intake = Intake { directory: &dir, user: &dir.users[0] };
        let mut throttle = Throttle::new(10, 2);
        assert!(throttle.take(0) && throttle.take(0));
        assert!(!throttle.take(0), "the bucket of 2 is empty");
        // A tenth of a second refills one token at 10 per second.
        assert!(throttle.take(100_000_000));
        assert!(!throttle.take(100_000_000));
        // Cancels never get here (PROTOCOL §4: never throttled; the
        // gateway's reader lets them through, tests/hostile_e2e.rs).
        assert_eq!(reason(&intake.throttled(Some(&order(b"0001", b'B')), b"")), Some(b'V'));
        let Command::Reject(r) = intake.throttled(None, b"Q") else { panic!("a malformed message is throttled") };
        assert_eq!((r.reason.letter(), r.names_new_token), (b'V', false));
    }

    #[test]
    fn malformed_messages_are_rejected_under_their_token() {
        let dir = directory();
        let intake = Intake { directory: &dir, user: &dir.users[0] };
        let Command::Reject(r) = intake.malformed(b"OTOKEN-12345678xx") else { panic!() };
        assert_eq!((r.token, r.reason), (Token::from_bytes(*b"TOKEN-12345678"), RejectReason::InvalidField));
        let Command::Reject(r) = intake.malformed(b"Q") else { panic!() };
        assert_eq!(r.token, Token::from_bytes([b' '; 14]));
    }
}
