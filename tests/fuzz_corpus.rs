//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`, in
//! name order) and every crash reproducer (`fuzz/regressions/<target>/`)
//! through the same function the libFuzzer target runs
//! ([`carbonx::fuzzing`]), on stable, in CI. The fuzzers themselves need
//! nightly: see docs/TESTING.md.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` writes the
//! hand-made seed inputs below into the corpora (the starting points the
//! fuzzers grew their corpora from).

use carbonx::fuzzing::{TARGETS, Target};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted by name; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("a directory entry").path()).collect();
    files.sort();
    files
}

/// Runs `target` over its corpus and regressions; the corpus must not be empty.
fn replay(name: &str) {
    let target: Target = TARGETS.iter().find(|(n, _)| *n == name).expect("a target of that name").1;
    let corpus = files_in(&fuzz_dir().join("corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name} has no inputs");
    for file in corpus.iter().chain(&files_in(&fuzz_dir().join("regressions").join(name))) {
        let bytes = std::fs::read(file).expect("a corpus file reads");
        target(&bytes);
    }
}

macro_rules! replays {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_has_a_replay_test() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(tested.contains(name), "{name} has no replay test");
            }
        }
    };
}

replays!(
    soup_packet,
    soup_login,
    ouch_inbound,
    gateway_session,
    moldudp_rerequest,
    admin_request,
    journal_record,
    snapshot_file,
    config_toml,
);

#[path = "fuzz_corpus/seeds.rs"]
mod seeds;

#[test]
fn seeds_pass_their_targets() {
    for (name, target) in TARGETS {
        let inputs = seeds::for_target(name);
        assert!(!inputs.is_empty(), "{name} has no seeds");
        inputs.iter().for_each(|input| target(input));
    }
}

#[test]
#[ignore = "writes the seed inputs into fuzz/corpus; run by hand"]
fn write_seeds() {
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).expect("the corpus directory");
        for (n, input) in seeds::for_target(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{n:02}")), input).expect("a seed writes");
        }
    }
}
