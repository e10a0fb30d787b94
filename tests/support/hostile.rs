//! What the hostile-client tests (`hostile_e2e.rs`, `hostile_feed_e2e.rs`,
//! `hostile_admin_e2e.rs`) share: a demo server without fsync, the
//! operator's client, sockets from a chosen loopback address, and reads of
//! `/metrics`.

use carbonx::admin::client::{AdminAction, AdminClient};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use std::path::Path;
use std::time::Duration;

/// A server on `config` with its data in `dir`, journal unsynced.
pub fn start(dir: &Path, config: &Config) -> Server {
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(config, &options).unwrap()
}

/// The operator's client of `server`'s admin endpoint, with the demo token.
pub fn admin(server: &Server) -> AdminClient {
    AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN)
}

/// A connection to `addr` from `source` (any address of 127.0.0.0/8 is
/// this machine's loopback, so a test can flood from one and log in from
/// another).
pub async fn connect_to(addr: std::net::SocketAddr, source: [u8; 4]) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// True when the server closes `stream` within `wait` (it sends nothing
/// before a login).
pub async fn closed_within(mut stream: tokio::net::TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(wait, tokio::io::AsyncReadExt::read(&mut stream, &mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// The value of the metric line `name` (with its labels) on `/metrics`.
pub fn metric(server: &Server, name: &str) -> Option<u64> {
    let text = admin(server).run(&AdminAction::Metrics).unwrap();
    super::admin::sample(&text, name)
}
