//! What a load run found: counts of what was sent and answered, HDR
//! histograms of the latencies from each order's planned send time, and
//! their output as text, JSON, `.hgrm` files and plots.

use super::follow::Follow;
use super::mix::order_number;
use super::pacer::{PLANNED_RING, Shared};
use carbonx_engine::{CancelReason, RejectReason};
use carbonx_gateway::client::LeaderError;
use carbonx_gateway::ouch::Outbound;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    /// Rejects by reason.
    pub rejects: BTreeMap<Reject, u64>,
    /// Order → Accepted, nanoseconds, measured part only.
    pub accepted: Histogram<u64>,
    /// Order → first Executed, nanoseconds, measured part only.
    pub executed: Histogram<u64>,
    /// Messages sent per second of the run (throughput over time).
    pub per_second: Vec<u64>,
    /// Logins again after a dropped connection (following the leader).
    pub reconnects: u64,
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
    /// Canceled by the user ([`CancelReason::User`]): answers to cancels.
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
    /// Orders, replaces and cancels that got no answer: after a failover,
    /// those the dead leader took but never sequenced among them.
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

/// A reject's reason, ordered by its OUCH letter (as the report lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// A reason of PROTOCOL §5.1.
    Reason(RejectReason),
    /// A letter PROTOCOL §5.1 does not define (counted, never dropped).
    Unknown(u8),
}

impl Reject {
    /// The reject for an OUCH reason letter.
    pub fn from_letter(letter: u8) -> Reject {
        RejectReason::from_letter(letter).map_or(Reject::Unknown(letter), Reject::Reason)
    }

    /// The OUCH letter.
    pub fn letter(self) -> u8 {
        match self {
            Reject::Reason(reason) => reason.letter(),
            Reject::Unknown(letter) => letter,
        }
    }

    /// The OUCH letter as a character.
    pub fn char(self) -> char {
        char::from(self.letter())
    }
}

impl Ord for Reject {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |r: &Reject| (r.letter(), matches!(r, Reject::Unknown(_)));
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Reject {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One session's results.
pub(super) struct SessionResult {
    /// What the session sent.
    pub(super) sent: Sent,
    answers: Answers,
    rejects: BTreeMap<Reject, u64>,
    accepted: Histogram<u64>,
    executed: Histogram<u64>,
    /// Messages sent per second of the measured part.
    pub(super) per_second: Vec<u64>,
    /// Logins again after a dropped connection.
    reconnects: u64,
    /// Why the reader stopped early: no node took its login again.
    pub(super) gave_up: Option<LeaderError>,
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
            reconnects: 0,
            gave_up: None,
        }
    }
}

pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Adds one session's results to the run's.
pub(super) fn merge(report: &mut LoadReport, r: SessionResult) {
    report.sent.orders += r.sent.orders;
    report.sent.replaces += r.sent.replaces;
    report.sent.cancels += r.sent.cancels;
    report.reconnects += r.reconnects;
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

/// The reader task of a session: counts and times every answer (once,
/// by sequence number) until the session closes. A connection that drops
/// or stays quiet before the sender closes is logged in to again through
/// `follow`; when no node takes the login, the reader stops with why.
pub(super) async fn read_answers(
    mut reader: carbonx_gateway::client::ClientReader,
    mut follow: Follow,
    shared: Arc<Shared>,
    start: Instant,
    warmup: Duration,
) -> SessionResult {
    let mut r = SessionResult::new();
    let timer = Timer { shared: &shared, start, warmup_ns: warmup.as_nanos() as u64 };
    loop {
        match reader.next_message(Duration::from_secs(30)).await {
            Ok((seq, message)) => {
                if follow.first_time(seq) && tally(&mut r, &message, &timer) {
                    shared.answered.fetch_add(1, Ordering::AcqRel);
                    shared.answers_arrived.notify_one();
                }
            }
            Err(_) if shared.closing.load(Ordering::Acquire) => return r,
            Err(_) => match follow.rejoin().await {
                Ok(next) => {
                    reader = next;
                    r.reconnects += 1;
                }
                Err(err) => {
                    r.gave_up = Some(err);
                    return r;
                }
            },
        }
    }
}

/// Whether timing an answer uses up its order's planned send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Leave it: the order's one answer of this kind.
    Keep,
    /// Forget it, so that only the order's first fill is timed.
    Forget,
}

/// OUCH liquidity flag of a fill on the resting (maker) side.
const LIQUIDITY_ADDED: u8 = b'A';
/// OUCH liquidity flag of a fill on the incoming (taker) side.
const LIQUIDITY_REMOVED: u8 = b'R';

/// Latency of an answer from its order's planned send time.
struct Timer<'a> {
    shared: &'a Shared,
    start: Instant,
    warmup_ns: u64,
}

impl Timer<'_> {
    /// Nanoseconds since the order under `token` was planned (measured part
    /// only); [`Slot::Forget`] forgets the order so that only its first
    /// fill counts.
    fn latency(&self, token: &[u8; 14], use_slot: Slot) -> Option<u64> {
        let slot = &self.shared.planned[order_number(token)? as usize % PLANNED_RING];
        let planned = match use_slot {
            Slot::Forget => slot.swap(u64::MAX, Ordering::AcqRel),
            Slot::Keep => slot.load(Ordering::Acquire),
        };
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
            timer.latency(&x.token, Slot::Keep).map(|ns| r.accepted.record(ns));
            true
        }
        Outbound::Replaced(x) => {
            a.replaced += 1;
            timer.latency(&x.order.token, Slot::Keep).map(|ns| r.accepted.record(ns));
            true
        }
        Outbound::Rejected { reason, .. } => {
            a.rejected += 1;
            *r.rejects.entry(Reject::from_letter(*reason)).or_default() += 1;
            true
        }
        Outbound::Canceled { reason, .. } if *reason == CancelReason::User.letter() => {
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
                LIQUIDITY_ADDED => a.fills_maker += 1,
                LIQUIDITY_REMOVED => {
                    a.fills_taker += 1;
                    timer.latency(&x.token, Slot::Forget).map(|ns| r.executed.record(ns));
                }
                _ => a.fills_block += 1,
            }
            false
        }
        Outbound::SystemEvent { .. } => false,
    }
}

/// The percentiles reported, and their names.
const QUANTILES: [(f64, &str); 6] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99"), (1.0, "max")];

/// `carbonx load --json`: one object per step.
#[derive(serde::Serialize)]
struct JsonReport {
    rate: JsonRate,
    seconds: f64,
    throughput: f64,
    accepted_ns: BTreeMap<&'static str, u64>,
    executed_ns: BTreeMap<&'static str, u64>,
    ping_ns: BTreeMap<&'static str, u64>,
    sent: JsonSent,
    answers: JsonAnswers,
    fills: JsonFills,
    /// By OUCH reject reason letter.
    rejects: BTreeMap<String, u64>,
    /// Logins again after a dropped connection (following the leader).
    reconnects: u64,
}

/// A rate per second, or `"max"` (closed loop).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum JsonRate {
    PerSecond(u64),
    Max(&'static str),
}

#[derive(serde::Serialize)]
struct JsonSent {
    orders: u64,
    replaces: u64,
    cancels: u64,
}

#[derive(serde::Serialize)]
struct JsonAnswers {
    accepted: u64,
    replaced: u64,
    rejected: u64,
    cancelled: u64,
    cancel_rejects: u64,
    unanswered: i64,
}

#[derive(serde::Serialize)]
struct JsonFills {
    maker: u64,
    taker: u64,
    block: u64,
}

/// Nanoseconds as microseconds with one decimal.
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
        let rejects: Vec<String> = self.rejects.iter().map(|(k, v)| format!("{}: {v}", k.char())).collect();
        writeln!(f, "rejects by reason: {}", if rejects.is_empty() { "none".into() } else { rejects.join(", ") })?;
        if self.reconnects > 0 {
            let n = self.reconnects;
            writeln!(f, "reconnects: {n} (dropped connections logged in to again; unanswered counts what was lost)")?;
        }
        Ok(())
    }
}

impl LoadReport {
    /// Machine-readable summary.
    pub fn to_json(&self) -> String {
        let percentiles = |h: &Histogram<u64>| {
            let mut cells: BTreeMap<&'static str, u64> = QUANTILES.map(|(q, n)| (n, h.value_at_quantile(q))).into();
            cells.insert("count", h.len());
            cells
        };
        let (s, a) = (self.sent, self.answers);
        let json = JsonReport {
            rate: self.rate.map_or(JsonRate::Max("max"), JsonRate::PerSecond),
            seconds: self.seconds,
            throughput: self.throughput(),
            accepted_ns: percentiles(&self.accepted),
            executed_ns: percentiles(&self.executed),
            ping_ns: percentiles(&self.ping),
            sent: JsonSent { orders: s.orders, replaces: s.replaces, cancels: s.cancels },
            answers: JsonAnswers {
                accepted: a.accepted,
                replaced: a.replaced,
                rejected: a.rejected,
                cancelled: a.cancelled_by_user,
                cancel_rejects: a.cancel_rejects,
                unanswered: self.unanswered(),
            },
            fills: JsonFills { maker: a.fills_maker, taker: a.fills_taker, block: a.fills_block },
            rejects: self.rejects.iter().map(|(k, v)| (k.char().to_string(), *v)).collect(),
            reconnects: self.reconnects,
        };
        serde_json::to_string(&json).expect("a load report serialises")
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
    fn rejects_keep_their_reason_and_sort_by_letter() {
        assert_eq!(Reject::from_letter(b'H'), Reject::Reason(RejectReason::Halted));
        assert_eq!(Reject::from_letter(b'?'), Reject::Unknown(b'?'));
        let mut keys = [Reject::from_letter(b'n'), Reject::from_letter(b'?'), Reject::from_letter(b'H')];
        keys.sort();
        assert_eq!(keys.map(Reject::char), ['?', 'H', 'n']);
    }

    #[test]
    fn the_json_report_is_json_with_every_figure() {
        let mut accepted = Histogram::new(3).unwrap();
        accepted.record(1_500).unwrap();
        let report = LoadReport {
            rate: None,
            seconds: 2.0,
            sent: Sent { orders: 3, replaces: 0, cancels: 1 },
            answers: Answers { accepted: 2, rejected: 1, cancelled_by_user: 1, ..Answers::default() },
            rejects: BTreeMap::from([(Reject::from_letter(b'"'), 1)]),
            accepted,
            executed: Histogram::new(3).unwrap(),
            per_second: vec![2, 2],
            reconnects: 1,
            ping: Histogram::new(3).unwrap(),
        };
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["rate"], "max");
        assert_eq!(
            (json["accepted_ns"]["count"].as_u64(), json["accepted_ns"]["p50"].as_u64()),
            (Some(1), Some(1_500))
        );
        assert_eq!(json["answers"]["unanswered"], 0);
        // A letter that needs escaping stays valid JSON (the old hand-written output broke here).
        assert_eq!(json["rejects"]["\""], 1);
        assert_eq!(json["sent"]["cancels"], 1);
        assert_eq!(json["reconnects"], 1);
        assert!(report.to_string().contains("reconnects: 1"), "{report}");
    }
}
