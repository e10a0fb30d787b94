//! `[admin]`: the operator's HTTP endpoint, its limits, and the demo
//! market's token.

use std::net::SocketAddr;

use carbonx_soup::stream::TlsFiles;
use serde::{Deserialize, Serialize};

use super::none_zero;

/// The demo market's admin token, printed at start-up. A real
/// configuration sets its own.
pub const DEMO_ADMIN_TOKEN: &str = "carbonx-demo-admin";

/// `[admin]`: the operator's endpoint (HTTP + JSON, and `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// False runs without the admin endpoint.
    pub enabled: bool,
    /// Where it listens (keep it on loopback or a management network).
    pub listen: SocketAddr,
    /// Every request except `GET /metrics` must carry
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// HTTPS with this certificate and key (PEM); plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// Connections open at once, every address together; more are
    /// answered `503` and closed.
    pub connections_max: usize,
    /// Connections open at once from one source address: a flood from one
    /// address leaves room for the operator's.
    pub per_address_max: usize,
    /// Time for the TLS handshake and for a request's head (line and
    /// headers), also the longest a kept-alive connection waits idle.
    pub header_timeout_ms: u64,
    /// Longest a connection lives, whatever it does (a body sent a byte at
    /// a time included).
    pub connection_timeout_ms: u64,
    /// Largest request head (line and headers) in bytes; larger ones are
    /// refused `431` (at least 8192, the HTTP parser's smallest buffer).
    pub header_bytes_max: usize,
}

/// Smallest `[admin] header_bytes_max` (hyper's smallest read buffer).
pub const ADMIN_HEADER_BYTES_MIN: usize = 8192;

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 7010)),
            // A file sets its own (the demo's is never a default).
            token: String::new(),
            tls: None,
            connections_max: 64,
            per_address_max: 16,
            header_timeout_ms: 5_000,
            connection_timeout_ms: 60_000,
            header_bytes_max: 16 * 1024,
        }
    }
}

impl AdminConfig {
    /// The endpoint's limits, checked: none zero, the head buffer at least
    /// [`ADMIN_HEADER_BYTES_MIN`].
    ///
    /// # Errors
    /// A message naming the key.
    pub fn limits(&self) -> Result<crate::admin::Limits, String> {
        let counts = [
            (self.connections_max as u64, "connections_max"),
            (self.per_address_max as u64, "per_address_max"),
            (self.header_timeout_ms, "header_timeout_ms"),
            (self.connection_timeout_ms, "connection_timeout_ms"),
        ];
        none_zero("admin", &counts)?;
        if self.header_bytes_max < ADMIN_HEADER_BYTES_MIN {
            return Err(format!("[admin] header_bytes_max must be at least {ADMIN_HEADER_BYTES_MIN}"));
        }
        Ok(crate::admin::Limits {
            connections_max: self.connections_max,
            per_address_max: self.per_address_max,
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            connection_timeout: std::time::Duration::from_millis(self.connection_timeout_ms),
            header_bytes_max: self.header_bytes_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn admin_limits_are_checked_naming_the_key() {
        let demo = Config::demo();
        assert!(Config::parse(&demo.to_toml(), "c.toml").is_ok());
        type Break = fn(&mut AdminConfig);
        let broken: [(&str, Break); 5] = [
            ("connections_max", |a| a.connections_max = 0),
            ("per_address_max", |a| a.per_address_max = 0),
            ("header_timeout_ms", |a| a.header_timeout_ms = 0),
            ("connection_timeout_ms", |a| a.connection_timeout_ms = 0),
            ("header_bytes_max", |a| a.header_bytes_max = ADMIN_HEADER_BYTES_MIN - 1),
        ];
        for (key, break_it) in broken {
            let mut config = demo.clone();
            break_it(&mut config.admin);
            let err = Config::parse(&config.to_toml(), "c.toml").unwrap_err().to_string();
            assert!(err.contains(&format!("[admin] {key}")), "{key}: {err}");
        }
    }
}
