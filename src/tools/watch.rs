//! `carbonx watch`: a market maker's view of a running server from the
//! feed alone (every book's top levels, last trade, volume by method, the
//! band, the close, auction results), plus the announced auctions from the
//! admin endpoint's public list (no token; omitted when unreachable).
//!
//! On a terminal each frame replaces the previous one (ANSI home + clear);
//! piped, frames follow each other separated by a rule, so that logs stay
//! readable. `--once` catches up with the feed, prints one frame and exits.

use crate::admin::api::{AuctionList, AuctionStatus};
use crate::tools::tls::TlsArgs;
use carbonx_feed::book::BookBuilder;
use carbonx_feed::watch::{Credentials, Follower, WatchError, load_snapshot_with, render};
use carbonx_soup::stream::TlsError;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The feed goes quiet for this long: caught up.
const QUIET: Duration = Duration::from_millis(300);
/// Catching up stops after this many polls even if the feed never goes quiet.
const CATCH_UP_POLLS_MAX: usize = 10_000;

/// Why `carbonx watch` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The feed or the snapshot failed.
    #[error(transparent)]
    Feed(#[from] WatchError),
    /// A TLS file or name is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A frame could not be written to standard output (other than a reader
    /// that went away, which ends the watch quietly).
    #[error("writing to standard output: {0}")]
    Output(std::io::Error),
}

/// Where the book starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The TCP feed from sequence 1: the whole day, exact statistics.
    Replay,
    /// The snapshot service, then the feed from its `G` number.
    Snapshot(SocketAddr),
}

/// How many frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    /// Catch up, one frame, exit.
    Once,
    /// One frame a second, for this many seconds (or until interrupted).
    Every(Option<u64>),
}

/// `carbonx watch`'s settings.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The TCP feed.
    pub feed: SocketAddr,
    /// Where the book starts.
    pub source: Source,
    /// The admin endpoint (public auction list).
    pub admin: SocketAddr,
    /// Levels per side.
    pub levels: usize,
    /// How many frames.
    pub frames: Frames,
    /// The feed user (`[[feed.users]]`; any in the demo market).
    pub credentials: Credentials,
    /// TLS to the feed and the snapshot service (off: plain TCP).
    pub tls: TlsArgs,
}

/// Runs `carbonx watch`.
///
/// # Errors
/// The feed could not be reached or misbehaved.
pub async fn run(options: &WatchOptions) -> Result<(), RunError> {
    let book = match options.source {
        Source::Replay => BookBuilder::new(),
        Source::Snapshot(addr) => {
            let tls = options.tls.client(addr)?;
            load_snapshot_with(addr, &options.credentials, tls.as_ref()).await?
        }
    };
    let tls = options.tls.client(options.feed)?;
    let mut follower = Follower::start_with(options.feed, book, &options.credentials, tls.as_ref()).await?;
    let in_place = std::io::stdout().is_terminal() && options.frames != Frames::Once;
    let rounds = match options.frames {
        Frames::Once => 1,
        Frames::Every(seconds) => seconds.unwrap_or(u64::MAX).max(1),
    };
    for _ in 0..rounds {
        match options.frames {
            Frames::Once => catch_up(&mut follower).await?,
            Frames::Every(_) => {
                follower.poll(Duration::from_secs(1)).await?;
            }
        }
        let auctions = public_auctions(options.admin, options.tls.tls_ca.clone().filter(|_| options.tls.tls)).await;
        let text = frame(&follower, options, auctions.as_ref());
        match show(&text, in_place) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(RunError::Output(err)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Writes one frame: in place on a terminal, followed by a rule otherwise.
/// Unlike `print!`, a closed pipe (`carbonx watch | head`) is an error to
/// handle, not a panic.
fn show(text: &str, in_place: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if in_place {
        write!(out, "\x1b[H\x1b[2J{text}")?;
    } else {
        writeln!(out, "{text}{}", "-".repeat(72))?;
    }
    out.flush()
}

/// Applies what the feed has until it goes quiet (bounded).
async fn catch_up(follower: &mut Follower) -> Result<(), WatchError> {
    for _ in 0..CATCH_UP_POLLS_MAX {
        if follower.poll(QUIET).await? == 0 {
            break;
        }
    }
    Ok(())
}

/// One frame: the feed position, each instrument, the auctions.
fn frame(follower: &Follower, options: &WatchOptions, auctions: Option<&AuctionList>) -> String {
    let since = match options.source {
        Source::Replay => "the day from sequence 1",
        Source::Snapshot(_) => "joined from a snapshot: volumes count from then",
    };
    let mut text =
        format!("carbonx watch  feed {}  sequence {}  ({since})\n", options.feed, follower.book.next_seq() - 1);
    text.push_str(&render(&follower.book, &follower.stats, options.levels));
    text.push_str(&auction_lines(options.admin, auctions));
    text
}

/// The public auction list, or `None` when the endpoint cannot be reached.
/// With `--tls` the endpoint is tried under TLS first (`[admin] tls`,
/// trusting the same CA as the feed), then as plain HTTP.
async fn public_auctions(admin: SocketAddr, ca: Option<std::path::PathBuf>) -> Option<AuctionList> {
    let fetch = move || -> Option<AuctionList> {
        let roots = ca.as_deref().and_then(|ca| crate::admin::client::trusted(ca).ok());
        let schemes: &[&str] = if roots.is_some() { &["https", "http"] } else { &["http"] };
        let agent = crate::admin::client::agent(Duration::from_millis(500), roots.unwrap_or_default());
        schemes.iter().find_map(|scheme| {
            let mut answer = agent.get(&format!("{scheme}://{admin}/public/auctions")).call().ok()?;
            answer.body_mut().read_json().ok()
        })
    };
    tokio::task::spawn_blocking(fetch).await.ok().flatten()
}

/// The auctions section: each auction's window, range, status and result.
fn auction_lines(admin: SocketAddr, list: Option<&AuctionList>) -> String {
    let Some(list) = list else {
        return format!("auctions: admin endpoint {admin} not reachable; omitted\n");
    };
    if list.auctions.is_empty() {
        return "auctions: none today\n".into();
    }
    let mut out = String::from("auctions:\n");
    for a in &list.auctions {
        out.push_str(&format!(
            "  {:<8} {:<6} {:>9} t  {}-{}  {:<10} floor {} cap {}  {}",
            a.id,
            a.stock,
            a.qty,
            a.start,
            a.end,
            a.pricing.name(),
            a.floor,
            a.cap,
            a.status.map_or("", AuctionStatus::name)
        ));
        if let Some(result) = &a.result {
            let price = result.price.as_deref().unwrap_or("-");
            out.push_str(&format!("  sold {} t @ {price}", result.sold));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{AuctionFloor, AuctionOutcome, AuctionPricing, AuctionView};

    fn auction(id: &str, stock: &str, pricing: AuctionPricing, status: AuctionStatus) -> AuctionView {
        AuctionView {
            id: id.into(),
            stock: stock.into(),
            seller: None,
            user: None,
            qty: 200_000,
            start: "10:00:00".into(),
            end: "10:30:00".into(),
            start_ns: 0,
            end_ns: 0,
            pricing,
            floor_rule: AuctionFloor::PreviousClose,
            floor: "74.63".into(),
            cap: "82.09".into(),
            seller_order: None,
            status: Some(status),
            live_bids: None,
            result: None,
            ranked_bids: None,
        }
    }

    #[test]
    fn auctions_render_with_their_result_or_a_note() {
        let admin: SocketAddr = "127.0.0.1:7010".parse().unwrap();
        assert!(auction_lines(admin, None).contains("not reachable"));
        assert_eq!(auction_lines(admin, Some(&AuctionList { auctions: Vec::new() })), "auctions: none today\n");
        let mut ended = auction("A1", "CEA", AuctionPricing::Uniform, AuctionStatus::Ended);
        ended.result = Some(AuctionOutcome {
            offered: 200_000,
            sold: 150_000,
            price: Some("75.00".into()),
            turnover_yuan: "11250000.00".into(),
            winners: 3,
            bids: 4,
        });
        let open = auction("A2", "CCER", AuctionPricing::PayAsBid, AuctionStatus::Open);
        let text = auction_lines(admin, Some(&AuctionList { auctions: vec![ended, open] }));
        assert!(text.contains("A1") && text.contains("sold 150000 t @ 75.00"), "{text}");
        assert!(text.contains("A2") && text.contains("pay-as-bid") && text.contains("open"), "{text}");
    }
}
