//! A small SoupBinTCP client over tokio: log in, send Unsequenced Data,
//! receive numbered sequenced payloads. It knows nothing of what the
//! payloads carry: the gateway wraps it as its OUCH client, the feed reads
//! ITCH with it. Every wait is bounded by a timeout, so a test can never
//! hang on a silent server.

use crate::packet::{self, LoginRequest, Packet, SESSION_LEN};
use crate::session::{ClientEvent, ClientSession, SessionError};
use crate::stream::{ReadHalf, Stream, TlsClient, WriteHalf};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server sent.
pub type Received = ClientEvent;

/// Bytes read per socket read at most.
const READ_CHUNK: usize = 16 * 1024;

/// How long [`Client::login`] waits for the answer.
pub const LOGIN_WAIT: Duration = Duration::from_secs(5);

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] SessionError),
    /// Nothing within the timeout.
    #[error("timed out")]
    Timeout,
    /// The server closed the connection (or ended the session where a
    /// sequenced message was awaited).
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
    socket: ReadHalf,
    session: ClientSession,
}

/// The sending half of a [`Client`].
pub struct ClientWriter {
    socket: WriteHalf,
    out: BytesMut,
}

impl Client {
    /// Connects.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn connect(addr: SocketAddr) -> Result<Client, ClientError> {
        Client::from_stream(TcpStream::connect(addr).await?)
    }

    /// A client over a connected socket (one set up beforehand, e.g. with a
    /// small receive buffer).
    ///
    /// # Errors
    /// The socket refused `TCP_NODELAY`.
    pub fn from_stream(socket: TcpStream) -> Result<Client, ClientError> {
        Client::over(Stream::Plain(socket))
    }

    /// Connects, under TLS when `tls` is given (the handshake bounded by
    /// [`LOGIN_WAIT`]).
    ///
    /// # Errors
    /// The connection or the handshake failed.
    pub async fn connect_with(addr: SocketAddr, tls: Option<&TlsClient>) -> Result<Client, ClientError> {
        let socket = TcpStream::connect(addr).await?;
        match tls {
            None => Client::from_stream(socket),
            Some(tls) => {
                socket.set_nodelay(true)?;
                Client::over(tls.connect(socket, LOGIN_WAIT).await?)
            }
        }
    }

    /// A client over a connected stream, plain or TLS.
    ///
    /// # Errors
    /// The socket refused `TCP_NODELAY`.
    pub fn over(stream: Stream) -> Result<Client, ClientError> {
        stream.tcp().set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Client {
            reader: ClientReader { socket: read, session: ClientSession::new() },
            writer: ClientWriter { socket: write, out: BytesMut::with_capacity(1 << 16) },
        })
    }

    /// The two halves, for a reader task and a writer task.
    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
    }

    /// Sends a Login Request (fields cut to fit are replaced by `?`) and
    /// waits for the answer.
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
            username: packet::alpha(user).unwrap_or([b'?'; 6]),
            password: packet::alpha(password).unwrap_or([b'?'; 10]),
            session: packet::alpha(session).unwrap_or([b'?'; SESSION_LEN]),
            sequence,
        };
        self.send_packet(Packet::LoginRequest(login)).await?;
        self.recv(LOGIN_WAIT).await
    }

    /// Sends one payload in Unsequenced Data.
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_unsequenced(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.writer.queue_unsequenced(payload);
        self.writer.flush().await
    }

    /// Queues one payload in Unsequenced Data; [`Client::flush`] sends
    /// everything queued in one write.
    pub fn queue_unsequenced(&mut self, payload: &[u8]) {
        self.writer.queue_unsequenced(payload);
    }

    /// Sends raw bytes (tests of bad input).
    ///
    /// # Errors
    /// Socket error.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.socket.write_all(bytes).await?;
        self.writer.socket.flush().await?;
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

    /// The next sequenced payload, skipping heartbeats, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`Client::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_sequenced(&mut self, timeout: Duration) -> Result<(u64, bytes::Bytes), ClientError> {
        self.reader.next_sequenced(timeout).await
    }
}

impl ClientWriter {
    /// Queues one payload in Unsequenced Data; [`ClientWriter::flush`]
    /// sends everything queued in one write.
    pub fn queue_unsequenced(&mut self, payload: &[u8]) {
        Packet::Unsequenced(payload).encode(&mut self.out);
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
        self.socket.flush().await?;
        self.out.clear();
        Ok(())
    }
}

impl ClientReader {
    /// The next packet from the server, waiting at most `timeout`.
    ///
    /// # Errors
    /// Timeout, closed connection, protocol or socket error.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(received) = self.session.poll_event()? {
                return Ok(received);
            }
            let buf = self.session.read_buffer(READ_CHUNK);
            let n = match tokio::time::timeout_at(deadline, self.socket.read_buf(buf)).await {
                Ok(n) => n?,
                Err(_) => return Err(ClientError::Timeout),
            };
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next sequenced payload, skipping heartbeats, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// As [`ClientReader::recv`]; End of Session is [`ClientError::Closed`].
    pub async fn next_sequenced(&mut self, timeout: Duration) -> Result<(u64, bytes::Bytes), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await? {
                Received::Sequenced(seq, payload) => return Ok((seq, payload)),
                Received::EndOfSession => return Err(ClientError::Closed),
                _ => {}
            }
        }
    }
}
