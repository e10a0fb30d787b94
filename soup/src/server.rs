//! The thin tokio side of a server session: taking the next connection
//! ([`next_connection`], every listener's accept loop), reading a socket
//! into a [`SessionReader`] within its deadlines, and reading the login.
//! The gateway (order entry, drop copy) and the feed (TCP feed, snapshot)
//! read logins with this one function.

use crate::packet::LoginRequest;
use crate::session::{Event, SessionError, SessionReader, Timeout};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What one read brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Bytes arrived: poll the reader's events.
    Bytes,
    /// A deadline passed without anything due (nothing to do).
    Nothing,
    /// The peer closed the connection.
    Closed,
    /// A timer ran out ([`Event::TimedOut`]): the session is over.
    Event(Event),
}

/// Why no login was read.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The first packet was not a Login Request, or not SoupBinTCP.
    #[error(transparent)]
    Protocol(#[from] SessionError),
    /// No Login Request within the login timeout.
    #[error("no login within the timeout")]
    TimedOut,
    /// The peer closed the connection first.
    #[error("closed by the client")]
    Closed,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads once from `socket` into `reader` (at most `spare` more bytes
/// buffered), until the reader's next deadline.
///
/// # Errors
/// The socket failed.
pub async fn read_once<R: AsyncRead + Unpin>(
    socket: &mut R,
    reader: &mut SessionReader,
    spare: usize,
) -> std::io::Result<Incoming> {
    let deadline = deadline_of(reader.poll_timeout());
    let read = tokio::time::timeout_at(deadline, socket.read_buf(reader.read_buffer(spare))).await;
    let now = Instant::now();
    Ok(match read.ok().transpose()? {
        Some(0) => Incoming::Closed,
        Some(_) => {
            reader.received(now);
            Incoming::Bytes
        }
        None => reader.handle_timeout(now).map_or(Incoming::Nothing, Incoming::Event),
    })
}

/// Reads until the first packet, which must be a Login Request, within the
/// reader's login timeout. Bytes after it stay in the reader.
///
/// # Errors
/// Another packet first, bad bytes, the timeout, a close or a socket error.
pub async fn read_login<R: AsyncRead + Unpin>(
    socket: &mut R,
    reader: &mut SessionReader,
) -> Result<LoginRequest, LoginError> {
    loop {
        match reader.poll_event() {
            Some(Event::LoginRequested(login)) => return Ok(login),
            Some(Event::ProtocolError(err)) => return Err(err.into()),
            Some(Event::TimedOut(Timeout::Login)) => return Err(LoginError::TimedOut),
            Some(_) => return Err(SessionError::LoginFirst.into()),
            None => {}
        }
        match read_once(socket, reader, 256).await? {
            Incoming::Bytes | Incoming::Nothing => {}
            Incoming::Closed => return Err(LoginError::Closed),
            Incoming::Event(_) => return Err(LoginError::TimedOut),
        }
    }
}

/// A session deadline as a tokio instant; a day away when there is none.
pub fn deadline_of(deadline: Option<Instant>) -> tokio::time::Instant {
    deadline.map_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400), tokio::time::Instant::from_std)
}

/// Pause after a failed `accept` (out of file descriptors, most often), so
/// a listener under a connection flood backs off instead of spinning.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// The next connection on `listener`, or `None` once `shutdown` turns
/// true. A failed accept is logged (naming `what`) and retried after
/// [`ACCEPT_RETRY`]: every listener of the exchange (order entry, drop
/// copy, TCP feed, snapshot, admin) takes its connections here.
pub async fn next_connection(
    listener: &tokio::net::TcpListener,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    what: &str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => return Some(pair),
                Err(err) => {
                    tracing::warn!(%err, what, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}
