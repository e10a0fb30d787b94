//! A small SoupBinTCP + OUCH client: what the end-to-end tests, the load
//! generator and brokers' tools use to talk to the gateway. Every wait is
//! bounded by a timeout, so a test can never hang on a silent server.

use crate::ouch::{Inbound, Outbound};
use crate::soup::{self, LoginRequest, Packet, SESSION_LEN};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

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
    /// A sequenced message not decoded as OUCH (a raw client, such as a
    /// feed consumer, or bytes that are not OUCH), with its sequence number.
    Raw(u64, Vec<u8>),
    /// Server Heartbeat.
    Heartbeat,
    /// End of Session.
    EndOfSession,
    /// Debug text.
    Debug(Vec<u8>),
}

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] soup::SoupError),
    /// Nothing within the timeout.
    #[error("timed out")]
    Timeout,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
}

/// One connection.
pub struct Client {
    reader: ClientReader,
    writer: ClientWriter,
}

/// The receiving half of a [`Client`].
pub struct ClientReader {
    socket: OwnedReadHalf,
    buf: Vec<u8>,
    next_seq: u64,
    raw: bool,
}

/// The sending half of a [`Client`].
pub struct ClientWriter {
    socket: OwnedWriteHalf,
    out: Vec<u8>,
}

impl Client {
    /// Connects.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(addr: SocketAddr) -> Result<Client, ClientError> {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        let (read, write) = socket.into_split();
        Ok(Client {
            reader: ClientReader { socket: read, buf: Vec::with_capacity(1 << 16), next_seq: 0, raw: false },
            writer: ClientWriter { socket: write, out: Vec::with_capacity(1 << 16) },
        })
    }

    /// Hands sequenced payloads over undecoded ([`Received::Raw`]): for feeds.
    pub fn raw(mut self) -> Client {
        self.reader.raw = true;
        self
    }

    /// The two halves, for a reader task and a writer task.
    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
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
        let login = LoginRequest {
            username: soup::alpha(user).unwrap_or([b'?'; 6]),
            password: soup::alpha(password).unwrap_or([b'?'; 10]),
            session: soup::alpha(session).unwrap_or([b'?'; SESSION_LEN]),
            sequence,
        };
        self.send_packet(Packet::LoginRequest(login)).await?;
        let answer = self.recv(Duration::from_secs(5)).await?;
        if let Received::LoginAccepted { sequence, .. } = answer {
            self.reader.next_seq = sequence;
        }
        Ok(answer)
    }

    /// Sends one OUCH message in Unsequenced Data.
    ///
    /// # Errors
    /// Socket error.
    pub async fn send(&mut self, message: &Inbound) -> Result<(), ClientError> {
        self.writer.queue(message);
        self.writer.flush().await
    }

    /// Queues one OUCH message; [`Client::flush`] sends everything queued in one write.
    pub fn queue(&mut self, message: &Inbound) {
        self.writer.queue(message);
    }

    /// Sends raw bytes (tests of bad input).
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.socket.write_all(bytes).await?;
        Ok(())
    }

    /// Sends any packet.
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError> {
        self.writer.send_packet(packet).await
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// Socket error.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.writer.flush().await
    }

    /// The next packet from the server, waiting at most `timeout`.
    ///
    /// # Errors
    /// Timeout, closed connection, protocol or socket error.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        self.reader.recv(timeout).await
    }

    /// The next sequenced message, skipping heartbeats, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`Client::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_message(&mut self, timeout: Duration) -> Result<(u64, Outbound), ClientError> {
        self.reader.next_message(timeout).await
    }
}

impl ClientWriter {
    /// Queues one OUCH message; [`ClientWriter::flush`] sends everything queued in one write.
    pub fn queue(&mut self, message: &Inbound) {
        let mut bytes = [0u8; crate::ouch::MESSAGE_LEN_MAX];
        let len = match message {
            Inbound::Enter(m) => copy(&mut bytes, &m.encode()),
            Inbound::Replace(m) => copy(&mut bytes, &m.encode()),
            Inbound::Cancel(m) => copy(&mut bytes, &m.encode()),
            Inbound::Block(m) => copy(&mut bytes, &m.encode()),
            Inbound::Pick(m) => copy(&mut bytes, &m.encode()),
            Inbound::Bid(m) => copy(&mut bytes, &m.encode()),
        };
        Packet::Unsequenced(&bytes[..len]).encode(&mut self.out);
    }

    /// Sends any packet (after what is queued).
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_packet(&mut self, packet: Packet<'_>) -> Result<(), ClientError> {
        packet.encode(&mut self.out);
        self.flush().await
    }

    /// Writes everything queued.
    ///
    /// # Errors
    /// Socket error.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.socket.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((packet, used)) = soup::next_packet(&self.buf)? {
                let received = decode(packet, &mut self.next_seq, self.raw);
                self.buf.drain(..used);
                return Ok(received);
            }
            let start = self.buf.len();
            self.buf.resize(start + 16 * 1024, 0);
            let read = tokio::time::timeout_at(deadline, self.socket.read(&mut self.buf[start..])).await;
            let n = match read {
                Ok(n) => n?,
                Err(_) => {
                    self.buf.truncate(start);
                    return Err(ClientError::Timeout);
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next sequenced message, skipping heartbeats, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`ClientReader::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_message(&mut self, timeout: Duration) -> Result<(u64, Outbound), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                Received::Sequenced(seq, message) => return Ok((seq, message)),
                Received::EndOfSession => return Err(ClientError::Closed),
                _ => {}
            }
        }
    }
}

fn decode(packet: Packet<'_>, next_seq: &mut u64, raw: bool) -> Received {
    match packet {
        Packet::LoginAccepted { session, sequence } => Received::LoginAccepted { session, sequence },
        Packet::LoginRejected(reason) => Received::LoginRejected(reason),
        Packet::Sequenced(bytes) => {
            let seq = *next_seq;
            *next_seq += 1;
            match Outbound::decode(bytes) {
                Ok(message) if !raw => Received::Sequenced(seq, message),
                _ => Received::Raw(seq, bytes.to_vec()),
            }
        }
        Packet::ServerHeartbeat => Received::Heartbeat,
        Packet::EndOfSession => Received::EndOfSession,
        Packet::Debug(text) => Received::Debug(text.to_vec()),
        _ => Received::Debug(b"a client packet type from the server".to_vec()),
    }
}
