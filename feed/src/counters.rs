//! What the feed's UDP side has done, for the operator's `/metrics`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the MoldUDP64 publisher and the re-request server.
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// MoldUDP64 datagrams that could not be sent to a destination.
    pub publish_failures: AtomicU64,
    /// Re-requests answered.
    pub rerequests_answered: AtomicU64,
    /// Re-requests dropped because their source was over its byte rate.
    pub rerequests_limited: AtomicU64,
    /// Re-requests dropped otherwise: malformed, another session, not yet sent.
    pub rerequests_dropped: AtomicU64,
    /// TCP feed consumers logged in now.
    pub tcp_connections: AtomicU64,
    /// Snapshot consumers logged in now.
    pub snapshot_connections: AtomicU64,
    /// Feed and snapshot logins refused (wrong user or password, or a cap).
    pub logins_refused: AtomicU64,
}

/// Counts one connection in `counter` while it lives.
#[derive(Debug)]
pub struct Connected<'a>(&'a AtomicU64);

impl<'a> Connected<'a> {
    /// Counts a connection in `counter` until dropped.
    pub fn new(counter: &'a AtomicU64) -> Connected<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Connected(counter)
    }
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends `datagram` to every destination (the A and B copies, or however
/// many are configured). A failure is counted and logged as an error: the
/// first, then every power of two, so a dead route cannot flood the log.
pub fn send_all(socket: &UdpSocket, destinations: &[SocketAddr], datagram: &[u8], counters: &FeedCounters) {
    for to in destinations {
        if let Err(err) = socket.send_to(datagram, to) {
            let failures = counters.publish_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures.is_power_of_two() {
                tracing::error!(%to, %err, failures, "MoldUDP64 send failed");
            }
        }
    }
}

/// Reads a counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
