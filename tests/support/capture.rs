//! A recording TCP proxy for tests: put it between a client and a server to
//! get the bytes of one real conversation, in order, for
//! [`pcap`](super::pcap) and tshark.
//!
//! Pure std, threads only. Needs the sibling module `pcap` (for
//! [`Direction`]); include both through `mod support;`.
#![allow(dead_code)]

use super::pcap::Direction;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Bytes seen by the proxy, in the order it read them.
pub type Chunks = Vec<(Direction, Vec<u8>)>;

/// A proxy listening on 127.0.0.1 that accepts one client, connects it to
/// `upstream`, forwards both ways and records every chunk before forwarding
/// it (so a reply is always recorded after the request that caused it).
pub struct CaptureProxy {
    /// Where clients connect.
    addr: SocketAddr,
    /// The recording so far.
    chunks: Arc<Mutex<Chunks>>,
    /// Accepts, then forwards until both sides close.
    worker: Option<JoinHandle<io::Result<()>>>,
}

impl CaptureProxy {
    /// Listens on an ephemeral loopback port and serves one connection.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&chunks);
        let worker = thread::spawn(move || -> io::Result<()> {
            let (client, _) = listener.accept()?;
            let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
            client.set_nodelay(true)?;
            server.set_nodelay(true)?;
            let up = pump(client.try_clone()?, server.try_clone()?, Direction::ToServer, Arc::clone(&rec));
            let down = pump(server, client, Direction::ToClient, rec);
            let r1 = up.join().expect("proxy thread panicked");
            let r2 = down.join().expect("proxy thread panicked");
            r1.and(r2)
        });
        Ok(Self { addr, chunks, worker: Some(worker) })
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients should connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A copy of what was recorded so far.
    pub fn snapshot(&self) -> Chunks {
        self.chunks.lock().expect("capture lock").clone()
    }

    /// Waits until both sides have closed, then returns the recording.
    ///
    /// # Panics
    /// If the proxy failed (other than by a peer's reset or early close).
    pub fn finish(mut self) -> Chunks {
        if let Some(w) = self.worker.take() {
            match w.join().expect("proxy thread panicked") {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) => {}
                Err(e) => panic!("capture proxy failed: {e}"),
            }
        }
        std::mem::take(&mut *self.chunks.lock().expect("capture lock"))
    }
}

/// Copies `from` to `to`, recording each read, until `from` closes; then
/// half-closes `to`.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Direction, rec: Arc<Mutex<Chunks>>) -> JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            rec.lock().expect("capture lock").push((dir, buf[..n].to_vec()));
            if let Err(e) = to.write_all(&buf[..n]) {
                break Err(e);
            }
        };
        let _ = to.shutdown(Shutdown::Write);
        result
    })
}

/// Joins consecutive chunks of the same direction (a pcap does not need the
/// proxy's read boundaries).
pub fn coalesce(chunks: &[(Direction, Vec<u8>)]) -> Chunks {
    let mut out: Chunks = Vec::new();
    for (d, b) in chunks {
        match out.last_mut() {
            Some((ld, lb)) if ld == d => lb.extend_from_slice(b),
            _ => out.push((*d, b.clone())),
        }
    }
    out
}
