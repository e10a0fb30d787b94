//! When a load run sends: each message's planned send time, open loop at
//! a target rate (a stall shows up as latency instead of as fewer sends) or
//! closed loop with a bounded number of orders in flight, and the pacer
//! thread that wakes the open-loop senders.

use super::LoadError;
use super::follow::{self, Outlet, Route};
use super::mix::Mix;
use super::report::{Sent, SessionResult, read_answers};
use carbonx_gateway::client::{ClientError, Leader};
use carbonx_gateway::ouch::Inbound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Orders whose send times are remembered per session (a ring): an answer
/// to an order older than this many sends is not timed.
pub(super) const PLANNED_RING: usize = 1 << 20;
/// Orders in flight per session with `--rate max`. Closed-loop maximum
/// throughput is a matter of keeping every stage's batches full: too few
/// in flight leave the batches short, beyond a few thousand nothing is
/// gained (BENCHMARKS.md has the measurements); latency at the maximum is
/// queueing, so measure latency at a set rate.
pub const IN_FLIGHT_DEFAULT: u64 = 4_096;

/// Shared per-session state between its writer and reader tasks.
pub(super) struct Shared {
    /// Each order's planned send time (ns from the start; `u64::MAX` when
    /// unknown or already timed), in a ring indexed by order number.
    pub(super) planned: Vec<AtomicU64>,
    /// Answers to messages the session sent.
    pub(super) answered: AtomicU64,
    /// Woken by the reader when answers arrive, so that a closed-loop
    /// sender at its in-flight limit sleeps instead of spinning (on a
    /// machine with few cores a spinning generator starves the server it
    /// measures).
    pub(super) answers_arrived: tokio::sync::Notify,
    /// Set by the sender before it logs out (or gives up): the reader then
    /// takes the connection's end as the end, not as a drop to recover from.
    pub(super) closing: AtomicBool,
}

/// How a run paces its sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loop {
    /// At a target rate, from planned send times.
    Open,
    /// As fast as answers come back, up to a number of orders in flight.
    Closed,
}

/// How often the pacer wakes the open-loop senders.
const PACER_TICK: Duration = Duration::from_micros(100);

/// The open-loop clock: a thread that wakes every session's sender each
/// [`PACER_TICK`]. tokio's own timer has a resolution of one millisecond,
/// which would put up to a millisecond of the generator's own delay into
/// every latency measured from the planned send time; a sleeping thread
/// keeps that to about a tick without spinning a core away from the server.
pub(super) struct Pacer {
    /// Notified at every tick.
    pub(super) tick: Arc<tokio::sync::Notify>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    /// Starts ticking in an open-loop run; a closed-loop run's pacer never ticks.
    pub(super) fn start(mode: Loop) -> Pacer {
        let tick = Arc::new(tokio::sync::Notify::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = (mode == Loop::Open).then(|| {
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

/// One session's sender: plans each message's send time and sends it.
pub(super) struct Session {
    /// Where and as whom it logs in (again, after a drop).
    pub(super) route: Route,
    /// The [`Pacer`]'s tick.
    pub(super) pacer: Arc<tokio::sync::Notify>,
    /// What to send.
    pub(super) mix: Mix,
    /// This session's messages per second; `None` = closed loop.
    pub(super) rate: Option<u64>,
    /// Orders in flight in closed loop.
    pub(super) in_flight: u64,
    /// When the run starts (the warm-up first).
    pub(super) start: Instant,
    /// Unmeasured time first.
    pub(super) warmup: Duration,
    /// When the run ends, from `start`.
    pub(super) end: Duration,
    /// Messages sent by every session, for the progress bar.
    pub(super) sent_counter: Arc<AtomicU64>,
}

impl Session {
    /// Sends until the end, waits (bounded) for the answers, logs out.
    /// When the connection drops, the reader logs in again (following the
    /// leader) and the sender carries on over the new connection.
    ///
    /// # Errors
    /// Writing to the server failed and no node took the login again, or
    /// the reader task failed.
    pub(super) async fn run(self, leader: Leader) -> Result<SessionResult, LoadError> {
        let user = self.route.user.clone();
        let (reader, follow, outlet) = follow::split(self.route.clone(), leader);
        let shared = Arc::new(Shared {
            planned: (0..PLANNED_RING).map(|_| AtomicU64::new(u64::MAX)).collect(),
            answered: AtomicU64::new(0),
            answers_arrived: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
        });
        let (start, warmup) = (self.start, self.warmup);
        let mut reader_task = tokio::spawn(read_answers(reader, follow, Arc::clone(&shared), start, warmup));
        let sent = self.send_all(outlet, &shared).await;
        shared.closing.store(true, Ordering::Release);
        match sent {
            Ok((sent, per_second)) => {
                let mut result = reader_task.await?;
                result.sent = sent;
                result.per_second = per_second;
                Ok(result)
            }
            // When the reader gave up finding a node to log in to (it ends
            // at once then), its error says why the session stopped.
            Err(source) => match tokio::time::timeout(Duration::from_secs(1), &mut reader_task).await {
                Ok(Ok(SessionResult { gave_up: Some(source), .. })) => Err(LoadError::Login { user, source }),
                Ok(_) => Err(LoadError::Session { user, source }),
                Err(_) => {
                    reader_task.abort();
                    Err(LoadError::Session { user, source })
                }
            },
        }
    }

    async fn send_all(mut self, mut outlet: Outlet, shared: &Shared) -> Result<(Sent, Vec<u64>), ClientError> {
        let mut sent = Sent::default();
        let mut per_second = Vec::new();
        let interval_ns = self.rate.map(|r| 1_000_000_000 / r.max(1));
        let mut planned_ns: u64 = 0;
        // Closed loop: messages in flight when a connection dropped, no
        // longer waited for (those the new leader never sequenced will not
        // be answered; the replayed answers of the others briefly let a few
        // more out than the limit).
        let mut written_off = 0;
        tokio::time::sleep_until(self.start.into()).await;
        loop {
            let now = self.start.elapsed();
            if now >= self.end {
                break;
            }
            if outlet.take_fresh() {
                written_off = in_flight(&sent, 0, shared);
            }
            let now_ns = now.as_nanos() as u64;
            // Open loop: everything planned up to now goes out in one write.
            // Closed loop: top up to the in-flight limit.
            let due = match interval_ns {
                Some(step) if now_ns >= planned_ns => ((now_ns - planned_ns) / step + 1).min(4_096),
                Some(_) => 0,
                None => self.in_flight.saturating_sub(in_flight(&sent, written_off, shared)),
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
                outlet.queue(&message);
            }
            if due > 0 {
                self.sent_counter.fetch_add(due, Ordering::Relaxed);
                if outlet.flush().await? {
                    written_off = in_flight(&sent, 0, shared);
                }
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
        wait_for_answers(shared, &mut outlet, total(&sent), written_off > 0).await;
        shared.closing.store(true, Ordering::Release);
        outlet.log_out().await?;
        Ok((sent, per_second))
    }
}

/// How long the answers may pause at the end of a run that lost a
/// connection before the rest are taken as never coming (what the dead
/// leader did not sequence is never answered).
const SETTLED: Duration = Duration::from_secs(1);

/// Waits (at most 10 s) until `sent` messages are answered; after a lost
/// connection (`lost_connection`, or one lost while waiting), only until no
/// answer has come for [`SETTLED`].
async fn wait_for_answers(shared: &Shared, outlet: &mut Outlet, sent: u64, mut lost_connection: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut answered, mut since) = (shared.answered.load(Ordering::Acquire), Instant::now());
    while answered < sent && Instant::now() < deadline && !(lost_connection && since.elapsed() >= SETTLED) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        lost_connection |= outlet.take_fresh();
        let now_answered = shared.answered.load(Ordering::Acquire);
        if now_answered != answered {
            (answered, since) = (now_answered, Instant::now());
        }
    }
}

fn total(sent: &Sent) -> u64 {
    sent.orders + sent.replaces + sent.cancels
}

/// Messages sent and still waited for: neither answered nor written off.
fn in_flight(sent: &Sent, written_off: u64, shared: &Shared) -> u64 {
    total(sent).saturating_sub(written_off).saturating_sub(shared.answered.load(Ordering::Acquire))
}
