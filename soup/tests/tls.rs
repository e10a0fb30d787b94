//! TLS through [`carbonx_soup::stream`] on loopback, with certificates
//! made at test time: a handshake and bytes both ways over the split
//! halves, a client certificate demanded and checked, a wrong CA and a
//! silent client refused.

use carbonx_soup::stream::{Accept, Stream, TlsClient, TlsFiles};
use carbonx_testkit::tls::Pki;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const DEADLINE: Duration = Duration::from_secs(5);

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A test PKI and the server's files as a listener's TLS settings.
fn make_pki(dir: &Path, tag: &str) -> (Pki, TlsFiles) {
    let pki = Pki::make(dir, tag);
    let files = TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), client_ca: None };
    (pki, files)
}

/// Accepts one connection with `accept` and echoes what it reads through
/// the split halves until the client closes.
async fn echo_server(accept: Accept) -> (std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        let stream = accept.accept(socket, DEADLINE).await?;
        let (mut read, mut write) = stream.into_split();
        let mut buf = [0u8; 1024];
        loop {
            let n = read.read(&mut buf).await?;
            if n == 0 {
                return write.shutdown().await;
            }
            write.write_all(&buf[..n]).await?;
        }
    });
    (addr, task)
}

async fn round_trip(mut stream: Stream) -> Vec<u8> {
    stream.write_all(b"hello over TLS").await.unwrap();
    let mut back = vec![0u8; 14];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut back)).await.unwrap().unwrap();
    stream.shutdown().await.unwrap();
    back
}

#[tokio::test]
async fn bytes_cross_a_tls_connection_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, files) = make_pki(dir.path(), "a");
    let (addr, server) = echo_server(Accept::from_files(Some(&files)).unwrap()).await;
    let client = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    let stream = client.connect(TcpStream::connect(addr).await.unwrap(), DEADLINE).await.unwrap();
    assert!(matches!(stream, Stream::ClientTls(_)));
    assert_eq!(round_trip(stream).await, b"hello over TLS");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_accept_is_plain_tcp() {
    let (addr, server) = echo_server(Accept::from_files(None).unwrap()).await;
    let stream = Stream::Plain(TcpStream::connect(addr).await.unwrap());
    assert_eq!(round_trip(stream).await, b"hello over TLS");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, _) = make_pki(dir.path(), "ours");
    let (_, theirs) = make_pki(dir.path(), "theirs");
    let (addr, server) = echo_server(Accept::from_files(Some(&theirs)).unwrap()).await;
    let client = TlsClient::new(&ours.ca, "127.0.0.1", None).unwrap();
    let refused = client.connect(TcpStream::connect(addr).await.unwrap(), DEADLINE).await;
    assert!(refused.is_err(), "a certificate from an unknown CA must be refused");
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn a_required_client_certificate_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, files) = make_pki(dir.path(), "b");
    let files = TlsFiles { client_ca: Some(pki.ca.clone()), ..files };

    let (addr, server) = echo_server(Accept::from_files(Some(&files)).unwrap()).await;
    let with_cert = TlsClient::new(&pki.ca, "127.0.0.1", Some((&pki.client_cert, &pki.client_key))).unwrap();
    let stream = with_cert.connect(TcpStream::connect(addr).await.unwrap(), DEADLINE).await.unwrap();
    assert_eq!(round_trip(stream).await, b"hello over TLS");
    server.await.unwrap().unwrap();

    let (addr, server) = echo_server(Accept::from_files(Some(&files)).unwrap()).await;
    let without = TlsClient::new(&pki.ca, "127.0.0.1", None).unwrap();
    // TLS 1.3: the client learns of the refusal on its first read.
    if let Ok(mut stream) = without.connect(TcpStream::connect(addr).await.unwrap(), DEADLINE).await {
        let _ = stream.write_all(b"x").await;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut byte)).await.unwrap();
        assert!(!matches!(read, Ok(1)), "no data may flow without a client certificate");
    }
    assert!(server.await.unwrap().is_err(), "the server must refuse a client without a certificate");
}

#[tokio::test]
async fn a_client_that_never_speaks_is_dropped_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (_, files) = make_pki(dir.path(), "c");
    let accept = Accept::from_files(Some(&files)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _silent = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (socket, _) = listener.accept().await.unwrap();
    let err = accept.accept(socket, Duration::from_millis(100)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn missing_or_empty_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.pem", "");
    let files = TlsFiles { cert: empty.clone(), key: empty.clone(), client_ca: None };
    let err = Accept::from_files(Some(&files)).unwrap_err().to_string();
    assert!(err.contains("empty.pem"), "{err}");
    let missing = TlsFiles { cert: dir.path().join("nope.pem"), key: empty, client_ca: None };
    let err = Accept::from_files(Some(&missing)).unwrap_err().to_string();
    assert!(err.contains("nope.pem"), "{err}");
}
