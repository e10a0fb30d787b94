//! The TOML configuration file.

use crate::config::Config;

/// Parses `data` as a configuration file's text; what parses (and so
/// passed validation) writes back to TOML that parses to the same value.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text, "fuzz.toml") else { return };
    let again = Config::parse(&config.to_toml(), "again.toml").expect("a valid configuration writes back valid");
    assert_eq!(again, config);
}
