//! Snapshots built off the feed thread and shared.
//!
//! Building a snapshot sorts every resting order; done under the feed's
//! mutex, one request per client would stall the feed thread, its input,
//! and so the sequencer and all order entry. Instead a request copies the
//! feed's book under the mutex (a copy of flat tables, no sorting) at a
//! batch boundary (the feed thread applies whole batches under the mutex),
//! builds the ready-to-send packets on a blocking thread, and keeps the
//! result in an [`Arc`]: concurrent and following requests get the same
//! bytes until it is older than [`Snapshots::max_age`] and the feed has
//! moved on. A snapshot that is a little old is still exact: its `G`
//! names the first feed number it does not reflect.

use crate::book::BookBuilder;
use crate::itch::{EndOfSnapshot, Message};
use crate::service::FeedShared;
use bytes::Bytes;
use carbonx_soup::packet::{Packet, SESSION_LEN};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a snapshot is served before a newer one is built (when the
/// feed has moved on meanwhile).
pub const MAX_AGE: Duration = Duration::from_millis(200);

/// One snapshot, ready to send after the Login Accepted.
#[derive(Debug)]
pub struct Built {
    /// The trading day's session.
    pub session: [u8; SESSION_LEN],
    /// The first feed sequence number not reflected (the `G`'s number).
    pub next: u64,
    /// Sequenced Data packets: `R`, `J`, `H`, `A`..., `G`, then End of Session.
    pub packets: Bytes,
    built_at: Instant,
}

/// The latest snapshot of one feed, shared by every request.
#[derive(Debug)]
pub struct Snapshots {
    latest: parking_lot::Mutex<Option<Arc<Built>>>,
    building: tokio::sync::Mutex<()>,
    max_age: Duration,
    builds: std::sync::atomic::AtomicU64,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots::new(MAX_AGE)
    }
}

impl Snapshots {
    /// Snapshots reused for up to `max_age` while the feed moves on.
    pub fn new(max_age: Duration) -> Snapshots {
        Snapshots {
            latest: parking_lot::Mutex::new(None),
            building: tokio::sync::Mutex::new(()),
            max_age,
            builds: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many snapshots were built (not served) so far.
    pub fn builds(&self) -> u64 {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The snapshot to send now: the latest when still current, otherwise
    /// a new one (one build at a time; requests arriving meanwhile wait
    /// for it and share it).
    pub async fn get(&self, shared: &FeedShared) -> Arc<Built> {
        if let Some(built) = self.current(shared) {
            return built;
        }
        let _turn = self.building.lock().await;
        if let Some(built) = self.current(shared) {
            return built;
        }
        let (book, session, last_ns, next) = {
            let state = shared.state.lock();
            let next = state.log.as_ref().map_or(1, carbonx_soup::daylog::DayLog::next_seq);
            (state.book.clone(), state.session, state.last_ns, next)
        };
        let built = tokio::task::spawn_blocking(move || build(&book, session, last_ns, next))
            .await
            .unwrap_or_else(|_| build(&BookBuilder::new(), session, last_ns, next));
        let built = Arc::new(built);
        self.builds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.latest.lock() = Some(Arc::clone(&built));
        built
    }

    /// The latest snapshot if it is of today's session and either nothing
    /// was published since or it is younger than the maximum age.
    fn current(&self, shared: &FeedShared) -> Option<Arc<Built>> {
        let (session, next) = *shared.next_seq.borrow();
        let latest = self.latest.lock().clone()?;
        let fresh = latest.next == next || latest.built_at.elapsed() < self.max_age;
        (latest.session == session && fresh).then_some(latest)
    }
}

/// The packets of `book`'s snapshot, stamped `ns`, ending with `G next`
/// and End of Session.
pub fn build(book: &BookBuilder, session: [u8; SESSION_LEN], ns: u64, next: u64) -> Built {
    let messages = book.snapshot(ns);
    let mut packets = Vec::with_capacity(messages.len() * 48 + 64);
    let mut encoded = [0u8; crate::itch::MESSAGE_LEN_MAX];
    for message in messages.iter().chain([&Message::EndOfSnapshot(EndOfSnapshot { sequence: next })]) {
        let len = message.encode(&mut encoded);
        Packet::Sequenced(&encoded[..len]).encode(&mut packets);
    }
    Packet::EndOfSession.encode(&mut packets);
    Built { session, next, packets: Bytes::from(packets), built_at: Instant::now() }
}

/// Default bytes per second the snapshot port sends, all connections
/// together.
pub const BYTES_PER_SECOND: u64 = 32 << 20;

/// The snapshot port's byte budget, shared by every snapshot connection:
/// together they send at most `bytes_per_second` (a second's worth at
/// once). Sharing one built snapshot keeps the server's work per request
/// small, but sending it is not: 64 clients taking snapshots in a loop
/// otherwise keep the machine's CPUs copying gigabytes over sockets,
/// away from order entry and the live feed. A connection over the budget
/// waits its turn: the debt it leaves is what the next one waits for.
pub struct Pacer {
    bytes_per_second: u64,
    state: parking_lot::Mutex<Credit>,
}

/// Bytes that may be sent now (negative: owed), as of `at`.
struct Credit {
    bytes: f64,
    at: Instant,
}

impl Pacer {
    /// A budget of `bytes_per_second` (at least 1), full.
    pub fn new(bytes_per_second: u64) -> Pacer {
        let bytes_per_second = bytes_per_second.max(1);
        Pacer {
            bytes_per_second,
            state: parking_lot::Mutex::new(Credit { bytes: bytes_per_second as f64, at: Instant::now() }),
        }
    }

    /// Takes `bytes` from the budget at `now`: how long the caller waits
    /// before sending them (zero while in credit).
    pub fn take(&self, bytes: usize, now: Instant) -> Duration {
        let rate = self.bytes_per_second as f64;
        let mut credit = self.state.lock();
        let earned = now.saturating_duration_since(credit.at).as_secs_f64() * rate;
        credit.bytes = (credit.bytes + earned).min(rate) - bytes as f64;
        credit.at = credit.at.max(now);
        if credit.bytes >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-credit.bytes / rate) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_lets_a_seconds_worth_through_then_spaces_the_rest_by_the_rate() {
        let pacer = Pacer::new(1_000);
        let start = Instant::now();
        assert_eq!(pacer.take(600, start), Duration::ZERO);
        assert_eq!(pacer.take(400, start), Duration::ZERO);
        // Empty: the next 500 bytes wait half a second, the 500 after them
        // (another connection) a whole second.
        assert_eq!(pacer.take(500, start), Duration::from_millis(500));
        assert_eq!(pacer.take(500, start), Duration::from_secs(1));
        // Two seconds later the debt is paid and the credit never exceeds
        // one second's worth.
        let later = start + Duration::from_secs(10);
        assert_eq!(pacer.take(1_000, later), Duration::ZERO);
        assert_eq!(pacer.take(100, later), Duration::from_millis(100));
    }

    #[test]
    fn requests_share_one_build_while_the_feed_has_not_moved() {
        let shared = FeedShared::new();
        shared.state.lock().session = *b"CX20260105";
        shared.next_seq.send_replace((*b"CX20260105", 1));
        let snapshots = Snapshots::new(Duration::ZERO);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let first = snapshots.get(&shared).await;
            let second = snapshots.get(&shared).await;
            assert!(Arc::ptr_eq(&first, &second));
            assert_eq!(snapshots.builds(), 1);
            // The feed moves on: an old snapshot (max age zero) is rebuilt.
            shared.next_seq.send_replace((first.session, 7));
            let third = snapshots.get(&shared).await;
            assert_eq!(snapshots.builds(), 2);
            assert!(!Arc::ptr_eq(&first, &third));
        });
    }

    #[test]
    fn a_snapshot_ends_with_g_and_end_of_session() {
        let built = build(&BookBuilder::new(), *b"CX20260105", 0, 42);
        let bytes = &built.packets[..];
        assert_eq!(&bytes[bytes.len() - 3..], &[0, 1, b'Z']);
        assert_eq!(bytes[2], b'S');
        assert_eq!(bytes[3], b'G');
    }
}
