//! The gateway's configuration: where it listens, its limits and timers,
//! and the usernames with their passwords, entitled accounts and throttle.

use carbonx_engine::{AccountId, UserId};
use carbonx_soup::secret;
use carbonx_soup::stream::TlsFiles;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Most simultaneous connections by default.
pub const CONNECTIONS_MAX: usize = 1_024;
/// Most connections from one source address waiting to log in, by
/// default: a broker's gateway machine opens a handful at once; a flood
/// from one address leaves the other 1,008 of [`CONNECTIONS_MAX`] free.
pub const PRELOGIN_PER_ADDRESS_MAX: usize = 16;
const _: () = assert!(PRELOGIN_PER_ADDRESS_MAX < CONNECTIONS_MAX);
/// How long one socket write to a client may take by default (ms): ample
/// for a client that reads (the kernel buffers megabytes), short enough
/// that one that does not is cut off within seconds.
pub const WRITE_TIMEOUT_MS: u64 = 5_000;
/// The demo users' password `demo` (RULES §13) as an argon2 PHC string,
/// computed once with `carbonx passwd`: the embedded configuration holds
/// no password in plain text either.
pub const DEMO_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=8192,t=2,p=1$t+JX2rQflHIFE5FvvrVIVA$n1cXZs6qkp8Aa1CSk6SwudkgKYo9JCl6DqfKL/1pmJY";
/// How long a failed login waits before its reject, by default (ms).
pub const LOGIN_FAILURE_DELAY_MS: u64 = 1_000;
/// Failed logins of one username, or from one source address, after which
/// logins are refused unchecked for [`LOGIN_LOCKOUT_MS`], by default.
pub const LOGIN_FAILURES_MAX: u32 = 10;
/// How long a lockout lasts, and how long a failure counts, by default (ms).
pub const LOGIN_LOCKOUT_MS: u64 = 60_000;
/// Consecutive throttle rejects (`V`) after which a connection is closed,
/// by default.
pub const THROTTLE_REJECTS_MAX: u32 = 1_000;

/// `[gateway]` in the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Order-entry listen address.
    pub listen: SocketAddr,
    /// Most simultaneous connections; more are closed at once with a log line.
    pub connections_max: usize,
    /// Most connections from one source address that have not logged in
    /// yet; more from that address are closed at once with a log line.
    pub prelogin_per_address_max: usize,
    /// A connection must log in within this many milliseconds.
    pub login_timeout_ms: u64,
    /// Each side sends a heartbeat after this many milliseconds of silence.
    pub heartbeat_ms: u64,
    /// A connection with nothing received for this long is closed.
    pub idle_timeout_ms: u64,
    /// Every socket write to a client must finish within this many
    /// milliseconds, or the connection is closed: a client that stops
    /// reading cannot hold its username (or its orders, with
    /// cancel-on-disconnect) by keeping its receive window shut.
    pub write_timeout_ms: u64,
    /// A failed login (wrong password or unknown username) is answered
    /// after this many milliseconds, so that guessing is slow.
    pub login_failure_delay_ms: u64,
    /// After this many failed logins of one username, or from one source
    /// address, within `login_lockout_ms`, logins of that username (from
    /// that address) are refused without checking the password until the
    /// failures age out.
    pub login_failures_max: u32,
    /// How long a failed login counts towards `login_failures_max` (ms).
    pub login_lockout_ms: u64,
    /// A connection whose messages keep arriving past its throttle is
    /// closed after this many throttle rejects (`V`) in a row.
    pub throttle_rejects_max: u32,
    /// The usernames that may log in (none when a configuration file
    /// does not list any: an error outside the demo market).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Drop-copy listen address: read-only SoupBinTCP for risk desks.
    pub drop_copy_listen: SocketAddr,
    /// The risk desks and the usernames each receives a copy of (none
    /// when a configuration file does not list any).
    #[serde(default)]
    pub drop_copy: Vec<DropCopyConfig>,
    /// TLS on the order-entry port (certificate, key, and optionally the CA
    /// client certificates must chain to); plain TCP without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// TLS on the drop-copy port; plain TCP without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_copy_tls: Option<TlsFiles>,
}

/// One drop-copy login: a firm's risk desk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropCopyConfig {
    /// Desk username, at most 6 characters, distinct from every order-entry username.
    pub name: String,
    /// The password as an argon2 PHC string (`carbonx passwd` prints one
    /// for a password of at most 10 characters); never the password itself.
    pub password_hash: String,
    /// The order-entry usernames whose every OUCH message the desk receives.
    pub users: Vec<String>,
}

/// One order-entry username.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Username, at most 6 characters.
    pub name: String,
    /// The password as an argon2 PHC string (`carbonx passwd` prints one
    /// for a password of at most 10 characters); never the password itself.
    pub password_hash: String,
    /// The account codes it may trade: single codes (`E001`) or numeric
    /// ranges (`0001-0340`, both ends included, zero-padded to 4 digits).
    pub accounts: Vec<String>,
    /// Token-bucket throttle: inbound messages per second, every kind
    /// (orders, replaces, cancels and malformed ones alike).
    pub rate_per_sec: u32,
    /// Token-bucket depth: how many may arrive at once.
    pub burst: u32,
    /// Cancel-on-disconnect: when this username's connection ends for
    /// any reason (logout, close, timeout, the operator), its live orders,
    /// blocks and bids are cancelled (`U`) through the journal.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
}

impl Default for GatewayConfig {
    /// The demo market's settings without its users and desks: a
    /// configuration file names its own (the demo's are never a default).
    fn default() -> Self {
        GatewayConfig { users: Vec::new(), drop_copy: Vec::new(), ..GatewayConfig::demo() }
    }
}

impl GatewayConfig {
    /// The demo market of RULES §13: `DEMO01`..`DEMO10`, password `demo`,
    /// 340 accounts each, 1,000,000 messages per second, port 7001.
    pub fn demo() -> GatewayConfig {
        let users = (1..=10u32)
            .map(|n| UserConfig {
                name: format!("DEMO{n:02}"),
                password_hash: DEMO_PASSWORD_HASH.into(),
                accounts: vec![format!("{:04}-{:04}", (n - 1) * 340 + 1, n * 340)],
                rate_per_sec: 1_000_000,
                burst: 1_000_000,
                cancel_on_disconnect: false,
            })
            .collect();
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7001)),
            connections_max: CONNECTIONS_MAX,
            prelogin_per_address_max: PRELOGIN_PER_ADDRESS_MAX,
            login_timeout_ms: 5_000,
            heartbeat_ms: 1_000,
            idle_timeout_ms: 15_000,
            write_timeout_ms: WRITE_TIMEOUT_MS,
            login_failure_delay_ms: LOGIN_FAILURE_DELAY_MS,
            login_failures_max: LOGIN_FAILURES_MAX,
            login_lockout_ms: LOGIN_LOCKOUT_MS,
            throttle_rejects_max: THROTTLE_REJECTS_MAX,
            users,
            drop_copy_listen: SocketAddr::from(([127, 0, 0, 1], 7006)),
            drop_copy: vec![DropCopyConfig {
                name: "RISK01".into(),
                password_hash: DEMO_PASSWORD_HASH.into(),
                users: (1..=10u32).map(|n| format!("DEMO{n:02}")).collect(),
            }],
            tls: None,
            drop_copy_tls: None,
        }
    }
}

/// A configuration the gateway cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayConfigError {
    /// A username is empty, longer than 6 bytes, not ASCII, or repeated.
    #[error("user {0:?}: a username is 1 to 6 ASCII characters and unique")]
    BadUsername(String),
    /// A stored password is not an argon2 PHC string.
    #[error("user {0:?}: password_hash is not an argon2 hash (make one with `carbonx passwd`)")]
    BadPassword(String),
    /// An account entry is neither a known code nor a range of them.
    #[error("user {user:?}: account {entry:?} is not a known account or range of accounts")]
    UnknownAccount {
        /// The user.
        user: String,
        /// The entry.
        entry: String,
    },
    /// More users than the engine's user ids can number.
    #[error("too many users")]
    TooManyUsers,
    /// A zero limit or timer.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// A drop-copy desk names a username that does not exist.
    #[error("drop copy {desk:?}: no order-entry user {user:?}")]
    UnknownDropCopyUser {
        /// The desk.
        desk: String,
        /// The username it names.
        user: String,
    },
}

/// A drop-copy desk as the running gateway knows it.
#[derive(Clone, Debug)]
pub struct Desk {
    /// Its stream's slot in the hub: after every user's
    /// (`users.len() + n`), so that streams and logins work the same way.
    pub slot: UserId,
    /// Username, space-padded as on the wire.
    pub name: [u8; 6],
    /// Its password's argon2 PHC string.
    pub password_hash: String,
    /// The users it copies.
    pub users: Vec<UserId>,
}

/// A user as the running gateway knows it.
#[derive(Clone, Debug)]
pub struct User {
    /// Its id in commands and events.
    pub id: UserId,
    /// Username, space-padded as on the wire.
    pub name: [u8; 6],
    /// Its password's argon2 PHC string.
    pub password_hash: String,
    /// The accounts it may trade.
    pub accounts: FxHashSet<AccountId>,
    /// Orders and replaces per second.
    pub rate_per_sec: u32,
    /// Bucket depth.
    pub burst: u32,
    /// Cancel its orders when its connection ends.
    pub cancel_on_disconnect: bool,
}

/// The users, and the account codes of the market, resolved at start.
#[derive(Clone, Debug)]
pub struct Directory {
    /// Users in config order (`UserId` = index).
    pub users: Vec<User>,
    /// Account code → account.
    pub accounts: FxHashMap<[u8; 4], AccountId>,
    /// Account → code (index = account number).
    pub codes: Vec<[u8; 4]>,
    /// Drop-copy desks, in config order.
    pub desks: Vec<Desk>,
}

impl Directory {
    /// Resolves `config`'s users against the market's account codes
    /// (`codes[n]` is account `n`'s code).
    ///
    /// # Errors
    /// A [`GatewayConfigError`] naming the user and the entry.
    pub fn new(config: &GatewayConfig, codes: Vec<[u8; 4]>) -> Result<Directory, GatewayConfigError> {
        for (value, name) in [
            (config.connections_max as u64, "connections_max"),
            (config.prelogin_per_address_max as u64, "prelogin_per_address_max"),
            (config.login_timeout_ms, "login_timeout_ms"),
            (config.heartbeat_ms, "heartbeat_ms"),
            (config.idle_timeout_ms, "idle_timeout_ms"),
            (config.write_timeout_ms, "write_timeout_ms"),
            (u64::from(config.login_failures_max), "login_failures_max"),
            (config.login_lockout_ms, "login_lockout_ms"),
            (u64::from(config.throttle_rejects_max), "throttle_rejects_max"),
        ] {
            if value == 0 {
                return Err(GatewayConfigError::Zero(name));
            }
        }
        let accounts: FxHashMap<[u8; 4], AccountId> =
            codes.iter().enumerate().map(|(n, code)| (*code, AccountId::new(n as u32))).collect();
        let mut users = Vec::with_capacity(config.users.len());
        for (n, user) in config.users.iter().enumerate() {
            let id = UserId::new(u16::try_from(n).map_err(|_| GatewayConfigError::TooManyUsers)?);
            users.push(resolve_user(id, user, &accounts)?);
        }
        unique_names(users.iter().map(|u| u.name))?;
        let desks = resolve_desks(&config.drop_copy, &users)?;
        unique_names(users.iter().map(|u| u.name).chain(desks.iter().map(|d| d.name)))?;
        Ok(Directory { users, accounts, codes, desks })
    }

    /// The user with this wire username and password. Costs one argon2
    /// verification (about 10 ms), also for an unknown username: run it
    /// off the async runtime.
    pub fn authenticate(&self, name: &[u8; 6], password: &[u8; 10]) -> Option<&User> {
        let user = self.users.iter().find(|u| &u.name == name);
        verified(user, password, |u| &u.password_hash)
    }

    /// The drop-copy desk with this wire username and password (the same
    /// cost as [`Directory::authenticate`]).
    pub fn authenticate_desk(&self, name: &[u8; 6], password: &[u8; 10]) -> Option<&Desk> {
        let desk = self.desks.iter().find(|d| &d.name == name);
        verified(desk, password, |d| &d.password_hash)
    }

    /// Every stream's name: the users', then the desks' (index = slot).
    pub fn stream_names(&self) -> impl Iterator<Item = &[u8; 6]> {
        self.users.iter().map(|u| &u.name).chain(self.desks.iter().map(|d| &d.name))
    }

    /// The user with this id.
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(usize::from(id.get()))
    }

    /// An account's code (`????` for an unknown one, which no order can name).
    pub fn code(&self, account: AccountId) -> [u8; 4] {
        self.codes.get(account.get() as usize).copied().unwrap_or(*b"????")
    }
}

/// `found` if the wire `password` (space-padded) matches its hash; an
/// unknown name costs the same verification, against a decoy.
fn verified<'a, T>(found: Option<&'a T>, password: &[u8; 10], hash: impl Fn(&T) -> &str) -> Option<&'a T> {
    let typed = wire_password(password);
    match found {
        Some(item) => secret::verify_password(hash(item), typed).then_some(item),
        None => {
            secret::verify_decoy(typed);
            None
        }
    }
}

/// A login's password as typed: the field without its space padding.
pub fn wire_password(field: &[u8; 10]) -> &[u8] {
    let end = field.iter().rposition(|&b| b != b' ').map_or(0, |last| last + 1);
    &field[..end]
}

/// Every login name once (users and drop-copy desks share the namespace).
fn unique_names(names: impl Iterator<Item = [u8; 6]>) -> Result<(), GatewayConfigError> {
    let mut names: Vec<[u8; 6]> = names.collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(pair) => Err(GatewayConfigError::BadUsername(String::from_utf8_lossy(&pair[0]).trim().into())),
        None => Ok(()),
    }
}

/// Checks the desks' names and passwords and resolves the users they copy.
fn resolve_desks(desks: &[DropCopyConfig], users: &[User]) -> Result<Vec<Desk>, GatewayConfigError> {
    let mut resolved = Vec::with_capacity(desks.len());
    for (n, desk) in desks.iter().enumerate() {
        let slot = u16::try_from(users.len() + n).map_err(|_| GatewayConfigError::TooManyUsers)?;
        let name = carbonx_soup::packet::alpha::<6>(&desk.name)
            .filter(|_| !desk.name.is_empty() && desk.name.is_ascii())
            .ok_or_else(|| GatewayConfigError::BadUsername(desk.name.clone()))?;
        if !secret::is_password_hash(&desk.password_hash) {
            return Err(GatewayConfigError::BadPassword(desk.name.clone()));
        }
        let mut copied = Vec::with_capacity(desk.users.len());
        for wanted in &desk.users {
            let user = users.iter().find(|u| String::from_utf8_lossy(&u.name).trim_end() == wanted.as_str());
            let unknown = || GatewayConfigError::UnknownDropCopyUser { desk: desk.name.clone(), user: wanted.clone() };
            copied.push(user.ok_or_else(unknown)?.id);
        }
        resolved.push(Desk { slot: UserId::new(slot), name, password_hash: desk.password_hash.clone(), users: copied });
    }
    Ok(resolved)
}

fn resolve_user(
    id: UserId,
    user: &UserConfig,
    accounts: &FxHashMap<[u8; 4], AccountId>,
) -> Result<User, GatewayConfigError> {
    let name = carbonx_soup::packet::alpha::<6>(&user.name)
        .filter(|_| !user.name.is_empty() && user.name.is_ascii())
        .ok_or_else(|| GatewayConfigError::BadUsername(user.name.clone()))?;
    if !secret::is_password_hash(&user.password_hash) {
        return Err(GatewayConfigError::BadPassword(user.name.clone()));
    }
    if user.rate_per_sec == 0 || user.burst == 0 {
        return Err(GatewayConfigError::Zero("rate_per_sec and burst"));
    }
    let mut entitled = FxHashSet::default();
    for entry in &user.accounts {
        let unknown = || GatewayConfigError::UnknownAccount { user: user.name.clone(), entry: entry.clone() };
        for code in expand(entry).ok_or_else(unknown)? {
            entitled.insert(*accounts.get(&code).ok_or_else(unknown)?);
        }
    }
    Ok(User {
        id,
        name,
        password_hash: user.password_hash.clone(),
        accounts: entitled,
        rate_per_sec: user.rate_per_sec,
        burst: user.burst,
        cancel_on_disconnect: user.cancel_on_disconnect,
    })
}

/// `0001-0340` → the 340 codes; `E001` → itself.
fn expand(entry: &str) -> Option<Vec<[u8; 4]>> {
    match entry.split_once('-') {
        None => carbonx_soup::packet::alpha::<4>(entry).filter(|_| entry.len() == 4).map(|c| vec![c]),
        Some((low, high)) => {
            let (low, high): (u32, u32) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
            if low > high || high > 9_999 {
                return None;
            }
            Some(
                (low..=high).map(|n| carbonx_soup::packet::alpha::<4>(&format!("{n:04}")).expect("4 digits")).collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_codes() -> Vec<[u8; 4]> {
        (1..=3_400u32).map(|n| carbonx_soup::packet::alpha::<4>(&format!("{n:04}")).unwrap()).collect()
    }

    #[test]
    fn demo_users_trade_their_340_accounts() {
        let dir = Directory::new(&GatewayConfig::demo(), demo_codes()).unwrap();
        assert_eq!(dir.users.len(), 10);
        let demo10 = dir.authenticate(b"DEMO10", b"demo      ").unwrap();
        assert_eq!(demo10.accounts.len(), 340);
        assert!(demo10.accounts.contains(&dir.accounts[b"3061"]));
        assert!(!demo10.accounts.contains(&dir.accounts[b"3060"]));
        assert!(dir.authenticate(b"DEMO10", b"wrong     ").is_none());
    }

    #[test]
    fn bad_users_name_the_problem() {
        let mut config = GatewayConfig::demo();
        config.users[0].accounts = vec!["0001-9999".into()];
        let err = Directory::new(&config, demo_codes()).unwrap_err().to_string();
        assert!(err.contains("DEMO01") && err.contains("0001-9999"), "{err}");
        let mut config = GatewayConfig::demo();
        config.users[1].name = "DEMO01".into();
        assert!(matches!(Directory::new(&config, demo_codes()), Err(GatewayConfigError::BadUsername(_))));
        let mut config = GatewayConfig::demo();
        config.drop_copy[0].name = "DEMO03".into();
        assert!(matches!(Directory::new(&config, demo_codes()), Err(GatewayConfigError::BadUsername(_))));
        config.drop_copy[0].name = "RISK01".into();
        config.drop_copy[0].users.push("NOBODY".into());
        let err = Directory::new(&config, demo_codes()).unwrap_err().to_string();
        assert!(err.contains("RISK01") && err.contains("NOBODY"), "{err}");
        let mut config = GatewayConfig::demo();
        config.users[0].name = "TOOLONG".into();
        assert!(matches!(Directory::new(&config, demo_codes()), Err(GatewayConfigError::BadUsername(_))));
    }
}
