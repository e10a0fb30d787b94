//! Following the leader. When a session's connection drops mid-run (in a
//! cluster, the leader died), its reader logs in again through the same
//! address list, asking for the stream from the next sequence number it
//! expects, and hands the sender the new connection's sending half. The
//! new leader replays what the old one sequenced but did not deliver;
//! anything numbered at or below what was already counted is skipped, so
//! no answer counts twice. Messages the old leader never sequenced get no
//! answer: they stay in the report's unanswered count.

use carbonx_gateway::client::{Client, ClientError, ClientReader, ClientWriter, Leader, LeaderError, Login};
use carbonx_gateway::ouch::Inbound;
use carbonx_soup::packet::Packet;
use carbonx_soup::stream::TlsClient;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a session looks for a node that takes its login, at the start
/// and after a drop: an election takes about a second, a node's restart a
/// few.
pub const LEADER_PATIENCE: Duration = Duration::from_secs(10);

/// How long the sender waits for the reader's new login after a failed
/// write: the reader's search, its last attempt's login wait, and a margin.
const NEW_CONNECTION_WAIT: Duration = Duration::from_secs(17);

/// Where and as whom a session logs in.
#[derive(Clone, Debug)]
pub(super) struct Route {
    /// The server's order-entry address, or every node's, tried in turn.
    pub(super) addrs: Arc<[SocketAddr]>,
    /// TLS settings; plain TCP when `None`.
    pub(super) tls: Option<TlsClient>,
    /// The username.
    pub(super) user: String,
    /// Its password.
    pub(super) password: String,
}

impl Route {
    /// Logs in to the node that takes the login, asking for the stream
    /// from `sequence` (0: only new messages).
    ///
    /// # Errors
    /// No node took the login within [`LEADER_PATIENCE`], or one refused it.
    pub(super) async fn log_in(&self, sequence: u64) -> Result<Leader, LeaderError> {
        let login = Login { user: &self.user, password: &self.password, session: "", sequence };
        Client::login_to_leader(&self.addrs, self.tls.as_ref(), &login, LEADER_PATIENCE).await
    }
}

/// The reader's side: what it has counted, and how to log in again.
pub(super) struct Follow {
    route: Route,
    /// The highest sequence number counted.
    last_seen: u64,
    /// To the sender: each new connection's sending half.
    writers: mpsc::UnboundedSender<ClientWriter>,
}

/// The sender's side: the current sending half, replaced after each of the
/// reader's logins.
pub(super) struct Outlet {
    writer: ClientWriter,
    fresh: mpsc::UnboundedReceiver<ClientWriter>,
}

/// A logged-in session split for its reader and sender tasks.
pub(super) fn split(route: Route, leader: Leader) -> (ClientReader, Follow, Outlet) {
    let (reader, writer) = leader.client.into_split();
    let (writers, fresh) = mpsc::unbounded_channel();
    let follow = Follow { route, last_seen: leader.sequence.saturating_sub(1), writers };
    (reader, follow, Outlet { writer, fresh })
}

impl Follow {
    /// True the first time the message numbered `seq` arrives; false for a
    /// replay of one already counted.
    pub(super) fn first_time(&mut self, seq: u64) -> bool {
        let first = seq > self.last_seen;
        self.last_seen = self.last_seen.max(seq);
        first
    }

    /// Logs in again from the next message expected; hands the sender the
    /// new sending half and returns the receiving half.
    ///
    /// # Errors
    /// No node took the login within [`LEADER_PATIENCE`], or one refused it.
    pub(super) async fn rejoin(&mut self) -> Result<ClientReader, LeaderError> {
        let leader = self.route.log_in(self.last_seen + 1).await?;
        tracing::info!(user = %self.route.user, addr = %leader.addr, from = self.last_seen + 1, "load: logged in again");
        let (reader, writer) = leader.client.into_split();
        let _ = self.writers.send(writer); // the sender may have finished: nothing to hand over
        Ok(reader)
    }
}

impl Outlet {
    /// Swaps in the newest sending half the reader has handed over; true
    /// when it did (call it before queueing: what is queued on the old
    /// half is dropped with it).
    pub(super) fn take_fresh(&mut self) -> bool {
        let mut swapped = false;
        while let Ok(writer) = self.fresh.try_recv() {
            self.writer = writer;
            swapped = true;
        }
        swapped
    }

    /// Queues one message; [`Outlet::flush`] writes everything queued.
    pub(super) fn queue(&mut self, message: &Inbound) {
        self.writer.queue(message);
    }

    /// Writes everything queued. When the connection is gone, waits
    /// (bounded) for the reader's new login and carries on over it: what
    /// was queued is lost with the old connection, counted as sent and
    /// never answered. True when the connection was replaced.
    ///
    /// # Errors
    /// The write failed and no new connection came.
    pub(super) async fn flush(&mut self) -> Result<bool, ClientError> {
        let Err(err) = self.writer.flush().await else {
            return Ok(false);
        };
        match tokio::time::timeout(NEW_CONNECTION_WAIT, self.fresh.recv()).await {
            Ok(Some(writer)) => {
                self.writer = writer;
                self.take_fresh();
                Ok(true)
            }
            Ok(None) | Err(_) => Err(err),
        }
    }

    /// Sends Logout Request on the current connection.
    ///
    /// # Errors
    /// Socket error.
    pub(super) async fn log_out(&mut self) -> Result<(), ClientError> {
        self.take_fresh();
        self.writer.send_packet(Packet::LogoutRequest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_after_logging_in_again_counts_only_what_is_new() {
        let (writers, _fresh) = mpsc::unbounded_channel();
        let route = Route { addrs: Arc::from([]), tls: None, user: "DEMO01".into(), password: "demo".into() };
        // Logged in where the stream was at 4: 1..=4 were another run's.
        let mut follow = Follow { route, last_seen: 4, writers };
        let live: Vec<bool> = [5, 6].map(|seq| follow.first_time(seq)).into();
        // A new leader asked from 5 that replays from 3 anyway.
        let replay: Vec<bool> = [3, 4, 5, 6, 7].map(|seq| follow.first_time(seq)).into();
        assert_eq!(live, [true, true]);
        assert_eq!(replay, [false, false, false, false, true]);
        assert_eq!(follow.last_seen + 1, 8, "the next login asks from 8");
    }
}
