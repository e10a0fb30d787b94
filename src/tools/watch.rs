//! `carbonx watch`: a market maker's view of a running server from the
//! feed alone (every book's top levels, last trade, volume by method, the
//! band, the close, auction results), plus the announced auctions from the
//! admin endpoint's public list (no token; omitted when unreachable).
//!
//! On a terminal each frame replaces the previous one (ANSI home + clear);
//! piped, frames follow each other separated by a rule, so that logs stay
//! readable. `--once` catches up with the feed, prints one frame and exits.

use carbonx_feed::book::BookBuilder;
use carbonx_feed::watch::{Follower, WatchError, load_snapshot, render};
use serde_json::Value;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

/// The feed goes quiet for this long: caught up.
const QUIET: Duration = Duration::from_millis(300);
/// Catching up stops after this many polls even if the feed never goes quiet.
const CATCH_UP_POLLS_MAX: usize = 10_000;

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
}

/// Runs `carbonx watch`.
///
/// # Errors
/// The feed could not be reached or misbehaved.
pub async fn run(options: &WatchOptions) -> Result<(), WatchError> {
    let book = match options.source {
        Source::Replay => BookBuilder::new(),
        Source::Snapshot(addr) => load_snapshot(addr).await?,
    };
    let mut follower = Follower::start(options.feed, book).await?;
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
        let auctions = public_auctions(options.admin).await;
        let text = frame(&follower, options, auctions.as_ref());
        if in_place {
            print!("\x1b[H\x1b[2J{text}");
        } else {
            println!("{text}{}", "-".repeat(72));
        }
    }
    Ok(())
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
fn frame(follower: &Follower, options: &WatchOptions, auctions: Option<&Value>) -> String {
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
async fn public_auctions(admin: SocketAddr) -> Option<Value> {
    let url = format!("http://{admin}/public/auctions");
    let fetch = move || -> Option<Value> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_millis(500))).build().into();
        agent.get(&url).call().ok()?.body_mut().read_json().ok()
    };
    tokio::task::spawn_blocking(fetch).await.ok().flatten()
}

/// The auctions section: each auction's window, range, status and result.
fn auction_lines(admin: SocketAddr, list: Option<&Value>) -> String {
    let Some(list) = list else {
        return format!("auctions: admin endpoint {admin} not reachable; omitted\n");
    };
    let auctions = list.get("auctions").and_then(Value::as_array).cloned().unwrap_or_default();
    if auctions.is_empty() {
        return "auctions: none today\n".into();
    }
    let text = |a: &Value, key: &str| a.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let mut out = String::from("auctions:\n");
    for a in &auctions {
        let field = |key| text(a, key).unwrap_or_default();
        out.push_str(&format!(
            "  {:<8} {:<6} {:>9} t  {}-{}  {:<10} floor {} cap {}  {}",
            field("id"),
            field("stock"),
            field("qty"),
            field("start"),
            field("end"),
            field("pricing"),
            field("floor"),
            field("cap"),
            field("status")
        ));
        if let Some(result) = a.get("result") {
            let price = text(result, "price").filter(|p| p != "null").unwrap_or_else(|| "-".into());
            out.push_str(&format!("  sold {} t @ {price}", text(result, "sold").unwrap_or_default()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auctions_render_with_their_result_or_a_note() {
        let admin: SocketAddr = "127.0.0.1:7010".parse().unwrap();
        assert!(auction_lines(admin, None).contains("not reachable"));
        assert_eq!(auction_lines(admin, Some(&json!({ "auctions": [] }))), "auctions: none today\n");
        let list = json!({ "auctions": [
            { "id": "A1", "stock": "CEA", "qty": 200000, "start": "10:00:00", "end": "10:30:00",
              "pricing": "uniform", "floor": "74.63", "cap": "82.09", "status": "ended",
              "result": { "sold": 150000, "price": "75.00" } },
            { "id": "A2", "stock": "CCER", "qty": 100000, "start": "11:00:00", "end": "11:10:00",
              "pricing": "pay-as-bid", "floor": "67.17", "cap": "82.09", "status": "open" }
        ]});
        let text = auction_lines(admin, Some(&list));
        assert!(text.contains("A1") && text.contains("sold 150000 t @ 75.00"), "{text}");
        assert!(text.contains("A2") && text.contains("pay-as-bid") && text.contains("open"), "{text}");
    }
}
