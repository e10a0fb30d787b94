//! What orders a load run sends: each session's seeded mix of limit day
//! orders around the previous close, IOCs, cancels, replaces and block
//! pairs, under tokens that carry the run, the session and the order
//! number (so that an answer finds its order's planned send time).

use carbonx_gateway::ouch::{CancelOrder, EnterBlock, EnterOrder, Inbound, ReplaceOrder};
use carbonx_testkit::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Recent day orders a session remembers as targets for cancels and replaces.
const RESTING_MAX: usize = 64;

/// The instruments of the mix and their previous close (OUCH price: 1/10,000 yuan).
const STOCKS: [(&[u8; 8], u32); 7] = [
    (b"CEA     ", 746_300),
    (b"CEA21   ", 746_300),
    (b"CEA22   ", 746_300),
    (b"CEA23   ", 746_300),
    (b"CEA24   ", 746_300),
    (b"CEA25   ", 746_300),
    (b"CCER    ", 800_000),
];

/// The seeded order mix of one session: limit day orders around the
/// previous close, IOCs, cancels, replaces and an occasional block pair.
pub(super) struct Mix {
    rng: Rng,
    session: u8,
    /// Tokens are taken for the whole trading day, so each run (and each
    /// step of a ladder) needs its own: see [`run_tag`].
    run_tag: [u8; 3],
    first_account: u32,
    next: u64,
    pending_block: Option<Inbound>,
    /// Recent day orders (by number): what cancels and replaces target, so
    /// that most of them find a live order.
    resting: Vec<u64>,
}

impl Mix {
    /// Session `session`'s mix: seeded by `rng`, its tokens tagged with
    /// `run_tag`, its accounts from `first_account` on.
    pub(super) fn new(rng: Rng, session: u8, run_tag: [u8; 3], first_account: u32) -> Mix {
        Mix {
            rng,
            session,
            run_tag,
            first_account,
            next: 0,
            pending_block: None,
            resting: Vec::with_capacity(RESTING_MAX),
        }
    }

    /// `L`, the run's tag, the session, the order number: all base 36.
    fn token(&self, n: u64) -> [u8; 14] {
        let mut token = [b'L'; 14];
        token[1..4].copy_from_slice(&self.run_tag);
        token[4..6].copy_from_slice(&base36::<2>(u64::from(self.session)));
        token[6..].copy_from_slice(&base36::<8>(n));
        token
    }

    fn account(&mut self) -> [u8; 4] {
        let n = self.first_account + self.rng.below(340) as u32;
        let mut code = [b'0'; 4];
        code.copy_from_slice(format!("{n:04}").as_bytes());
        code
    }

    /// The next message and its order number (for timing), if it is an order.
    pub(super) fn message(&mut self) -> (Inbound, Option<u64>) {
        if let Some(block) = self.pending_block.take() {
            return (block, None);
        }
        let n = self.next;
        self.next += 1;
        let roll = self.rng.below(100);
        if !self.resting.is_empty() && roll < 12 {
            let target = self.take_resting();
            return (Inbound::Cancel(CancelOrder { token: self.token(target), shares: 0 }), None);
        }
        if !self.resting.is_empty() && roll < 20 {
            let (_, reference) = STOCKS[0];
            let target = self.take_resting();
            self.resting.push(n);
            let replace = ReplaceOrder {
                existing: self.token(target),
                replacement: self.token(n),
                shares: 1 + self.rng.below(50) as u32,
                price: reference - 500 + self.rng.below(10) as u32 * 100,
                tif: 99_999,
                display: b'Y',
                iso: b'N',
                min_qty: 0,
            };
            return (Inbound::Replace(replace), Some(n));
        }
        if roll == 99 {
            return (self.block_pair(n), Some(n));
        }
        let (stock, reference) = STOCKS[self.rng.below(7) as usize];
        let side = if self.rng.below(2) == 0 { b'B' } else { b'S' };
        let (shares, price) = (1 + self.rng.below(50) as u32, reference - 500 + self.rng.below(10) as u32 * 100);
        let mut order = EnterOrder::limit("", side, shares, "", price, "");
        (order.token, order.stock, order.firm) = (self.token(n), *stock, self.account());
        if roll < 32 {
            order.tif = 0;
        }
        if order.tif != 0 {
            if self.resting.len() == RESTING_MAX {
                self.resting.remove(0);
            }
            self.resting.push(n);
        }
        (Inbound::Enter(order), Some(n))
    }

    fn take_resting(&mut self) -> u64 {
        let i = self.rng.below(self.resting.len() as u64) as usize;
        self.resting.swap_remove(i)
    }

    /// A buy block now, the matching sell next.
    fn block_pair(&mut self, n: u64) -> Inbound {
        let buyer = self.account();
        let mut seller = self.account();
        while seller == buyer {
            seller = self.account();
        }
        let mut deal = [b' '; 8];
        deal.copy_from_slice(format!("D{:07}", n % 10_000_000).as_bytes());
        let block = |token, side, account, counterparty| EnterBlock {
            token,
            side,
            shares: 100_000,
            stock: *b"CEA     ",
            price: 746_300,
            account,
            counterparty,
            deal_id: deal,
        };
        let second = self.next;
        self.next += 1;
        self.pending_block = Some(Inbound::Block(block(self.token(second), b'S', seller, buyer)));
        Inbound::Block(block(self.token(n), b'B', buyer, seller))
    }
}

/// Order number of a load token (its last 8 base-36 digits).
pub(super) fn order_number(token: &[u8; 14]) -> Option<u64> {
    token[6..].iter().try_fold(0u64, |n, &c| Some(n * 36 + u64::from(char::from(c).to_digit(36)?)))
}

/// `n` in `N` base-36 digits (upper case), the high digits dropped.
fn base36<const N: usize>(mut n: u64) -> [u8; N] {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = [b'0'; N];
    for digit in out.iter_mut().rev() {
        *digit = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out
}

/// Three base-36 digits from the wall clock's second (they repeat every
/// 13 hours), never the same twice in one process: a step that would start
/// in the previous step's second waits for the next. A server ignores an
/// order whose token was used before on the same day (PROTOCOL §4.9), so a
/// second run with the same tokens would go unanswered.
pub(super) async fn run_tag() -> [u8; 3] {
    static LAST: AtomicU64 = AtomicU64::new(u64::MAX);
    loop {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs() % 36u64.pow(3);
        if LAST.swap(second, Ordering::Relaxed) != second {
            return base36::<3>(second);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_run_the_session_and_the_order_number() {
        let mix = Mix::new(Rng::new(1), 3, *b"A0Z", 1);
        for n in [0, 1, 35, 36, 123_456_789, 36u64.pow(8) - 1] {
            let token = mix.token(n);
            assert_eq!(&token[..6], b"LA0Z03");
            assert_eq!(order_number(&token), Some(n), "{}", String::from_utf8_lossy(&token));
        }
        assert_eq!(order_number(b"LA0Z03 bad    "), None);
    }

    #[test]
    fn each_run_in_a_process_gets_its_own_tag() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (a, b) = runtime.block_on(async { (run_tag().await, run_tag().await) });
        assert_ne!(a, b);
    }
}
