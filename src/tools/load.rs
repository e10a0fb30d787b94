//! `carbonx load`: the operators' load benchmark. Drives a running server
//! (by default an embedded one) over real SoupBinTCP/OUCH sessions with a
//! seeded order mix, and measures order→Accepted and order→Executed
//! latency from each message's *planned* send time (open loop at a target
//! rate, so that a stall shows up as latency instead of hiding as fewer
//! sends: the coordinated-omission correction of exchange-core's harness).
//! `--rate max` runs closed loop with a bounded number of orders in flight.
//!
//! It also measures a raw TCP ping-pong on loopback in the same run and
//! reports the gateway's p50 and p99 as multiples of it.

use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{CancelOrder, EnterBlock, EnterOrder, Inbound, Outbound, ReplaceOrder};
use carbonx_soup::packet::Packet;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Orders whose send times are remembered per session (a ring): an answer
/// to an order older than this many sends is not timed.
const PLANNED_RING: usize = 1 << 20;
/// Orders in flight per session with `--rate max`. Closed-loop maximum
/// throughput is a matter of keeping every stage's batches full: on this
/// 2-core machine 256 per session gave about 640k msg/s, 1,024 about 720k,
/// 4,096 about 1 M (with `fsync = batch`, feeds on), and 16,384 no more;
/// latency at the maximum is queueing, so measure latency at a set rate.
pub const IN_FLIGHT_DEFAULT: u64 = 4_096;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The server's order-entry address.
    pub connect: SocketAddr,
    /// Usernames (password `demo` unless `password` says otherwise), one session each.
    pub users: Vec<String>,
    /// Password of every user.
    pub password: String,
    /// Messages per second across all sessions; `None` = closed loop, as fast as possible.
    pub rate: Option<u64>,
    /// Orders in flight per session in closed loop.
    pub in_flight: u64,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Seed of the order mix.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// Counts and histograms of one run.
#[derive(Debug)]
pub struct LoadReport {
    /// Target rate (`None` = max).
    pub rate: Option<u64>,
    /// Measured seconds.
    pub seconds: f64,
    /// Orders, replaces, cancels sent (all, warm-up included).
    pub sent: Sent,
    /// Answers received by kind.
    pub answers: Answers,
    /// Rejects by reason letter.
    pub rejects: BTreeMap<char, u64>,
    /// Order → Accepted, nanoseconds, measured part only.
    pub accepted: Histogram<u64>,
    /// Order → first Executed, nanoseconds, measured part only.
    pub executed: Histogram<u64>,
    /// Messages sent per second of the run (throughput over time).
    pub per_second: Vec<u64>,
    /// Loopback TCP round trip, nanoseconds.
    pub ping: Histogram<u64>,
}

/// What was sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Enter Order and Enter Block.
    pub orders: u64,
    /// Replace Order.
    pub replaces: u64,
    /// Cancel Order.
    pub cancels: u64,
}

/// What came back.
#[derive(Debug, Default, Clone, Copy)]
pub struct Answers {
    /// Accepted.
    pub accepted: u64,
    /// Replaced.
    pub replaced: u64,
    /// Rejected.
    pub rejected: u64,
    /// Canceled by the user (reason `U`): answers to cancels.
    pub cancelled_by_user: u64,
    /// Cancel Reject.
    pub cancel_rejects: u64,
    /// Other cancels (IOC rest, self-trade, expiry).
    pub cancelled_other: u64,
    /// Executions as maker.
    pub fills_maker: u64,
    /// Executions as taker.
    pub fills_taker: u64,
    /// Block executions.
    pub fills_block: u64,
}

impl LoadReport {
    /// Orders, replaces and cancels that got no answer.
    pub fn unanswered(&self) -> i64 {
        let s = self.sent;
        let a = self.answers;
        (s.orders + s.replaces + s.cancels) as i64
            - (a.accepted + a.replaced + a.rejected + a.cancelled_by_user + a.cancel_rejects) as i64
    }

    /// Messages per second in the measured part.
    pub fn throughput(&self) -> f64 {
        let measured: u64 = self.per_second.iter().sum();
        measured as f64 / self.seconds.max(1e-9)
    }
}

/// Shared per-session state between its writer and reader tasks.
struct Shared {
    planned: Vec<AtomicU64>,
    answered: AtomicU64,
    /// Woken by the reader when answers arrive, so that a closed-loop
    /// sender at its in-flight limit sleeps instead of spinning (on two
    /// cores a spinning generator starves the server it measures).
    answers_arrived: tokio::sync::Notify,
}

/// One session's results.
struct SessionResult {
    sent: Sent,
    answers: Answers,
    rejects: BTreeMap<char, u64>,
    accepted: Histogram<u64>,
    executed: Histogram<u64>,
    per_second: Vec<u64>,
}

impl SessionResult {
    fn new() -> SessionResult {
        SessionResult {
            sent: Sent::default(),
            answers: Answers::default(),
            rejects: BTreeMap::new(),
            accepted: histogram(),
            executed: histogram(),
            per_second: Vec::new(),
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// A small deterministic generator (SplitMix64), for seeded order mixes.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

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
struct Mix {
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
    fn message(&mut self) -> (Inbound, Option<u64>) {
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
            if self.resting.len() == 64 {
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

/// Runs one measurement.
///
/// # Errors
/// A session could not connect or log in.
pub async fn run(options: &LoadOptions) -> Result<LoadReport, String> {
    let ping = loopback_ping(20_000).await.map_err(|e| format!("loopback ping-pong: {e}"))?;
    let sessions = options.users.len().max(1) as u64;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    let progress = options.progress.then(|| progress_bar(options));
    let sent_counter = Arc::new(AtomicU64::new(0));
    let pacer = Pacer::start(options.rate.is_some());
    let run_tag = run_tag().await;
    for (i, user) in options.users.iter().enumerate() {
        let mut client = Client::connect(options.connect).await.map_err(|e| format!("{user}: {e}"))?;
        match client.login(user, &options.password, "", 0).await.map_err(|e| format!("{user}: {e}"))? {
            Received::LoginAccepted { .. } => {}
            other => return Err(format!("{user}: login refused: {other:?}")),
        }
        let first_account = user_first_account(user);
        let mix = Mix {
            rng: Rng(options.seed ^ ((i as u64 + 1) * 0x9E37)),
            session: i as u8,
            run_tag,
            first_account,
            next: 0,
            pending_block: None,
            resting: Vec::with_capacity(64),
        };
        let session = Session {
            mix,
            rate: options.rate.map(|r| (r / sessions).max(1)),
            in_flight: options.in_flight,
            start,
            warmup: options.warmup,
            end: options.warmup + options.duration,
            sent_counter: Arc::clone(&sent_counter),
            pacer: Arc::clone(&pacer.tick),
        };
        tasks.push(tokio::spawn(session.run(client)));
    }
    if let Some(bar) = &progress {
        tokio::spawn(show_live_rate(bar.clone(), Arc::clone(&sent_counter), start, options.warmup + options.duration));
    }
    let mut report = LoadReport {
        rate: options.rate,
        seconds: options.duration.as_secs_f64(),
        sent: Sent::default(),
        answers: Answers::default(),
        rejects: BTreeMap::new(),
        accepted: histogram(),
        executed: histogram(),
        per_second: Vec::new(),
        ping,
    };
    for task in tasks {
        let result = task.await.map_err(|e| e.to_string())??;
        merge(&mut report, result);
    }
    drop(pacer);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(report)
}

/// Updates the progress bar with the rate sent over the last 250 ms.
async fn show_live_rate(bar: indicatif::ProgressBar, counter: Arc<AtomicU64>, start: Instant, total: Duration) {
    let mut last = 0;
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = counter.load(Ordering::Relaxed);
        bar.set_position(start.elapsed().as_millis() as u64);
        bar.set_message(format!("{:>10.0} msg/s", (now - last) as f64 * 4.0));
        last = now;
    }
}

fn progress_bar(options: &LoadOptions) -> indicatif::ProgressBar {
    let total = (options.warmup + options.duration).as_millis() as u64;
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {elapsed}/{duration} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn merge(report: &mut LoadReport, r: SessionResult) {
    report.sent.orders += r.sent.orders;
    report.sent.replaces += r.sent.replaces;
    report.sent.cancels += r.sent.cancels;
    let (a, b) = (&mut report.answers, r.answers);
    a.accepted += b.accepted;
    a.replaced += b.replaced;
    a.rejected += b.rejected;
    a.cancelled_by_user += b.cancelled_by_user;
    a.cancel_rejects += b.cancel_rejects;
    a.cancelled_other += b.cancelled_other;
    a.fills_maker += b.fills_maker;
    a.fills_taker += b.fills_taker;
    a.fills_block += b.fills_block;
    for (k, v) in r.rejects {
        *report.rejects.entry(k).or_default() += v;
    }
    let _ = report.accepted.add(&r.accepted);
    let _ = report.executed.add(&r.executed);
    if report.per_second.len() < r.per_second.len() {
        report.per_second.resize(r.per_second.len(), 0);
    }
    for (i, n) in r.per_second.into_iter().enumerate() {
        report.per_second[i] += n;
    }
}

/// DEMOnn's first account (`(nn-1) * 340 + 1`); other names start at 1.
fn user_first_account(user: &str) -> u32 {
    user.strip_prefix("DEMO").and_then(|n| n.parse::<u32>().ok()).map_or(1, |n| (n.max(1) - 1) * 340 + 1)
}

/// How often the pacer wakes the open-loop senders.
const PACER_TICK: Duration = Duration::from_micros(100);

/// The open-loop clock: a thread that wakes every session's sender each
/// [`PACER_TICK`]. tokio's own timer has a resolution of one millisecond,
/// which would put up to a millisecond of the generator's own delay into
/// every latency measured from the planned send time; a sleeping thread
/// keeps that to about a tick without spinning a core away from the server.
struct Pacer {
    tick: Arc<tokio::sync::Notify>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    fn start(open_loop: bool) -> Pacer {
        let tick = Arc::new(tokio::sync::Notify::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = open_loop.then(|| {
            let (tick, stop) = (Arc::clone(&tick), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("carbonx-pacer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(PACER_TICK);
                        tick.notify_waiters();
                    }
                })
                .ok()
        });
        Pacer { tick, stop, thread: thread.flatten() }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Session {
    pacer: Arc<tokio::sync::Notify>,
    mix: Mix,
    rate: Option<u64>,
    in_flight: u64,
    start: Instant,
    warmup: Duration,
    end: Duration,
    sent_counter: Arc<AtomicU64>,
}

impl Session {
    async fn run(self, client: Client) -> Result<SessionResult, String> {
        let (reader, writer) = client.into_split();
        let shared = Arc::new(Shared {
            planned: (0..PLANNED_RING).map(|_| AtomicU64::new(u64::MAX)).collect(),
            answered: AtomicU64::new(0),
            answers_arrived: tokio::sync::Notify::new(),
        });
        let (start, warmup) = (self.start, self.warmup);
        let reader_task = tokio::spawn(read_answers(reader, Arc::clone(&shared), start, warmup));
        let (sent, per_second) = self.send_all(writer, &shared).await?;
        let expected = sent.orders + sent.replaces + sent.cancels;
        let mut result = reader_task.await.map_err(|e| e.to_string())?;
        let _ = expected;
        result.sent = sent;
        result.per_second = per_second;
        Ok(result)
    }

    async fn send_all(
        mut self,
        mut writer: carbonx_gateway::client::ClientWriter,
        shared: &Shared,
    ) -> Result<(Sent, Vec<u64>), String> {
        let mut sent = Sent::default();
        let mut per_second = Vec::new();
        let interval_ns = self.rate.map(|r| 1_000_000_000 / r.max(1));
        let mut planned_ns: u64 = 0;
        tokio::time::sleep_until(self.start.into()).await;
        loop {
            let now = self.start.elapsed();
            if now >= self.end {
                break;
            }
            let now_ns = now.as_nanos() as u64;
            // Open loop: everything planned up to now goes out in one write.
            // Closed loop: top up to the in-flight limit.
            let due = match interval_ns {
                Some(step) if now_ns >= planned_ns => ((now_ns - planned_ns) / step + 1).min(4_096),
                Some(_) => 0,
                None => self.in_flight.saturating_sub(total(&sent) - shared.answered.load(Ordering::Acquire)),
            };
            for _ in 0..due {
                let planned = match interval_ns {
                    Some(step) => {
                        planned_ns += step;
                        planned_ns - step
                    }
                    None => now_ns,
                };
                let (message, order) = self.mix.message();
                if let Some(n) = order {
                    shared.planned[(n as usize) % PLANNED_RING].store(planned, Ordering::Release);
                }
                match message {
                    Inbound::Cancel(_) => sent.cancels += 1,
                    Inbound::Replace(_) => sent.replaces += 1,
                    _ => sent.orders += 1,
                }
                if let Some(measured) = planned.checked_sub(self.warmup.as_nanos() as u64) {
                    let second = (measured / 1_000_000_000) as usize;
                    if per_second.len() <= second {
                        per_second.resize(second + 1, 0);
                    }
                    per_second[second] += 1;
                }
                writer.queue(&message);
            }
            if due > 0 {
                self.sent_counter.fetch_add(due, Ordering::Relaxed);
                writer.flush().await.map_err(|e| e.to_string())?;
            }
            // Open loop: the pacer's next tick (tokio's timer only as a
            // fallback, should the pacer thread be missing).
            match interval_ns {
                Some(_) => {
                    let _ = tokio::time::timeout(Duration::from_millis(2), self.pacer.notified()).await;
                }
                // Closed loop: wait for answers (bounded, so that the end of
                // the run is noticed even if the server goes quiet).
                None if due == 0 => {
                    let _ = tokio::time::timeout(Duration::from_millis(10), shared.answers_arrived.notified()).await;
                }
                None => tokio::task::yield_now().await,
            }
        }
        // Wait (bounded) for the answers, then log out.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.answered.load(Ordering::Acquire) < total(&sent) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer.send_packet(Packet::LogoutRequest).await.map_err(|e| e.to_string())?;
        Ok((sent, per_second))
    }
}

fn total(sent: &Sent) -> u64 {
    sent.orders + sent.replaces + sent.cancels
}

/// Order number of a load token (its last 8 base-36 digits).
fn order_number(token: &[u8; 14]) -> Option<u64> {
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
async fn run_tag() -> [u8; 3] {
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

async fn read_answers(
    mut reader: carbonx_gateway::client::ClientReader,
    shared: Arc<Shared>,
    start: Instant,
    warmup: Duration,
) -> SessionResult {
    let mut r = SessionResult::new();
    let timer = Timer { shared: &shared, start, warmup_ns: warmup.as_nanos() as u64 };
    while let Ok((_, message)) = reader.next_message(Duration::from_secs(30)).await {
        if tally(&mut r, &message, &timer) {
            shared.answered.fetch_add(1, Ordering::AcqRel);
            shared.answers_arrived.notify_one();
        }
    }
    r
}

/// Latency of an answer from its order's planned send time.
struct Timer<'a> {
    shared: &'a Shared,
    start: Instant,
    warmup_ns: u64,
}

impl Timer<'_> {
    /// Nanoseconds since the order under `token` was planned (measured part
    /// only); `take` forgets the order so that only its first fill counts.
    fn latency(&self, token: &[u8; 14], take: bool) -> Option<u64> {
        let slot = &self.shared.planned[order_number(token)? as usize % PLANNED_RING];
        let planned = if take { slot.swap(u64::MAX, Ordering::AcqRel) } else { slot.load(Ordering::Acquire) };
        let now = self.start.elapsed().as_nanos() as u64;
        (planned != u64::MAX && planned >= self.warmup_ns).then(|| now.saturating_sub(planned).max(1))
    }
}

/// Counts one answer; true when it answers a message the session sent.
fn tally(r: &mut SessionResult, message: &Outbound, timer: &Timer<'_>) -> bool {
    let a = &mut r.answers;
    match message {
        Outbound::Accepted(x) => {
            a.accepted += 1;
            timer.latency(&x.token, false).map(|ns| r.accepted.record(ns));
            true
        }
        Outbound::Replaced(x) => {
            a.replaced += 1;
            timer.latency(&x.order.token, false).map(|ns| r.accepted.record(ns));
            true
        }
        Outbound::Rejected { reason, .. } => {
            a.rejected += 1;
            *r.rejects.entry(char::from(*reason)).or_default() += 1;
            true
        }
        Outbound::Canceled { reason: b'U', .. } => {
            a.cancelled_by_user += 1;
            true
        }
        Outbound::Canceled { .. } => {
            a.cancelled_other += 1;
            false
        }
        Outbound::CancelReject { .. } => {
            a.cancel_rejects += 1;
            true
        }
        Outbound::Executed(x) => {
            match x.liquidity {
                b'A' => a.fills_maker += 1,
                b'R' => {
                    a.fills_taker += 1;
                    timer.latency(&x.token, true).map(|ns| r.executed.record(ns));
                }
                _ => a.fills_block += 1,
            }
            false
        }
        Outbound::SystemEvent { .. } => false,
    }
}

/// Round trips of a 64-byte message over a loopback TCP connection.
async fn loopback_ping(rounds: usize) -> std::io::Result<Histogram<u64>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        loop {
            if socket.read_exact(&mut buf).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
            socket.write_all(&buf).await?;
        }
    });
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let mut hist = histogram();
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        let t = Instant::now();
        socket.write_all(&buf).await?;
        socket.read_exact(&mut buf).await?;
        let _ = hist.record((t.elapsed().as_nanos() as u64).max(1));
    }
    drop(socket);
    let _ = echo.await;
    Ok(hist)
}

const QUANTILES: [(f64, &str); 6] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99"), (1.0, "max")];

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1_000.0)
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.rate.map_or("max".to_string(), |r| r.to_string());
        writeln!(
            f,
            "target rate {rate} msg/s; measured {:.1} s; throughput {:.0} msg/s",
            self.seconds,
            self.throughput()
        )?;
        writeln!(f, "{:<22}{}", "latency (us)", QUANTILES.map(|(_, n)| format!("{n:>10}")).join(""))?;
        for (name, h) in [
            ("order -> Accepted", &self.accepted),
            ("order -> Executed", &self.executed),
            ("TCP ping-pong (RTT)", &self.ping),
        ] {
            let cells: String = QUANTILES.map(|(q, _)| format!("{:>10}", micros(h.value_at_quantile(q)))).join("");
            writeln!(f, "{name:<22}{cells}  (n={})", h.len())?;
        }
        let (p50, p99) = (self.ping.value_at_quantile(0.5).max(1), self.ping.value_at_quantile(0.99).max(1));
        writeln!(
            f,
            "gateway vs loopback RTT: p50 {:.1}x, p99 {:.1}x",
            self.accepted.value_at_quantile(0.5) as f64 / p50 as f64,
            self.accepted.value_at_quantile(0.99) as f64 / p99 as f64
        )?;
        let s = self.sent;
        let a = self.answers;
        writeln!(f, "sent: {} orders, {} replaces, {} cancels", s.orders, s.replaces, s.cancels)?;
        writeln!(
            f,
            "answers: {} accepted, {} replaced, {} rejected, {} cancelled, {} cancel rejects, {} unanswered",
            a.accepted,
            a.replaced,
            a.rejected,
            a.cancelled_by_user,
            a.cancel_rejects,
            self.unanswered()
        )?;
        writeln!(
            f,
            "fills: {} maker, {} taker, {} block sides; other cancels {}",
            a.fills_maker, a.fills_taker, a.fills_block, a.cancelled_other
        )?;
        let rejects: Vec<String> = self.rejects.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        writeln!(f, "rejects by reason: {}", if rejects.is_empty() { "none".into() } else { rejects.join(", ") })
    }
}

impl LoadReport {
    /// Machine-readable summary.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"rate\":{},", self.rate.map_or("\"max\"".to_string(), |r| r.to_string()));
        let _ = write!(out, "\"seconds\":{:.3},\"throughput\":{:.1},", self.seconds, self.throughput());
        for (name, h) in [("accepted_ns", &self.accepted), ("executed_ns", &self.executed), ("ping_ns", &self.ping)] {
            let cells: Vec<String> = QUANTILES.map(|(q, n)| format!("\"{n}\":{}", h.value_at_quantile(q))).to_vec();
            let _ = write!(out, "\"{name}\":{{{},\"count\":{}}},", cells.join(","), h.len());
        }
        let (s, a) = (self.sent, self.answers);
        let _ =
            write!(out, "\"sent\":{{\"orders\":{},\"replaces\":{},\"cancels\":{}}},", s.orders, s.replaces, s.cancels);
        let _ = write!(
            out,
            "\"answers\":{{\"accepted\":{},\"replaced\":{},\"rejected\":{},\"cancelled\":{},\"cancel_rejects\":{},\"unanswered\":{}}},",
            a.accepted,
            a.replaced,
            a.rejected,
            a.cancelled_by_user,
            a.cancel_rejects,
            self.unanswered()
        );
        let _ = write!(
            out,
            "\"fills\":{{\"maker\":{},\"taker\":{},\"block\":{}}},",
            a.fills_maker, a.fills_taker, a.fills_block
        );
        let rejects: Vec<String> = self.rejects.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let _ = write!(out, "\"rejects\":{{{}}}}}", rejects.join(","));
        out
    }

    /// Writes `accepted.hgrm`, `executed.hgrm`, `latency.svg` and
    /// `throughput.svg` into `dir`; returns the paths.
    ///
    /// # Errors
    /// A file could not be written.
    pub fn write_outputs(&self, dir: &Path, tag: &str) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        for (name, h) in [("accepted", &self.accepted), ("executed", &self.executed)] {
            let path = dir.join(format!("{tag}{name}.hgrm"));
            std::fs::write(&path, hgrm(h))?;
            written.push(path);
        }
        let path = dir.join(format!("{tag}latency.svg"));
        crate::tools::plot::latency(
            &path,
            &[("order -> Accepted", &self.accepted), ("order -> Executed", &self.executed)],
        )?;
        written.push(path);
        let path = dir.join(format!("{tag}throughput.svg"));
        crate::tools::plot::throughput(&path, &self.per_second)?;
        written.push(path);
        Ok(written)
    }
}

/// The percentile distribution in HdrHistogram's text format (microseconds).
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut count = 0u64;
    for v in h.iter_quantiles(1) {
        count += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inverse = if q < 1.0 { format!("{:.2}", 1.0 / (1.0 - q)) } else { "inf".to_string() };
        let _ =
            writeln!(out, "{:12.3} {:14.12} {:10} {:>14}", v.value_iterated_to() as f64 / 1_000.0, q, count, inverse);
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]",
        h.mean() / 1_000.0,
        h.stdev() / 1_000.0,
        h.max() as f64 / 1_000.0,
        h.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_run_the_session_and_the_order_number() {
        let mix = Mix {
            rng: Rng(1),
            session: 3,
            run_tag: *b"A0Z",
            first_account: 1,
            next: 0,
            pending_block: None,
            resting: Vec::new(),
        };
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
