//! The OUCH client: what the end-to-end tests, the load generator and
//! brokers' tools use to talk to the gateway. A thin layer over the
//! SoupBinTCP client of [`carbonx_soup::client`]: it encodes [`Inbound`]
//! messages and decodes sequenced payloads as [`Outbound`]. Every wait is
//! bounded by a timeout. [`Client::login_to_leader`] finds the node of a
//! cluster that takes the login (only the leader does).

use crate::ouch::{Inbound, Outbound};
use carbonx_soup::client as soup;
use carbonx_soup::packet::{Packet, SESSION_LEN};
use carbonx_soup::session::ClientEvent;
use carbonx_soup::stream::TlsClient;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

pub use carbonx_soup::client::ClientError;

/// Login Rejected reason of a node that cannot take the session: a cluster
/// follower (at once, before the password is checked), or a session taken.
pub const NOT_AVAILABLE: u8 = b'S';

/// The pause after the first round of [`Client::login_to_leader`] that found
/// no leader: an election takes a few hundred milliseconds, so the first
/// retries come soon.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between rounds (the pause doubles up to it), so that a
/// client notices a new leader within this much of its election (a round
/// costs each node one refused connection or one `S`: cheap to repeat).
const PAUSE_MAX: Duration = Duration::from_millis(100);

/// What the server sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Login Accepted.
    LoginAccepted {
        /// Session name.
        session: [u8; SESSION_LEN],
        /// Next sequence number.
        sequence: u64,
    },
    /// Login Rejected with its reason.
    LoginRejected(u8),
    /// A sequenced OUCH message with its sequence number.
    Sequenced(u64, Outbound),
    /// A sequenced message that is not OUCH, with its sequence number.
    Raw(u64, Vec<u8>),
    /// Server Heartbeat.
    Heartbeat,
    /// End of Session.
    EndOfSession,
    /// Debug text.
    Debug(Vec<u8>),
}

impl From<ClientEvent> for Received {
    fn from(event: ClientEvent) -> Received {
        match event {
            ClientEvent::LoginAccepted { session, sequence } => Received::LoginAccepted { session, sequence },
            ClientEvent::LoginRejected(reason) => Received::LoginRejected(reason),
            ClientEvent::Sequenced(seq, bytes) => match Outbound::decode(&bytes) {
                Ok(message) => Received::Sequenced(seq, message),
                Err(_) => Received::Raw(seq, bytes.to_vec()),
            },
            ClientEvent::Heartbeat => Received::Heartbeat,
            ClientEvent::EndOfSession => Received::EndOfSession,
            ClientEvent::Debug(text) => Received::Debug(text.to_vec()),
        }
    }
}

/// Who logs in, for [`Client::login_to_leader`].
#[derive(Clone, Copy, Debug)]
pub struct Login<'a> {
    /// Username.
    pub user: &'a str,
    /// Password.
    pub password: &'a str,
    /// Session name; blank for the current one.
    pub session: &'a str,
    /// The first sequence number wanted (0: only new messages).
    pub sequence: u64,
}

/// A login [`Client::login_to_leader`] got accepted.
pub struct Leader {
    /// The connection, logged in.
    pub client: Client,
    /// The address that took the login.
    pub addr: SocketAddr,
    /// Login Accepted's sequence number: the next message's.
    pub sequence: u64,
}

/// Why one address did not take a login; [`Client::login_to_leader`] moves
/// on to the next.
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    /// No connection, a failed handshake, a closed connection or a
    /// protocol error (a node starting or dying looks like any of these).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Login Rejected `S`: not the leader (or the session is taken).
    #[error("session not available here (Login Rejected S)")]
    NotAvailable,
    /// Neither Login Accepted nor Login Rejected.
    #[error("answered the login with {0:?}")]
    Unexpected(Received),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Silent(Duration),
}

/// Why [`Client::login_to_leader`] found no node to log in to.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The list of addresses is empty.
    #[error("no address to log in to")]
    NoAddress,
    /// A node refused the login for a reason other than `S` (`A`: not
    /// authorized): another node would refuse it too.
    #[error("{addr} rejected the login with reason {}", char::from(*reason))]
    Rejected {
        /// The node that refused.
        addr: SocketAddr,
        /// The Login Rejected reason.
        reason: u8,
    },
    /// No node took the login before the deadline.
    #[error("no node took the login within {patience:?}; last, {addr}: {last}")]
    NoLeader {
        /// How long the addresses were tried.
        patience: Duration,
        /// The last address tried.
        addr: SocketAddr,
        /// Why it did not take the login.
        #[source]
        last: Miss,
    },
}

/// One OUCH connection.
pub struct Client {
    inner: soup::Client,
}

/// The receiving half of a [`Client`].
pub struct ClientReader {
    inner: soup::ClientReader,
}

/// The sending half of a [`Client`].
pub struct ClientWriter {
    inner: soup::ClientWriter,
}

impl Client {
    /// Connects.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(addr: SocketAddr) -> Result<Client, ClientError> {
        Ok(Client { inner: soup::Client::connect(addr).await? })
    }

    /// Connects, under TLS when `tls` is given.
    ///
    /// # Errors
    /// The connection or the TLS handshake failed.
    pub async fn connect_with(addr: SocketAddr, tls: Option<&TlsClient>) -> Result<Client, ClientError> {
        Ok(Client { inner: soup::Client::connect_with(addr, tls).await? })
    }

    /// A client over a connected socket (one set up beforehand, e.g. with a
    /// small receive buffer).
    ///
    /// # Errors
    /// The socket refused `TCP_NODELAY`.
    pub fn from_stream(socket: tokio::net::TcpStream) -> Result<Client, ClientError> {
        Ok(Client { inner: soup::Client::from_stream(socket)? })
    }

    /// The SoupBinTCP client underneath, which hands sequenced payloads
    /// over undecoded (a drop copy read byte for byte, or a feed).
    pub fn into_soup(self) -> soup::Client {
        self.inner
    }

    /// The two halves, for a reader task and a writer task.
    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        let (reader, writer) = self.inner.into_split();
        (ClientReader { inner: reader }, ClientWriter { inner: writer })
    }

    /// Sends a Login Request and waits for the answer.
    ///
    /// # Errors
    /// Socket error, timeout, or a closed connection.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        session: &str,
        sequence: u64,
    ) -> Result<Received, ClientError> {
        self.inner.login(user, password, session, sequence).await.map(Received::from)
    }

    /// Logs in to whichever of `addrs` takes the login: in a cluster only
    /// the leader does, and the leader changes. Tries each address in turn;
    /// a refused connection, Login Rejected `S` (a follower), or no answer
    /// moves on to the next; after a round without a login it pauses
    /// (25 ms, doubling up to 100 ms) and goes round again, until
    /// `patience` has passed. Each attempt is bounded by the login wait and
    /// by what is left of `patience`.
    ///
    /// # Errors
    /// [`LeaderError::Rejected`] at once for a rejection other than `S` (a
    /// wrong password is not fixed by another node);
    /// [`LeaderError::NoLeader`] when `patience` ran out, with the last miss.
    pub async fn login_to_leader(
        addrs: &[SocketAddr],
        tls: Option<&TlsClient>,
        login: &Login<'_>,
        patience: Duration,
    ) -> Result<Leader, LeaderError> {
        let deadline = Instant::now() + patience;
        let mut pause = FIRST_PAUSE;
        loop {
            let mut last = None;
            for &addr in addrs {
                let left = deadline.saturating_duration_since(Instant::now());
                match attempt(addr, tls, login, left.min(soup::LOGIN_WAIT)).await {
                    Ok((client, sequence)) => return Ok(Leader { client, addr, sequence }),
                    Err(Attempt::Rejected(reason)) => return Err(LeaderError::Rejected { addr, reason }),
                    Err(Attempt::Missed(miss)) => last = Some((addr, miss)),
                }
            }
            let Some((addr, last)) = last else {
                return Err(LeaderError::NoAddress);
            };
            if Instant::now() + pause >= deadline {
                return Err(LeaderError::NoLeader { patience, addr, last });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(PAUSE_MAX);
        }
    }

    /// Sends one OUCH message in Unsequenced Data.
    ///
    /// # Errors
    /// Socket error.
    pub async fn send(&mut self, message: &Inbound) -> Result<(), ClientError> {
        self.queue(message);
        self.inner.flush().await
    }

    /// Queues one OUCH message; [`Client::flush`] sends everything queued in one write.
    pub fn queue(&mut self, message: &Inbound) {
        let mut bytes = [0u8; crate::ouch::MESSAGE_LEN_MAX];
        let len = encode(message, &mut bytes);
        self.inner.queue_unsequenced(&bytes[..len]);
    }

    /// Sends raw bytes (tests of bad input).
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.inner.send_raw(bytes).await
    }

    /// Sends any packet.
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError> {
        self.inner.send_packet(packet).await
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// Socket error.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.inner.flush().await
    }

    /// The next packet from the server, waiting at most `timeout`.
    ///
    /// # Errors
    /// Timeout, closed connection, protocol or socket error.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        self.inner.recv(timeout).await.map(Received::from)
    }

    /// The next sequenced OUCH message, skipping heartbeats and payloads
    /// that are not OUCH, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`Client::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_message(&mut self, timeout: Duration) -> Result<(u64, Outbound), ClientError> {
        next_sequenced(self, timeout).await
    }
}

impl ClientWriter {
    /// Queues one OUCH message; [`ClientWriter::flush`] sends everything queued in one write.
    pub fn queue(&mut self, message: &Inbound) {
        let mut bytes = [0u8; crate::ouch::MESSAGE_LEN_MAX];
        let len = encode(message, &mut bytes);
        self.inner.queue_unsequenced(&bytes[..len]);
    }

    /// Sends any packet (after what is queued).
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError> {
        self.inner.send_packet(packet).await
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// Socket error.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.inner.flush().await
    }
}

/// How one login attempt of [`Client::login_to_leader`] failed.
enum Attempt {
    /// Try the next address.
    Missed(Miss),
    /// Stop: Login Rejected with this reason (not `S`).
    Rejected(u8),
}

/// Connects to `addr` and logs in, all within `wait`: the client and Login
/// Accepted's sequence number.
async fn attempt(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    login: &Login<'_>,
    wait: Duration,
) -> Result<(Client, u64), Attempt> {
    let connect_and_login = async {
        let mut client = Client::connect_with(addr, tls).await?;
        let answer = client.login(login.user, login.password, login.session, login.sequence).await?;
        Ok::<_, ClientError>((client, answer))
    };
    let missed = |miss| Err(Attempt::Missed(miss));
    match tokio::time::timeout(wait, connect_and_login).await {
        Err(_) => missed(Miss::Silent(wait)),
        Ok(Err(err)) => missed(Miss::Client(err)),
        Ok(Ok((client, Received::LoginAccepted { sequence, .. }))) => Ok((client, sequence)),
        Ok(Ok((_, Received::LoginRejected(NOT_AVAILABLE)))) => missed(Miss::NotAvailable),
        Ok(Ok((_, Received::LoginRejected(reason)))) => Err(Attempt::Rejected(reason)),
        Ok(Ok((_, other))) => missed(Miss::Unexpected(other)),
    }
}

/// Writes `message` into `buf` without allocating; its length.
fn encode(message: &Inbound, buf: &mut [u8; crate::ouch::MESSAGE_LEN_MAX]) -> usize {
    match message {
        Inbound::Enter(m) => copy(buf, &m.encode()),
        Inbound::Replace(m) => copy(buf, &m.encode()),
        Inbound::Cancel(m) => copy(buf, &m.encode()),
        Inbound::Block(m) => copy(buf, &m.encode()),
        Inbound::Pick(m) => copy(buf, &m.encode()),
        Inbound::Bid(m) => copy(buf, &m.encode()),
    }
}

fn copy(buf: &mut [u8], message: &[u8]) -> usize {
    buf[..message.len()].copy_from_slice(message);
    message.len()
}

impl ClientReader {
    /// The next packet from the server, waiting at most `timeout`.
    ///
    /// # Errors
    /// Timeout, closed connection, protocol or socket error.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        self.inner.recv(timeout).await.map(Received::from)
    }

    /// The next sequenced OUCH message, skipping heartbeats, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`ClientReader::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_message(&mut self, timeout: Duration) -> Result<(u64, Outbound), ClientError> {
        next_sequenced(self, timeout).await
    }
}

/// Either end of an OUCH connection that can wait for the next packet.
trait Receive {
    async fn receive(&mut self, timeout: Duration) -> Result<Received, ClientError>;
}

impl Receive for Client {
    async fn receive(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        self.recv(timeout).await
    }
}

impl Receive for ClientReader {
    async fn receive(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        self.recv(timeout).await
    }
}

/// The next sequenced OUCH message, skipping heartbeats and anything that
/// is not OUCH, waiting at most `timeout` in all; End of Session is
/// [`ClientError::Closed`].
async fn next_sequenced(from: &mut impl Receive, timeout: Duration) -> Result<(u64, Outbound), ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match from.receive(left).await? {
            Received::Sequenced(seq, message) => return Ok((seq, message)),
            Received::EndOfSession => return Err(ClientError::Closed),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LOGIN: Login<'static> = Login { user: "DEMO01", password: "demo", session: "", sequence: 0 };

    /// An address nothing listens on: connections are refused.
    async fn refusing() -> SocketAddr {
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
    }

    /// A fake SoupBinTCP server: reads each connection's Login Request and
    /// answers the n-th with `answers[n]` (the last one from then on); its
    /// address and how many logins it has seen.
    async fn fake(answers: Vec<Packet<'static>>) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let logins = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&logins);
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut len = [0u8; 2];
                let mut request = [0u8; 64];
                if socket.read_exact(&mut len).await.is_err() {
                    continue;
                }
                let len = usize::from(u16::from_be_bytes(len)).min(request.len());
                let _ = socket.read_exact(&mut request[..len]).await;
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let mut out = Vec::new();
                answers[n.min(answers.len() - 1)].encode(&mut out);
                let _ = socket.write_all(&out).await;
                open.push(socket); // held open: the client, not the server, moves on
            }
        });
        (addr, logins)
    }

    fn accepted(sequence: u64) -> Packet<'static> {
        Packet::LoginAccepted { session: *b"    TODAY1", sequence }
    }

    #[tokio::test]
    async fn the_login_lands_on_the_address_that_takes_it() {
        let (follower, follower_logins) = fake(vec![Packet::LoginRejected(NOT_AVAILABLE)]).await;
        let (leader, _) = fake(vec![accepted(7)]).await;
        let addrs = [refusing().await, follower, leader];
        let found = Client::login_to_leader(&addrs, None, &LOGIN, Duration::from_secs(20)).await.unwrap();
        assert_eq!((found.addr, found.sequence), (leader, 7));
        assert_eq!(follower_logins.load(Ordering::SeqCst), 1, "the follower was asked once");
    }

    #[tokio::test]
    async fn it_goes_round_again_until_a_node_takes_the_login() {
        let not_yet = Packet::LoginRejected(NOT_AVAILABLE);
        let (elected, logins) = fake(vec![not_yet, not_yet, accepted(1)]).await;
        let addrs = [refusing().await, elected];
        let found = Client::login_to_leader(&addrs, None, &LOGIN, Duration::from_secs(20)).await.unwrap();
        assert_eq!(found.addr, elected);
        assert_eq!(logins.load(Ordering::SeqCst), 3, "two rounds of S, then the login");
    }

    #[tokio::test]
    async fn a_rejection_other_than_s_stops_at_once() {
        let (strict, _) = fake(vec![Packet::LoginRejected(b'A')]).await;
        let (leader, leader_logins) = fake(vec![accepted(1)]).await;
        let found = Client::login_to_leader(&[strict, leader], None, &LOGIN, Duration::from_secs(20)).await;
        assert!(matches!(found, Err(LeaderError::Rejected { addr, reason: b'A' }) if addr == strict));
        assert_eq!(leader_logins.load(Ordering::SeqCst), 0, "a wrong password is not tried elsewhere");
    }

    #[tokio::test]
    async fn no_node_taking_the_login_ends_at_the_deadline_with_the_last_miss() {
        let (follower, logins) = fake(vec![Packet::LoginRejected(NOT_AVAILABLE)]).await;
        let addrs = [refusing().await, follower];
        let found = Client::login_to_leader(&addrs, None, &LOGIN, Duration::from_millis(300)).await;
        let Err(LeaderError::NoLeader { addr, last: Miss::NotAvailable, .. }) = found else {
            panic!("{:?}", found.map(|l| l.addr));
        };
        assert_eq!(addr, follower);
        assert!(logins.load(Ordering::SeqCst) >= 1);
        let none = Client::login_to_leader(&[], None, &LOGIN, Duration::from_secs(1)).await;
        assert!(matches!(none, Err(LeaderError::NoAddress)));
    }
}
