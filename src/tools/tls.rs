//! The TLS options our clients share (`carbonx load`, `carbonx watch`):
//! `--tls` with the CA to trust, the name to expect, and an optional client
//! certificate for an order-entry port that demands one.

use carbonx_soup::stream::{TlsClient, TlsError};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `--tls` and its companions.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Connect under TLS (needs `--tls-ca`).
    #[arg(long, requires = "tls_ca")]
    pub tls: bool,
    /// The CA certificate (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "PEM", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the
    /// address's IP).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_name: Option<String>,
    /// A client certificate (PEM) to present, with `--tls-key`.
    #[arg(long, value_name = "PEM", requires_all = ["tls", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS client for a server at `server`, or `None` for plain TCP.
    ///
    /// # Errors
    /// A file is missing or unusable, or the name is not valid.
    pub fn client(&self, server: SocketAddr) -> Result<Option<TlsClient>, TlsError> {
        let (true, Some(ca)) = (self.tls, self.tls_ca.as_deref()) else {
            return Ok(None);
        };
        let name = self.tls_name.clone().unwrap_or_else(|| server.ip().to_string());
        let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        TlsClient::new(ca, &name, identity).map(Some)
    }
}
