//! The `carbonx` configuration file: TOML, one section per part of the
//! exchange. Without a file, `carbonx` runs the embedded demo market of
//! RULES §13 ([`Config::demo`]).
//!
//! # Layout
//! - `mod.rs`: [`Config`] (the whole file: parsing, the demo preset,
//!   the secrets check, redaction, building the engine), `[journal]`, the
//!   accounts, and the helpers of the command line (`parse_duration`,
//!   `password_hash_from`).
//! - `admin.rs`: `[admin]`, the operator's endpoint ([`AdminConfig`],
//!   [`DEMO_ADMIN_TOKEN`]).
//! - `feed.rs`: `[feed]` and its users ([`FeedConfig`], [`FeedUser`]).
//! - `data.rs`: `[data]`, the data directory's file modes ([`DataConfig`]).

mod admin;
mod data;
mod feed;

pub use admin::{ADMIN_HEADER_BYTES_MIN, AdminConfig, DEMO_ADMIN_TOKEN};
pub use data::{DataConfig, FileMode};
pub use feed::{FeedConfig, FeedUser};

use crate::serve::journal_file::FsyncMode;
use carbonx_engine::accounts::{AccountTable, AccountsError};
use carbonx_engine::{Engine, EngineConfig};
use carbonx_gateway::config::GatewayConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The market's rules and the engine's capacities.
    pub market: EngineConfig,
    /// Where the accounts come from.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// Order entry: listen address, limits, users (default: the demo users).
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Market data: MoldUDP64 destinations, re-request, TCP feed and snapshot ports.
    #[serde(default)]
    pub feed: FeedConfig,
    /// Durability of the journal and its group commits.
    #[serde(default)]
    pub journal: JournalConfig,
    /// The operator's HTTP endpoint and end-of-day files.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The files of the data directory: their permissions.
    #[serde(default)]
    pub data: DataConfig,
    /// Replication: present, this server is one node of a Raft group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::config::ClusterConfig>,
    /// True only for the embedded demo market ([`Config::demo`]), never
    /// for a file: the demo may print its admin token at start-up and
    /// keep its published logins (RULES §13); a file must set its own
    /// secrets ([`Config::parse`] refuses one without).
    #[serde(skip)]
    pub demo: bool,
}

/// What `carbonx config` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";
/// The shortest admin token a configuration file may set.
pub const ADMIN_TOKEN_LEN_MIN: usize = 16;

/// A configuration file whose secrets cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// No `[[gateway.users]]`.
    #[error("no [[gateway.users]]: a real market lists its usernames (only the embedded demo has its own)")]
    NoUsers,
    /// The admin endpoint is enabled without a token, or with a short one.
    #[error("[admin] token: set a secret of at least {ADMIN_TOKEN_LEN_MIN} characters (e.g. `openssl rand -hex 24`)")]
    AdminToken,
    /// A stored password is not an argon2 PHC string.
    #[error("{0:?}: password_hash is not an argon2 hash (make one with `carbonx passwd`)")]
    PasswordHash(String),
}

/// The one duration syntax of every flag and operator command
/// (`--duration 10s`, `--warmup 500ms`, `--end +10m`): a number and a
/// unit, `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, several summed (`1m30s`),
/// as the `humantime` crate reads them. A bare number is refused, so that
/// no one has to guess its unit. Configuration keys keep integer values in
/// the unit their name ends with (`_ms`, `_us`).
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("{text:?} is not a duration such as 500ms, 10s, 10m or 1h30m ({err})"))
}

/// Checks that none of a table's `(value, key)` limits is zero.
///
/// # Errors
/// `[table] key must be at least 1`, for the first that is.
fn none_zero(table: &str, limits: &[(u64, &str)]) -> Result<(), String> {
    match limits.iter().find(|(value, _)| *value == 0) {
        Some((_, key)) => Err(format!("[{table}] {key} must be at least 1")),
        None => Ok(()),
    }
}

/// `[journal]`: how commands are made durable before anything is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// `always` (fdatasync per command), `batch` (per group commit), `never` (tests, benchmarks).
    pub fsync: FsyncMode,
    /// Most commands in one group commit.
    pub batch_max: usize,
    /// Most microseconds a group commit waits for more commands (0: none).
    pub batch_window_us: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig { fsync: FsyncMode::Batch, batch_max: crate::serve::sequencer::BATCH_MAX, batch_window_us: 0 }
    }
}

impl JournalConfig {
    /// The sequencer's batching.
    pub fn batching(&self) -> crate::serve::sequencer::Batching {
        crate::serve::sequencer::Batching {
            max_commands: self.batch_max.max(1),
            window: std::time::Duration::from_micros(self.batch_window_us),
        }
    }
}

/// The accounts loaded on first start (later days carry balances forward).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// A CSV file `account,cash_yuan,<instrument codes>`; relative paths are
    /// relative to the configuration file. Without it, demo accounts.
    pub file: Option<PathBuf>,
    /// How many demo accounts (`0001` ..) to generate when there is no file.
    pub demo_count: u32,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig { file: None, demo_count: 3_400 }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (with line and column).
        source: toml::de::Error,
    },
    /// The accounts file is wrong.
    #[error("{path}: {source}")]
    Accounts {
        /// The file.
        path: String,
        /// Which line and why.
        source: AccountsError,
    },
    /// The secrets are missing or not usable.
    #[error("{path}: {source}")]
    Secrets {
        /// The file.
        path: String,
        /// Which secret.
        source: SecretsError,
    },
    /// The `[feed]` table is wrong (its users or limits).
    #[error("{path}: {message}")]
    Feed {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The `[cluster]` table, or the `preset`, is wrong.
    #[error("{path}: {message}")]
    Cluster {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The `[admin]` table's limits are wrong.
    #[error("{path}: {message}")]
    Admin {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The values break a rule of the market.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// Which rule.
        source: carbonx_engine::config::ConfigError,
    },
}

impl Config {
    /// The same market with every listener on a free loopback port and no
    /// MoldUDP64 destination: what tests and the load generator's embedded
    /// server run (several at once must not collide on 7001..7010).
    pub fn on_free_ports(mut self) -> Config {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        (self.gateway.listen, self.gateway.drop_copy_listen, self.admin.listen) = (any, any, any);
        (self.feed.tcp, self.feed.snapshot, self.feed.rerequest) = (any, any, any);
        self.feed.publish_to.clear();
        self
    }

    /// The embedded demo market (always-open, seven instruments).
    pub fn demo() -> Config {
        Config {
            market: EngineConfig::demo(),
            accounts: AccountsConfig::default(),
            gateway: GatewayConfig::demo(),
            feed: FeedConfig::default(),
            journal: JournalConfig::default(),
            admin: AdminConfig { token: DEMO_ADMIN_TOKEN.to_string(), ..AdminConfig::default() },
            data: DataConfig::default(),
            cluster: None,
            demo: true,
        }
    }

    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// A [`ConfigFileError`] naming the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Config, ConfigFileError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read { path: name.clone(), source })?;
        Config::parse(&text, &name)
    }

    /// Parses and validates configuration text; `name` is used in errors.
    ///
    /// # Errors
    /// A [`ConfigFileError`] naming `name` and what is wrong.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigFileError> {
        let parse_error = |source| ConfigFileError::Parse { path: name.to_string(), source };
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut config: Config = match table.get("preset") {
            None => toml::from_str(text).map_err(parse_error)?,
            Some(preset) => Config::over_preset(table.clone(), preset)
                .map_err(|message| ConfigFileError::Cluster { path: name.to_string(), message })?,
        };
        config
            .take_cluster_addresses()
            .map_err(|message| ConfigFileError::Cluster { path: name.to_string(), message })?;
        config.market.validate().map_err(|source| ConfigFileError::Invalid { path: name.to_string(), source })?;
        config.check_secrets().map_err(|source| ConfigFileError::Secrets { path: name.to_string(), source })?;
        config.feed.logins().map_err(|message| ConfigFileError::Feed { path: name.to_string(), message })?;
        config.admin.limits().map_err(|message| ConfigFileError::Admin { path: name.to_string(), message })?;
        Ok(config)
    }

    /// `preset = "demo"`: the embedded demo market with the file's tables
    /// over it (a key the file sets replaces the demo's; arrays of tables
    /// are replaced whole). It keeps the demo's published logins and admin
    /// token (RULES §13): for a demo on loopback, such as the example
    /// cluster (`examples/cluster/`), never for a real market.
    fn over_preset(mut table: toml::Table, preset: &toml::Value) -> Result<Config, String> {
        if preset.as_str() != Some("demo") {
            return Err(format!("preset = {preset}: the only preset is \"demo\""));
        }
        table.remove("preset");
        let mut base = toml::Table::try_from(Config::demo()).map_err(|e| e.to_string())?;
        merge_tables(&mut base, table);
        let mut config: Config = base.try_into().map_err(|e: toml::de::Error| e.to_string())?;
        config.demo = true;
        Ok(config)
    }

    /// With `[cluster]`, this node's member table is where it listens for
    /// order entry and the admin endpoint (one place for each address).
    fn take_cluster_addresses(&mut self) -> Result<(), String> {
        let Some(cluster) = &self.cluster else { return Ok(()) };
        cluster.validate()?;
        let me = cluster.me().ok_or("[cluster] node is not a member")?;
        (self.gateway.listen, self.admin.listen) = (me.order_entry, me.admin);
        Ok(())
    }

    /// A file's secrets: users listed, each password an argon2 hash, and
    /// an admin token of [`ADMIN_TOKEN_LEN_MIN`] characters or more when
    /// the endpoint is on. The demo market is exempt (its logins are
    /// published, RULES §13).
    ///
    /// # Errors
    /// The first [`SecretsError`] found.
    pub fn check_secrets(&self) -> Result<(), SecretsError> {
        if self.demo {
            return Ok(());
        }
        if self.gateway.users.is_empty() {
            return Err(SecretsError::NoUsers);
        }
        if self.admin.enabled && self.admin.token.chars().count() < ADMIN_TOKEN_LEN_MIN {
            return Err(SecretsError::AdminToken);
        }
        let users = self.gateway.users.iter().map(|u| (&u.name, &u.password_hash));
        let desks = self.gateway.drop_copy.iter().map(|d| (&d.name, &d.password_hash));
        match users.chain(desks).find(|(_, hash)| !carbonx_soup::secret::is_password_hash(hash)) {
            Some((name, _)) => Err(SecretsError::PasswordHash(name.clone())),
            None => Ok(()),
        }
    }

    /// The configuration as TOML with every secret (the admin token, the
    /// password hashes) replaced by [`REDACTED`]: what `carbonx config`
    /// prints, safe to paste into a ticket.
    pub fn to_toml_redacted(&self) -> String {
        let mut redacted = self.clone();
        redacted.admin.token = REDACTED.into();
        for user in &mut redacted.gateway.users {
            user.password_hash = REDACTED.into();
        }
        for desk in &mut redacted.gateway.drop_copy {
            desk.password_hash = REDACTED.into();
        }
        for user in &mut redacted.feed.users {
            user.password_hash = REDACTED.into();
        }
        redacted.to_toml()
    }

    /// The engine this configuration describes, with its accounts loaded.
    /// `base` resolves a relative accounts path (the config file's folder).
    ///
    /// # Errors
    /// An unreadable or invalid accounts file, or an invalid market.
    pub fn build_engine(&self, base: &Path) -> Result<Engine, ConfigFileError> {
        let codes: Vec<&str> = self.market.instruments.iter().map(|i| i.code.as_str()).collect();
        let table = match &self.accounts.file {
            None => AccountTable::demo(codes.len(), self.accounts.demo_count),
            Some(file) => {
                let path = base.join(file);
                let name = path.display().to_string();
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigFileError::Read { path: name.clone(), source })?;
                AccountTable::from_csv(&text, &codes)
                    .map_err(|source| ConfigFileError::Accounts { path: name, source })?
            }
        };
        let market = EngineConfig { index_key: random_index_key(), ..self.market.clone() };
        Engine::with_accounts(market, table)
            .map_err(|source| ConfigFileError::Invalid { path: "market".into(), source })
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serialises")
    }
}

/// `over` laid on `base`: tables merge key by key, anything else replaces.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge_tables(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A fresh secret for the engine's hash indexes, from the operating
/// system's randomness (through std's randomly keyed SipHash: no extra
/// dependency). Not journaled: nothing the engine outputs depends on it.
pub fn random_index_key() -> carbonx_engine::IndexKey {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    [state.hash_one(1u8), state.hash_one(2u8)]
}

/// `carbonx passwd`: the argon2 hash of the password on the first line
/// of `input` (its line ending removed).
///
/// # Errors
/// No line, a password that is empty, longer than 10 characters or not
/// printable ASCII (a SoupBinTCP login could never send it), or no
/// random salt.
pub fn password_hash_from(mut input: impl std::io::BufRead) -> Result<String, String> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(|err| format!("cannot read the password: {err}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    let printable = password.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if password.is_empty() || password.len() > 10 || !printable || password.ends_with(' ') {
        return Err("a password is 1 to 10 printable ASCII characters, not ending in a space".into());
    }
    carbonx_soup::secret::hash_password(password.as_bytes()).map_err(|err| format!("cannot hash: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_say_what_is_wrong() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        for bad in ["10", "", "-1s", "ten seconds", "99999999999999999999h"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("not a duration") && err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn demo_round_trips_through_toml() {
        let demo = Config::demo();
        let parsed = Config::parse(&demo.to_toml(), "demo").unwrap();
        assert!(!parsed.demo, "a file is never the demo market");
        assert_eq!(Config { demo: true, ..parsed }, demo);
    }

    #[test]
    fn shipped_example_is_valid_and_uses_the_real_calendar() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("carbonx.toml");
        // It holds no usable secret: as shipped it is refused ...
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("[admin] token"), "{err}");
        // ... and with the operator's token and hashes filled in, it runs.
        let text = std::fs::read_to_string(&path).unwrap().replace("token = \"\"", "token = \"0123456789abcdef\"");
        let with_token = Config::parse(&text, "carbonx.toml").unwrap_err().to_string();
        assert!(with_token.contains("BROKR1") && with_token.contains("carbonx passwd"), "{with_token}");
        let hash = carbonx_gateway::config::DEMO_PASSWORD_HASH;
        let text = text.replace("password_hash = \"\"", &format!("password_hash = \"{hash}\""));
        let config = Config::parse(&text, "carbonx.toml").unwrap();
        assert!(!config.demo);
        assert_eq!(config.market.session, carbonx_engine::SessionMode::Calendar);
        assert_eq!(config.market.instruments.len(), 7);
        assert_eq!(config.journal.fsync, FsyncMode::Batch);
        // Its users resolve against its accounts, so `serve --config carbonx.toml` starts.
        let engine = config.build_engine(path.parent().unwrap()).unwrap();
        let table = engine.accounts().unwrap();
        let codes = (0..table.len() as u32).filter_map(|n| table.code(carbonx_engine::AccountId::new(n)).copied());
        let directory = carbonx_gateway::config::Directory::new(&config.gateway, codes.collect()).unwrap();
        assert_eq!(directory.users.len(), 2);
    }

    #[test]
    fn demo_engine_has_the_demo_accounts_and_a_csv_replaces_them() {
        let engine = Config::demo().build_engine(Path::new(".")).unwrap();
        assert_eq!(engine.accounts().unwrap().len(), 3_400);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let header = "account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER";
        std::fs::write(dir.join("a.csv"), format!("{header}\nE001,5.5,1,2,3,4,5,6,7\n")).unwrap();
        let mut config = Config::demo();
        config.accounts.file = Some("a.csv".into());
        assert_eq!(config.build_engine(dir).unwrap().accounts().unwrap().len(), 1);
        std::fs::write(dir.join("a.csv"), format!("{header}\nE001,x,1,2,3,4,5,6,7\n")).unwrap();
        let err = config.build_engine(dir).unwrap_err().to_string();
        assert!(err.contains("a.csv") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_registry_export_loads_as_the_accounts_file_and_a_bad_row_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let header = "\"account\",\"cash_yuan\",CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER";
        let export = format!("\u{feff}{header}\r\n\"E001\",\"5.50\",1,2,3,4,5,6,7\r\n\r\n");
        std::fs::write(tmp.path().join("export.csv"), &export).unwrap();
        let mut config = Config::demo();
        config.accounts.file = Some("export.csv".into());
        assert_eq!(config.build_engine(tmp.path()).unwrap().accounts().unwrap().len(), 1);
        std::fs::write(tmp.path().join("export.csv"), format!("{export}E002,1,1,2,3\r\n")).unwrap();
        let err = config.build_engine(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("export.csv") && err.contains("line 4") && err.contains("expected 9 fields"), "{err}");
    }

    #[test]
    fn a_gateway_table_without_desks_has_no_drop_copy_not_the_demo_desk() {
        let demo = Config::demo().to_toml();
        let (before, desk) = demo.split_once("[[gateway.drop_copy]]").expect("the demo has a desk");
        let after = desk.find("\n[").map_or("", |end| &desk[end..]);
        let config = Config::parse(&format!("{before}{after}"), "x.toml").unwrap();
        assert_eq!(config.gateway.users.len(), 10);
        assert!(config.gateway.drop_copy.is_empty(), "a real config must never get the demo desk's password");
        assert_eq!(Config::demo().gateway.drop_copy[0].name, "RISK01");
    }

    #[test]
    fn a_file_without_users_or_admin_token_is_refused_and_the_demo_is_not() {
        let demo = Config::demo();
        assert_eq!(demo.check_secrets(), Ok(()));
        let file = Config { demo: false, ..demo.clone() };
        assert_eq!(file.check_secrets(), Ok(()));
        let no_users = Config { gateway: GatewayConfig { users: vec![], ..file.gateway.clone() }, ..file.clone() };
        assert_eq!(no_users.check_secrets(), Err(SecretsError::NoUsers));
        let short = Config { admin: AdminConfig { token: "short".into(), ..file.admin.clone() }, ..file.clone() };
        assert_eq!(short.check_secrets(), Err(SecretsError::AdminToken));
        let mut plain = file.clone();
        plain.gateway.users[3].password_hash = "demo".into();
        assert_eq!(plain.check_secrets(), Err(SecretsError::PasswordHash("DEMO04".into())));
        // Without [admin] token, or without [[gateway.users]], a file fails.
        let text = demo.to_toml().replace("token = \"carbonx-demo-admin\"", "");
        assert!(Config::parse(&text, "x.toml").unwrap_err().to_string().contains("[admin] token"));
        let (before, _) =
            demo.to_toml().split_once("[[gateway.users]]").map(|(b, a)| (b.to_string(), a.to_string())).unwrap();
        let err = Config::parse(&before, "x.toml").unwrap_err().to_string();
        assert!(err.contains("no [[gateway.users]]"), "{err}");
    }

    #[test]
    fn passwd_hashes_one_line_that_a_login_could_send() {
        let hash = password_hash_from("s3cret\n".as_bytes()).unwrap();
        assert!(carbonx_soup::secret::verify_password(&hash, b"s3cret"));
        for bad in ["", "\n", "elevenchars\n", "trailing \n", "tab\there\n"] {
            assert!(password_hash_from(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_printed_configuration_redacts_every_secret() {
        let text = Config::demo().to_toml_redacted();
        assert!(!text.contains(DEMO_ADMIN_TOKEN) && !text.contains("$argon2"), "{text}");
        assert_eq!(text.matches(REDACTED).count(), 1 + 10 + 1, "token, ten users, one desk");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let typo = Config::demo().to_toml().replace("stp", "stpp");
        assert!(Config::parse(&typo, "x.toml").unwrap_err().to_string().contains("x.toml"));
        let bad_price = Config::demo().to_toml().replace("\"74.63\"", "\"74.635\"");
        let err = Config::parse(&bad_price, "x.toml").unwrap_err().to_string();
        assert!(err.contains("74.635"), "{err}");
        let bad_band = Config::demo().to_toml().replace("listing_band_pct = 10", "listing_band_pct = 40");
        let err = Config::parse(&bad_band, "x.toml").unwrap_err().to_string();
        assert!(err.contains("band"), "{err}");
    }
}
