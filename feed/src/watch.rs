//! A feed consumer: follow the TCP feed from sequence 1 (the whole day, so
//! the day's statistics are exact) or load a snapshot and follow from its
//! `G` number, keeping a [`BookBuilder`] and [`MarketStats`]. `carbonx
//! watch` renders them; tests compare the book with the engine's own.

use crate::book::BookBuilder;
use crate::itch::Message;
use crate::stats::MarketStats;
use carbonx_soup::client::{Client, ClientError, Received};
use carbonx_soup::stream::TlsClient;
use std::net::SocketAddr;
use std::time::Duration;

/// Why watching stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Connection trouble.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server refused the login.
    #[error("login rejected ({0:?})")]
    Rejected(char),
    /// A message that is not ITCH.
    #[error("undecodable feed message: {0}")]
    Decode(#[from] crate::itch::DecodeError),
    /// A sequence gap on a TCP feed (a server bug: TCP does not lose data).
    #[error(transparent)]
    Gap(#[from] crate::book::Gap),
    /// The snapshot ended without `G`.
    #[error("the snapshot ended without End of Snapshot")]
    NoEndOfSnapshot,
}

/// A feed user's username and password (the demo market accepts any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// At most 6 characters.
    pub user: String,
    /// At most 10 characters.
    pub password: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials { user: "WATCH".into(), password: "watch".into() }
    }
}

async fn login(
    addr: SocketAddr,
    sequence: u64,
    who: &Credentials,
    tls: Option<&TlsClient>,
) -> Result<Client, WatchError> {
    let mut client = Client::connect_with(addr, tls).await?;
    match client.login(&who.user, &who.password, "", sequence).await? {
        Received::LoginAccepted { .. } => Ok(client),
        Received::LoginRejected(reason) => Err(WatchError::Rejected(char::from(reason))),
        _ => Err(WatchError::Rejected('?')),
    }
}

/// Loads the snapshot service's book; the builder then expects the feed
/// from the snapshot's `G` number.
///
/// # Errors
/// Connection trouble, a refused login, bad bytes, or no `G`.
pub async fn load_snapshot(addr: SocketAddr) -> Result<BookBuilder, WatchError> {
    load_snapshot_as(addr, &Credentials::default()).await
}

/// [`load_snapshot`] as the feed user `who`.
///
/// # Errors
/// Connection trouble, a refused login, bad bytes, or no `G`.
pub async fn load_snapshot_as(addr: SocketAddr, who: &Credentials) -> Result<BookBuilder, WatchError> {
    load_snapshot_with(addr, who, None).await
}

/// [`load_snapshot_as`], under TLS when `tls` is given.
///
/// # Errors
/// Connection trouble (the handshake included), a refused login, bad
/// bytes, or no `G`.
pub async fn load_snapshot_with(
    addr: SocketAddr,
    who: &Credentials,
    tls: Option<&TlsClient>,
) -> Result<BookBuilder, WatchError> {
    let mut client = login(addr, 1, who, tls).await?;
    let mut book = BookBuilder::new();
    loop {
        match client.recv(Duration::from_secs(10)).await? {
            Received::Sequenced(_, bytes) => {
                let message = Message::decode(&bytes)?;
                book.apply_unsequenced(&message);
                if let Message::EndOfSnapshot(g) = message {
                    book.resume_at(g.sequence);
                    return Ok(book);
                }
            }
            Received::EndOfSession => return Err(WatchError::NoEndOfSnapshot),
            _ => {}
        }
    }
}

/// A TCP feed subscription applying what arrives to a book.
pub struct Follower {
    client: Client,
    /// The book so far.
    pub book: BookBuilder,
    /// Trades, volumes, the close and auction results seen since it started.
    pub stats: MarketStats,
}

impl Follower {
    /// Logs in to the TCP feed at the book's next number.
    ///
    /// # Errors
    /// Connection trouble or a refused login.
    pub async fn start(addr: SocketAddr, book: BookBuilder) -> Result<Follower, WatchError> {
        Follower::start_as(addr, book, &Credentials::default()).await
    }

    /// [`Follower::start`] as the feed user `who`.
    ///
    /// # Errors
    /// Connection trouble or a refused login.
    pub async fn start_as(addr: SocketAddr, book: BookBuilder, who: &Credentials) -> Result<Follower, WatchError> {
        Follower::start_with(addr, book, who, None).await
    }

    /// [`Follower::start_as`], under TLS when `tls` is given.
    ///
    /// # Errors
    /// Connection trouble (the handshake included) or a refused login.
    pub async fn start_with(
        addr: SocketAddr,
        book: BookBuilder,
        who: &Credentials,
        tls: Option<&TlsClient>,
    ) -> Result<Follower, WatchError> {
        let client = login(addr, book.next_seq(), who, tls).await?;
        Ok(Follower { client, book, stats: MarketStats::new() })
    }

    /// Applies everything that arrives within `wait`; returns how many messages.
    ///
    /// # Errors
    /// Connection trouble, bad bytes, or a gap.
    pub async fn poll(&mut self, wait: Duration) -> Result<usize, WatchError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut applied = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.client.recv(left).await {
                Ok(Received::Sequenced(seq, bytes)) => {
                    let message = Message::decode(&bytes)?;
                    if seq == self.book.next_seq() {
                        self.stats.observe(&message, &self.book);
                    }
                    self.book.apply(seq, &message)?;
                    applied += 1;
                }
                Ok(Received::EndOfSession) => return Err(ClientError::Closed.into()),
                Ok(_) => {}
                Err(ClientError::Timeout) => return Ok(applied),
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Yuan text of a price with 4 implied decimals (`74.63`).
fn yuan(price: u32) -> String {
    format!("{}.{:02}", price / 10_000, price % 10_000 / 100)
}

/// Each instrument's header line: state, reference and band, last
/// trade, volume by method, the close and auction results.
fn summary(book: &BookBuilder, stats: &MarketStats, locate: u16, stock: &[u8; 8]) -> String {
    let state = book.state(locate).map_or('?', char::from);
    let mut line = format!("{:<6} [{}]", String::from_utf8_lossy(stock).trim(), state);
    if let Some((reference, lower, upper)) = book.band(locate) {
        line.push_str(&format!("  ref {}  band {}..{}", yuan(reference), yuan(lower), yuan(upper)));
    }
    let s = stats.of(locate);
    match s.last {
        Some((price, shares)) => line.push_str(&format!("  last {} x {shares} t", yuan(price))),
        None => line.push_str("  last -"),
    }
    line.push_str(&format!(
        "  volume {} t (block {} t, auction {} t)",
        s.listing.tonnes, s.block.tonnes, s.auction.tonnes
    ));
    if let Some(close) = s.close {
        line.push_str(&format!("  close {}", yuan(close)));
    }
    for a in &s.auctions {
        line.push_str(&format!("  auction sold {} t @ {}", a.shares, yuan(a.price)));
    }
    line.push('\n');
    line.push_str(&format!(
        "       turnover {} yuan (block {} yuan, auction {} yuan)\n",
        turnover_yuan(s.listing.turnover),
        turnover_yuan(s.block.turnover),
        turnover_yuan(s.auction.turnover)
    ));
    line
}

/// Yuan text of a turnover (Σ price × tonnes, 4 implied decimals),
/// truncated to the fen like the prices.
fn turnover_yuan(turnover: u128) -> String {
    format!("{}.{:02}", turnover / 10_000, turnover % 10_000 / 100)
}

/// Every instrument's summary line and top `levels` as text.
pub fn render(book: &BookBuilder, stats: &MarketStats, levels: usize) -> String {
    let mut out = String::new();
    for (locate, stock) in book.instruments() {
        out.push_str(&summary(book, stats, locate, &stock));
        let (bids, asks) = (book.top(locate, b'B', levels), book.top(locate, b'S', levels));
        for i in 0..levels.max(1) {
            let cell = |l: Option<&crate::book::Level>| {
                l.map_or(String::from("                           "), |l| {
                    format!("{:>9} t @ {:>8.2} ({:>3})", l.shares, f64::from(l.price) / 10_000.0, l.orders)
                })
            };
            if bids.get(i).is_none() && asks.get(i).is_none() {
                break;
            }
            out.push_str(&format!("  {}  |  {}\n", cell(bids.get(i)), cell(asks.get(i))));
        }
    }
    out
}
