//! `[feed]` and `[[feed.users]]`: where market data goes and who may log
//! in to the TCP feed and the snapshot service.

use std::net::{Ipv4Addr, SocketAddr};

use carbonx_soup::stream::TlsFiles;
use serde::{Deserialize, Serialize};

use super::none_zero;

/// `[feed]`: where market data goes (defaults: the demo ports of RULES §13).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// False runs without market data (order entry only).
    pub enabled: bool,
    /// MoldUDP64 datagrams go to each of these (unicast or multicast): list
    /// two groups for the A and B copies, every datagram goes to both.
    pub publish_to: Vec<SocketAddr>,
    /// The publisher's source address: the address of the interface that
    /// multicast leaves by (default: any, the kernel's route).
    pub source_address: Option<Ipv4Addr>,
    /// Multicast time to live: routers it may cross (1: this network only).
    pub multicast_ttl: u32,
    /// True: multicast is also delivered on this host (a consumer here).
    pub multicast_loop: bool,
    /// The MoldUDP64 re-request server (UDP).
    pub rerequest: SocketAddr,
    /// Re-request answers to one source address at most, bytes per second
    /// (a 20-byte request returns up to 1,400 bytes: an amplifier otherwise).
    pub rerequest_bytes_per_second: u64,
    /// Bytes per second the snapshot port sends, all its connections
    /// together (32 MiB).
    pub snapshot_bytes_per_second: u64,
    /// The TCP feed (SoupBinTCP).
    pub tcp: SocketAddr,
    /// The snapshot service (SoupBinTCP).
    pub snapshot: SocketAddr,
    /// A TCP consumer this far behind (bytes) is disconnected.
    pub backlog_max_bytes: u64,
    /// A TCP feed or snapshot socket write not done within this many
    /// milliseconds ends the connection.
    pub write_timeout_ms: u64,
    /// Connections one feed user may hold on the TCP feed (and, apart, on
    /// the snapshot service).
    pub connections_per_user_max: usize,
    /// Connections one source address may have waiting to log in.
    pub prelogin_per_address_max: usize,
    /// Who may log in to the TCP feed and the snapshot service. Empty: anyone
    /// (the demo market, said at start-up).
    pub users: Vec<FeedUser>,
    /// TLS on the TCP feed (certificate and key; `client_ca` is not used
    /// there: feed users log in with a password); plain TCP without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// TLS on the snapshot service; plain TCP without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_tls: Option<TlsFiles>,
}

/// `[[feed.users]]`: a market-data user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedUser {
    /// The SoupBinTCP username, at most 6 ASCII characters.
    pub name: String,
    /// The password as an argon2 PHC string (`carbonx passwd` prints one),
    /// as order entry's `password_hash`.
    pub password_hash: String,
}

impl Default for FeedConfig {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        FeedConfig {
            enabled: true,
            publish_to: vec![local(7004)],
            source_address: None,
            multicast_ttl: 1,
            multicast_loop: true,
            rerequest: local(7005),
            rerequest_bytes_per_second: carbonx_feed::rerequest::BYTES_PER_SECOND,
            snapshot_bytes_per_second: carbonx_feed::snapshot::BYTES_PER_SECOND,
            tcp: local(7002),
            snapshot: local(7003),
            backlog_max_bytes: carbonx_feed::tcp::BACKLOG_MAX,
            write_timeout_ms: carbonx_feed::tcp::WRITE_TIMEOUT.as_millis() as u64,
            connections_per_user_max: carbonx_feed::tcp::PER_USER_MAX,
            prelogin_per_address_max: carbonx_feed::tcp::PRELOGIN_PER_ADDRESS_MAX,
            users: Vec::new(),
            tls: None,
            snapshot_tls: None,
        }
    }
}

impl FeedConfig {
    /// The users as the feed checks them: wire usernames and PHC strings.
    ///
    /// # Errors
    /// A name that is not 1 to 6 ASCII characters, a name listed twice, a
    /// password that is not an argon2 PHC string, or a zero limit.
    pub fn logins(&self) -> Result<carbonx_feed::access::Logins, String> {
        let mut users: Vec<(carbonx_feed::access::Username, String)> = Vec::new();
        for user in &self.users {
            let name = carbonx_soup::packet::alpha::<6>(&user.name)
                .filter(|_| user.name.is_ascii() && !user.name.is_empty())
                .ok_or_else(|| format!("feed user {:?}: a name is 1 to 6 ASCII characters", user.name))?;
            if users.iter().any(|(listed, _)| *listed == name) {
                return Err(format!("feed user {:?} is listed twice", user.name));
            }
            if !carbonx_soup::secret::is_password_hash(&user.password_hash) {
                return Err(format!(
                    "feed user {:?}: the password must be an argon2 PHC string (`carbonx passwd` prints one)",
                    user.name
                ));
            }
            users.push((name, user.password_hash.clone()));
        }
        let limits = [
            (self.write_timeout_ms, "write_timeout_ms"),
            (self.connections_per_user_max as u64, "connections_per_user_max"),
            (self.prelogin_per_address_max as u64, "prelogin_per_address_max"),
            (self.rerequest_bytes_per_second, "rerequest_bytes_per_second"),
            (self.snapshot_bytes_per_second, "snapshot_bytes_per_second"),
        ];
        none_zero("feed", &limits)?;
        Ok(carbonx_feed::access::Logins::new(users))
    }
}
