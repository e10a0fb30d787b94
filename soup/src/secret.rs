//! Secrets of the session layer: login passwords stored as argon2 PHC
//! strings (`$argon2id$v=19$m=...`), never as text, and compared only
//! through argon2's verification; and constant-time comparison of bearer
//! tokens (the admin token). The gateway (order entry, drop copy) and the
//! feed (TCP feed and snapshot logins) share these, so that every login of
//! the exchange is checked the same way.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2b512, Digest};
use password_hash::rand_core::OsRng;
use subtle::ConstantTimeEq;

/// Memory cost of new hashes, KiB. With [`TIME_COST`] one verification
/// takes about 10 ms on one core of the reference machine (BENCHMARKS.md),
/// well inside the 50 ms a login may take; a stolen configuration still
/// costs an attacker 8 MiB and two passes per guess.
pub const MEMORY_KIB: u32 = 8 * 1024;
/// Passes over the memory of new hashes.
pub const TIME_COST: u32 = 2;

/// The hasher of new password hashes (argon2id, the parameters above).
fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, TIME_COST, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string of `password` under a fresh random salt: what
/// `carbonx passwd` prints for a configuration file.
///
/// # Errors
/// The system's random source failed, or argon2 refused the input.
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher().hash_password(password, &salt)?.to_string())
}

/// Whether `stored` (a PHC string) is a hash this module can verify: the
/// configuration refuses anything else, so that a plain-text password
/// can never be compared byte by byte.
pub fn is_password_hash(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"))
}

/// Whether `given` is the password `stored` (a PHC string) was made from.
/// The comparison is argon2's own (constant time over the digest); a
/// stored value that is not a PHC string never matches. The caller passes
/// the password as the client typed it: a SoupBinTCP login's field without
/// its space padding.
pub fn verify_password(stored: &str, given: &[u8]) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    // Argon2::default() verifies with the parameters the PHC string names.
    Argon2::default().verify_password(given, &hash).is_ok()
}

/// A precomputed hash of no configured password, verified when a login
/// names an unknown username, so that the answer takes as long as for a
/// known one and does not tell which usernames exist.
pub const DECOY_HASH: &str =
    "$argon2id$v=19$m=8192,t=2,p=1$ZGVjb3lkZWNveWRlY295$G2yGd4zKS9K3LfXq6bUXX5c0Ptv1V2yPSaTnyn4L6uU";

/// Verifies `given` against [`DECOY_HASH`] and answers false: the cost of
/// a login under an unknown username.
pub fn verify_decoy(given: &[u8]) -> bool {
    let _ = verify_password(DECOY_HASH, given);
    false
}

/// Whether two bearer tokens are equal, in time that depends on neither
/// their contents nor their lengths (both are hashed first, the digests
/// compared in constant time).
pub fn tokens_equal(expected: &str, given: &str) -> bool {
    let (a, b) = (Blake2b512::digest(expected.as_bytes()), Blake2b512::digest(given.as_bytes()));
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash_password(b"s3cret").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{stored}");
        assert!(is_password_hash(&stored));
        assert!(verify_password(&stored, b"s3cret"));
        assert!(!verify_password(&stored, b"s3cret "));
        assert!(!verify_password(&stored, b"other"));
        // Plain text in a configuration is never a password.
        assert!(!is_password_hash("s3cret"));
        assert!(!verify_password("s3cret", b"s3cret"));
        assert!(!verify_password("", b""));
    }

    #[test]
    fn the_decoy_is_a_valid_hash_of_no_usable_password() {
        assert!(is_password_hash(DECOY_HASH));
        assert!(!verify_decoy(b"demo"));
        assert!(!verify_decoy(b""));
    }

    #[test]
    fn tokens_compare_by_content() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
        assert!(!tokens_equal("abc", ""));
    }
}
