//! The test kit of the carbonx workspace: what every randomised test and
//! bench shares, and nothing that knows about orders. The load generator
//! (`carbonx load`) draws its seeded order mix from the same [`Rng`].
//!
//! # Layout
//! - [`Rng`]: SplitMix64, a tiny deterministic generator; the same seed gives
//!   the same stream on every machine and in every build profile.
//! - [`seed`]: the one place a seed comes from: `CARBONX_SEED` if set, else
//!   the test's own default; printed so a failing run can be repeated.
//! - [`tls`] (feature `tls`): certificates made at test time.
//!
//! This crate depends on no carbonx crate, so that the engine, the feed, the
//! gateway and the root package can all dev-depend on it without a cycle.
//! Builders of engine commands live with the engine
//! (`carbonx_engine::Command::demo_order`).
//!
//! ```
//! let mut rng = carbonx_testkit::Rng::new(carbonx_testkit::seed("doc example", 7));
//! let roll = rng.below(6);
//! assert!(roll < 6);
//! ```

use std::env;

#[cfg(feature = "tls")]
pub mod tls;

/// The environment variable every seeded test and bench reads its seed from.
pub const SEED_VAR: &str = "CARBONX_SEED";

/// SplitMix64 (Steele, Lea and Flood 2014): a small, fast, seedable
/// generator, good enough to pick test inputs and not meant for anything
/// else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`: the next 64 bits modulo `n` (the slight bias
    /// towards small numbers does not matter for test inputs).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }

    /// True with a probability of `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of the seeded test or bench `name`: the value of `CARBONX_SEED`
/// (decimal, or hexadecimal with `0x`, `_` separators allowed) if set, else
/// `default`. Prints it with the command line that reruns the same stream;
/// the test harness shows the line when the test fails.
///
/// # Panics
/// If `CARBONX_SEED` is set but is not a number: a typo must not silently
/// run the default stream.
pub fn seed(name: &str, default: u64) -> u64 {
    let seed = match env::var(SEED_VAR) {
        Ok(text) => parse_seed(&text).unwrap_or_else(|| panic!("{SEED_VAR}={text:?} is not a number")),
        Err(_) => default,
    };
    println!("{name}: seed {seed} (0x{seed:X}); rerun with {SEED_VAR}={seed}");
    seed
}

/// `123`, `0x7B` or `0x00C0_FFEE` as a number.
fn parse_seed(text: &str) -> Option<u64> {
    let digits: String = text.trim().chars().filter(|c| *c != '_').collect();
    match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => digits.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_stream() {
        // Reference values of SplitMix64 seeded with 1234567 (from the
        // authors' C implementation, also used by the xoshiro test suite).
        let mut rng = Rng::new(1_234_567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]);
    }

    #[test]
    fn below_and_chance_stay_in_range() {
        let mut rng = Rng::new(9);
        assert!((0..1_000).all(|_| rng.below(7) < 7));
        assert!((0..1_000).all(|_| !rng.chance(0)));
        assert!((0..1_000).all(|_| rng.chance(100)));
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0xC0_FFEE"), Some(0xC0_FFEE));
        assert_eq!(parse_seed(" 7 "), Some(7));
        assert_eq!(parse_seed("seven"), None);
    }
}
