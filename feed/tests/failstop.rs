//! One numbering for the feed's day log and its MoldUDP64 datagrams
//! (issue 19): when the day log cannot be written, the feed stops (the
//! fail-stop switch thrown, naming the file) and sends nothing of that
//! batch or after it; every datagram sent carries messages numbered
//! exactly as the day log holds them.
//!
//! Without the fix the packer numbered on its own: the failed batch went
//! out as UDP sequence numbers the log never held, and the next batch was
//! logged under those same numbers with other messages.

use bytes::BytesMut;
use carbonx_engine::{EngineConfig, Event, Phase, StockCode, Timestamp};
use carbonx_feed::moldudp::Datagram;
use carbonx_feed::service::{FeedInput, FeedService, FeedShared, PublishConfig};
use carbonx_soup::failstop::FailStop;
use carbonx_soup::files::{FaultPlan, StorageOp};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Fails every write under one directory once armed.
struct FullDisk {
    dir: PathBuf,
    armed: AtomicBool,
}

impl FaultPlan for FullDisk {
    fn check(&self, op: StorageOp, path: &Path) -> std::io::Result<()> {
        if op == StorageOp::Write && path.starts_with(&self.dir) && self.armed.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }
}

fn phases() -> Vec<(Timestamp, Event)> {
    let ts = Timestamp::from_nanos(1_795_485_600 * 1_000_000_000);
    vec![(ts, Event::Phase(Phase::AllDay)), (ts, Event::Phase(Phase::Morning))]
}

/// Every message in the day log, by number.
fn logged(shared: &FeedShared) -> BTreeMap<u64, Vec<u8>> {
    let state = shared.state.lock();
    let log = state.log.as_ref().unwrap();
    let mut cursor = log.seek(1).unwrap();
    let mut out = BytesMut::new();
    log.read(&mut cursor, usize::MAX, &mut out).unwrap();
    let mut messages = BTreeMap::new();
    let (mut at, mut seq) = (0, 1);
    while at < out.len() {
        let len = usize::from(u16::from_be_bytes([out[at], out[at + 1]]));
        messages.insert(seq, out[at + 3..at + 2 + len].to_vec()); // after the type byte `S`
        (at, seq) = (at + 2 + len, seq + 1);
    }
    messages
}

#[test]
fn a_feed_day_log_failure_stops_the_feed_and_udp_never_runs_ahead_of_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let config = PublishConfig {
        destinations: vec![receiver.local_addr().unwrap()],
        heartbeat: Duration::from_secs(3_600),
        log_dir: tmp.path().join("feed"),
        file_modes: carbonx_soup::files::FileModes::default(),
    };
    let plan = Arc::new(FullDisk { dir: tmp.path().to_path_buf(), armed: AtomicBool::new(false) });
    carbonx_soup::files::install_faults(Some(plan.clone()));
    let shared = FeedShared::new();
    let failstop = FailStop::new();
    let stocks = [StockCode::from_text("CEA").unwrap()];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut feed = FeedService::new(Arc::clone(&shared), &EngineConfig::demo(), &stocks, socket, config)
        .with_failstop(Arc::clone(&failstop));
    let (input, input_rx) = crossbeam::channel::unbounded();
    let session = carbonx_soup::packet::session_name(20_261_124);
    input.send(FeedInput::Day { session }).unwrap();
    input.send(FeedInput::Batch(phases())).unwrap();
    let (reached, barrier) = crossbeam::channel::bounded(1);
    input.send(FeedInput::Barrier(reached)).unwrap();
    let thread = std::thread::spawn(move || feed.run(&input_rx));
    barrier.recv().unwrap();
    plan.armed.store(true, Ordering::SeqCst);
    input.send(FeedInput::Batch(phases())).unwrap();
    let (reached, barrier) = crossbeam::channel::bounded(1);
    let _ = input.send(FeedInput::Barrier(reached));
    let _ = barrier.recv(); // an error: the feed stopped without answering
    plan.armed.store(false, Ordering::SeqCst);
    let _ = input.send(FeedInput::Batch(phases())); // never published: the feed has stopped
    drop(input);
    thread.join().unwrap();
    carbonx_soup::files::install_faults(None);

    let reason = failstop.reason().unwrap_or_default().to_string();
    assert!(reason.contains("itch-20261124.log") && reason.contains("os error 28"), "{reason}");
    let log = logged(&shared);
    let mut sent: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut buf = [0u8; 2_048];
    for _ in 0..1_000 {
        let Ok(n) = receiver.recv(&mut buf) else { break };
        let packet = Datagram::decode(&buf[..n]).unwrap();
        let first = packet.header().sequence;
        for (i, message) in packet.messages().enumerate() {
            let previous = sent.insert(first + i as u64, message.to_vec());
            assert!(previous.is_none_or(|p| p == message), "sequence {} sent twice, differently", first + i as u64);
        }
    }
    assert!(!sent.is_empty(), "the first batch was published");
    for (seq, message) in &sent {
        assert_eq!(log.get(seq), Some(message), "UDP sequence {seq} is not the logged message");
    }
}
