//! Who may use the TCP feed and the snapshot service, and how many
//! connections each may hold.
//!
//! - [`Logins`]: the configured feed users and their argon2 PHC passwords
//!   (checked with [`carbonx_soup::secret::verify_password`], the check
//!   order entry uses; an unknown username costs the same as a known one), or, in the demo market, anyone.
//! - [`PerAddress`] and [`PerUser`] ([`carbonx_soup::capped`]): connections
//!   counted per source address before login (one address that never logs
//!   in cannot take the listener) and per username after it (one user's
//!   heartbeating connections cannot hold every slot).

/// Password checks running at once at most: argon2 takes milliseconds
/// of CPU and megabytes of memory each, so a login flood queues here
/// instead of taking the machine's memory and cores.
const CHECKS_AT_ONCE: usize = 2;

/// A feed username (SoupBinTCP's 6 bytes, space-padded).
pub type Username = [u8; 6];

/// The feed's users, or everyone in the demo market.
#[derive(Debug)]
pub struct Logins {
    /// `(username, argon2 PHC string)`; empty: anyone may log in.
    users: Vec<(Username, String)>,
    checks: tokio::sync::Semaphore,
}

impl Logins {
    /// Users with their stored passwords (PHC strings); an empty list
    /// lets anyone in (the demo market).
    pub fn new(users: Vec<(Username, String)>) -> Logins {
        Logins { users, checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE) }
    }

    /// Anyone may log in.
    pub fn open() -> Logins {
        Logins::new(Vec::new())
    }

    /// True when any username and password is accepted.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// True when `name` may log in with `password` (the wire fields).
    pub async fn check(&self, name: &Username, password: &[u8; 10]) -> bool {
        if self.is_open() {
            return true;
        }
        let stored = self.users.iter().find(|(user, _)| user == name).map(|(_, stored)| stored.clone());
        // The password as typed: the field without its space padding.
        let typed = password.iter().rposition(|&b| b != b' ').map_or(0, |last| last + 1);
        let given = password[..typed].to_vec();
        let Ok(_turn) = self.checks.acquire().await else { return false };
        tokio::task::spawn_blocking(move || match stored {
            Some(stored) => carbonx_soup::secret::verify_password(&stored, &given),
            None => carbonx_soup::secret::verify_decoy(&given),
        })
        .await
        .unwrap_or(false)
    }
}

pub use carbonx_soup::capped::{Capped, PerAddress, Place};

/// After login, per username.
pub type PerUser = Capped<Username>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_users_need_their_password_and_an_empty_list_is_open() {
        let stored = carbonx_soup::secret::hash_password(b"feedpw").unwrap();
        let logins = Logins::new(vec![(*b"MM01  ", stored)]);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            assert!(logins.check(b"MM01  ", b"feedpw    ").await);
            assert!(!logins.check(b"MM01  ", b"feedpx    ").await);
            assert!(!logins.check(b"MM02  ", b"feedpw    ").await);
            assert!(Logins::open().check(b"ANYONE", b"x         ").await);
        });
    }
}
