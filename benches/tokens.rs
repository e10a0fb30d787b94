//! Adversarial tokens: the cost of taking tokens a client chose to collide,
//! against random ones. The colliding sets are computed by inverting the
//! hashes the token tables used before they were keyed (a fixed,
//! invertible multiply-xor): every token of a set had the same home slot,
//! so each insert walked past all the earlier ones. With the keyed hashes
//! the same sets cost what random tokens cost.
//!
//! - `taken/{random,colliding}`: 20,000 tokens of one user into the
//!   sequencer's set of taken tokens (`src/serve/taken.rs`).
//! - `engine_index/{random,colliding}`: 20,000 resting orders of one user
//!   entered into the engine (its token index, `engine/src/index.rs`).
//!
//! Run: `cargo bench --bench tokens` (add `-- --test` to run each once).

use carbonx::serve::taken::TakenTokens;
use carbonx_engine as cx;
use carbonx_testkit::Rng;
use criterion::{BatchSize, Criterion, criterion_main};
use std::hint::black_box;

const TOKENS: usize = 20_000;
const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xBF58_476D_1CE4_E5B9;

/// The multiplicative inverse of an odd number modulo 2^64 (Newton).
fn inverse(k: u64) -> u64 {
    let mut x = k;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(x)));
    }
    x
}

/// Tokens of user 0 whose old taken-set hash is `0, 1, 2, ...`: one home
/// slot in any table. The old hash of the key `user ‖ token` (big-endian
/// u128) was `(low·K1 ^ rotl(high, 23))·K2`; the token's first 6 bytes are
/// fixed (so `high` is), its last 8 (`low`) solved for.
fn colliding_for_taken() -> Vec<cx::Token> {
    let prefix = *b"EVIL00";
    let mut high_bytes = [0u8; 8];
    high_bytes[2..].copy_from_slice(&prefix);
    let rotated = u64::from_be_bytes(high_bytes).rotate_left(23);
    let (inv1, inv2) = (inverse(K1), inverse(K2));
    (0..TOKENS as u64)
        .map(|target| {
            let low = ((target.wrapping_mul(inv2)) ^ rotated).wrapping_mul(inv1);
            let mut token = [0u8; 14];
            token[..6].copy_from_slice(&prefix);
            token[6..].copy_from_slice(&low.to_be_bytes());
            cx::Token::from_bytes(token)
        })
        .collect()
}

/// Tokens of user 0 whose old engine index hash is `0, 1, 2, ...`. It was
/// `h ^ h >> 31` with `h = (a·K1 ^ rotl(b, 29))·K2`, `a` the token's first
/// 8 bytes and `b` its last 6 and the user (little-endian); for `h < 2^31`
/// the final xor-shift changes nothing.
fn colliding_for_engine() -> Vec<cx::Token> {
    let mut tail = [0u8; 8];
    tail[..6].copy_from_slice(b"EVIL00");
    let rotated = u64::from_le_bytes(tail).rotate_left(29);
    let (inv1, inv2) = (inverse(K1), inverse(K2));
    (0..TOKENS as u64)
        .map(|target| {
            let a = ((target.wrapping_mul(inv2)) ^ rotated).wrapping_mul(inv1);
            let mut token = [0u8; 14];
            token[..8].copy_from_slice(&a.to_le_bytes());
            token[8..].copy_from_slice(&tail[..6]);
            cx::Token::from_bytes(token)
        })
        .collect()
}

fn random_tokens(seed: u64) -> Vec<cx::Token> {
    let mut rng = Rng::new(seed);
    (0..TOKENS)
        .map(|_| {
            let mut token = [0u8; 14];
            token[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            token[8..].copy_from_slice(&rng.next_u64().to_le_bytes()[..6]);
            cx::Token::from_bytes(token)
        })
        .collect()
}

fn bench_taken(c: &mut Criterion) {
    let mut group = c.benchmark_group("taken");
    group.sample_size(10);
    for (name, tokens) in [("random", random_tokens(7)), ("colliding", colliding_for_taken())] {
        group.bench_function(name, |b| {
            b.iter_batched(
                TakenTokens::new,
                |mut set| {
                    for token in &tokens {
                        set.insert(cx::UserId::new(0), black_box(token));
                    }
                    set
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn engine() -> cx::Engine {
    let config = cx::EngineConfig {
        orders_max: 1 << 16,
        index_key: carbonx::config::random_index_key(),
        ..cx::EngineConfig::demo()
    };
    cx::Engine::new(config).expect("valid config")
}

fn bench_engine_index(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_index");
    group.sample_size(10);
    let stock = cx::StockCode::from_text("CEA").expect("stock");
    for (name, tokens) in [("random", random_tokens(8)), ("colliding", colliding_for_engine())] {
        let commands: Vec<cx::Command> = tokens
            .iter()
            .enumerate()
            .map(|(n, token)| {
                let account = cx::AccountId::new(n as u32 % 3_000);
                let order = cx::NewOrder::limit(cx::UserId::new(0), *token, account, cx::Side::Buy, 1, stock, 7_000);
                cx::Command::NewOrder(order)
            })
            .collect();
        group.bench_function(name, |b| {
            b.iter_batched(
                engine,
                |mut engine| {
                    let mut out = Vec::new();
                    for command in &commands {
                        out.clear();
                        engine.apply(black_box(command), cx::Timestamp::from_nanos(1), &mut out);
                    }
                    assert_eq!(engine.resting_count(), TOKENS, "every order rests");
                    engine
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_taken(&mut c);
    bench_engine_index(&mut c);
}

criterion_main!(benches);
