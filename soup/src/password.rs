//! Checking a login's password against the configuration's stored form.
//!
//! A stored password is an argon2 PHC string (`$argon2id$v=19$m=...`, what
//! `carbonx passwd` prints); the check runs argon2 over what was given and
//! compares in constant time. Order entry, drop copy, the TCP feed and the
//! snapshot service all log in through SoupBinTCP, so the check lives here,
//! beside the login packet, for every one of them.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The prefix of every stored password this module understands.
pub const PHC_PREFIX: &str = "$argon2";

/// True when `given` (the login's password field, trailing spaces removed
/// by the caller or not) matches `stored`, an argon2 PHC string. A stored
/// value that is not a PHC string never matches: no plain-text password is
/// compared.
pub fn verify_password(stored: &str, given: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else { return false };
    argon2::Argon2::default().verify_password(given.trim_end_matches(' ').as_bytes(), &hash).is_ok()
}

/// True when `stored` is a PHC string that [`verify_password`] can check.
pub fn is_password_hash(stored: &str) -> bool {
    stored.starts_with(PHC_PREFIX) && PasswordHash::new(stored).is_ok()
}

/// The PHC string of `password` with `salt` (16 bytes or more of
/// randomness, encoded as B64 without padding by the caller's choice).
///
/// # Errors
/// A salt that is not valid B64 or is too short or long.
pub fn hash_password(password: &str, salt: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(salt)?;
    Ok(argon2::Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phc_string_matches_its_password_only() {
        let stored = hash_password("s3cret", b"0123456789abcdef").unwrap();
        assert!(stored.starts_with("$argon2id$") && is_password_hash(&stored));
        assert!(verify_password(&stored, "s3cret"));
        assert!(verify_password(&stored, "s3cret    "), "the wire's space padding is not part of the password");
        assert!(!verify_password(&stored, "s3cre"));
        assert!(!verify_password(&stored, ""));
    }

    #[test]
    fn plain_text_and_garbage_never_match() {
        assert!(!verify_password("demo", "demo"));
        assert!(!verify_password("$argon2id$garbage", "demo"));
        assert!(!is_password_hash("demo"));
    }
}
