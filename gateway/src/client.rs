//! The OUCH client: what the end-to-end tests, the load generator and
//! brokers' tools use to talk to the gateway. A thin layer over the
//! SoupBinTCP client of [`carbonx_soup::client`]: it encodes [`Inbound`]
//! messages and decodes sequenced payloads as [`Outbound`]. Every wait is
//! bounded by a timeout.

use crate::ouch::{Inbound, Outbound};
use carbonx_soup::client as soup;
use carbonx_soup::packet::{Packet, SESSION_LEN};
use carbonx_soup::session::ClientEvent;
use carbonx_soup::stream::TlsClient;
use std::net::SocketAddr;
use std::time::Duration;

pub use carbonx_soup::client::ClientError;

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
