//! A connection that is plain TCP or TCP under TLS, and its two halves.
//!
//! Every listener of the server (order entry, drop copy, TCP feed,
//! snapshot, admin) and every client of ours (`carbonx load`, `carbonx
//! watch`, the OUCH client) reads and writes a [`Stream`], so TLS is a
//! setting, not a second code path. Plain TCP keeps tokio's own split
//! halves (no lock between the halves); a TLS stream is split with
//! [`tokio::io::split`], which it needs because both halves share one
//! TLS state.
//!
//! Certificates and keys are PEM files ([`TlsFiles`]); rustls with the
//! aws-lc-rs provider (rustls's default) does the cryptography (no
//! OpenSSL). Handshakes are
//! bounded by a deadline the caller gives: a client that opens a socket and
//! never speaks holds nothing for longer than a login would.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::rustls::{self, pki_types};

/// A server-side TLS stream.
type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;
/// A client-side TLS stream.
type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

/// The PEM files of a listener's TLS: its certificate chain, its private
/// key, and optionally the CA that client certificates must chain to
/// (client-certificate authentication; order entry may require it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate issued by this CA (PEM).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The same files with relative paths taken from `base` (the folder of
    /// the configuration file that named them).
    pub fn resolved(&self, base: &Path) -> TlsFiles {
        TlsFiles {
            cert: base.join(&self.cert),
            key: base.join(&self.key),
            client_ca: self.client_ca.as_ref().map(|ca| base.join(ca)),
        }
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the certificates or the key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client CA: {0}")]
    ClientCa(String),
    /// The name to check the server's certificate against is not valid.
    #[error("TLS server name {0:?} is not a DNS name or an IP address")]
    ServerName(String),
}

/// The cryptography of every TLS endpoint: rustls's `aws-lc-rs` provider, set
/// explicitly so no process-wide default has to be installed first (the
/// admin client hands it to its HTTP library too).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason: reason.to_string() }
}

/// The certificates of a PEM file (at least one).
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn load_certs(path: &Path) -> Result<Vec<pki_types::CertificateDer<'static>>, TlsError> {
    use pki_types::pem::PemObject;
    let certs = pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|err| file_error(path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(path, err))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<pki_types::PrivateKeyDer<'static>, TlsError> {
    use pki_types::pem::PemObject;
    pki_types::PrivateKeyDer::from_pem_file(path).map_err(|err| file_error(path, err))
}

fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|err| file_error(path, err))?;
    }
    Ok(roots)
}

/// A TLS acceptor for a listener, from its PEM files.
///
/// # Errors
/// A file is missing or unusable, or the key does not match.
pub fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let builder =
        rustls::ServerConfig::builder_with_provider(crypto_provider()).with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(ca)?),
                crypto_provider(),
            )
            .build()
            .map_err(|err| TlsError::ClientCa(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// How a client of ours connects: the CA its server's certificate must
/// chain to, the name it must carry, and an optional client certificate.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    server_name: pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client trusting the CA in `ca` (PEM), checking that the server's
    /// certificate names `server_name` (a DNS name or an IP address), and
    /// presenting `identity` (certificate and key files) when given.
    ///
    /// # Errors
    /// A file is missing or unusable, or the name is not valid.
    pub fn new(ca: &Path, server_name: &str, identity: Option<(&Path, &Path)>) -> Result<TlsClient, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(root_store(ca)?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        };
        let server_name = pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsError::ServerName(server_name.to_string()))?;
        Ok(TlsClient { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), server_name })
    }

    /// Runs the TLS handshake on a connected socket, within `deadline`.
    ///
    /// # Errors
    /// The handshake failed or took too long.
    pub async fn connect(&self, socket: TcpStream, deadline: Duration) -> io::Result<Stream> {
        let handshake = self.connector.connect(self.server_name.clone(), socket);
        let tls = within(deadline, handshake).await?;
        Ok(Stream::ClientTls(Box::new(tls)))
    }
}

/// How a listener takes a connection: as it is, or after a TLS handshake.
#[derive(Clone, Default)]
pub enum Accept {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS with this acceptor.
    Tls(tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accept::Plain => "Plain",
            Accept::Tls(_) => "Tls",
        })
    }
}

impl Accept {
    /// Plain TCP without files, TLS with them.
    ///
    /// # Errors
    /// The files are unusable.
    pub fn from_files(files: Option<&TlsFiles>) -> Result<Accept, TlsError> {
        files.map_or(Ok(Accept::Plain), |files| acceptor(files).map(Accept::Tls))
    }

    /// As [`Accept::from_files`], relative paths taken from `base`.
    ///
    /// # Errors
    /// The files are unusable.
    pub fn from_config(files: Option<&TlsFiles>, base: &Path) -> Result<Accept, TlsError> {
        Accept::from_files(files.map(|files| files.resolved(base)).as_ref())
    }

    /// Whether connections are encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Accept::Tls(_))
    }

    /// The accepted socket as a [`Stream`]: a TLS handshake first, bounded
    /// by `deadline`, where TLS is configured.
    ///
    /// # Errors
    /// The handshake failed or took too long.
    pub async fn accept(&self, socket: TcpStream, deadline: Duration) -> io::Result<Stream> {
        match self {
            Accept::Plain => Ok(Stream::Plain(socket)),
            Accept::Tls(acceptor) => Ok(Stream::ServerTls(Box::new(within(deadline, acceptor.accept(socket)).await?))),
        }
    }
}

async fn within<T>(deadline: Duration, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// One connection, plain or under TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, accepted by a listener of ours.
    ServerTls(Box<ServerTls>),
    /// TLS, connected by a client of ours.
    ClientTls(Box<ClientTls>),
}

impl Stream {
    /// The underlying socket (for its options and addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::ServerTls(tls) => tls.get_ref().0,
            Stream::ClientTls(tls) => tls.get_ref().0,
        }
    }

    /// The reading and the writing half, for two tasks.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(socket) => {
                let (read, write) = socket.into_split();
                (ReadHalf::Plain(read), WriteHalf::Plain(write))
            }
            Stream::ServerTls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (ReadHalf::ServerTls(read), WriteHalf::ServerTls(write))
            }
            Stream::ClientTls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (ReadHalf::ClientTls(read), WriteHalf::ClientTls(write))
            }
        }
    }
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
pub enum ReadHalf {
    /// Plain TCP.
    Plain(OwnedReadHalf),
    /// TLS, server side.
    ServerTls(tokio::io::ReadHalf<ServerTls>),
    /// TLS, client side.
    ClientTls(tokio::io::ReadHalf<ClientTls>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub enum WriteHalf {
    /// Plain TCP.
    Plain(OwnedWriteHalf),
    /// TLS, server side.
    ServerTls(tokio::io::WriteHalf<ServerTls>),
    /// TLS, client side.
    ClientTls(tokio::io::WriteHalf<ClientTls>),
}

/// Forwards an `AsyncRead` call to whichever variant `$self` is.
macro_rules! each_variant {
    ($self:expr, $inner:ident => $call:expr, $($variant:ident),+) => {
        match $self.get_mut() {
            $(Self::$variant($inner) => $call,)+
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_read(cx, buf), Plain, ServerTls, ClientTls)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each_variant!(self, s => Pin::new(s).poll_write(cx, buf), Plain, ServerTls, ClientTls)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_flush(cx), Plain, ServerTls, ClientTls)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_shutdown(cx), Plain, ServerTls, ClientTls)
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_read(cx, buf), Plain, ServerTls, ClientTls)
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        each_variant!(self, s => Pin::new(s).poll_write(cx, buf), Plain, ServerTls, ClientTls)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_flush(cx), Plain, ServerTls, ClientTls)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_variant!(self, s => Pin::new(s).poll_shutdown(cx), Plain, ServerTls, ClientTls)
    }
}
