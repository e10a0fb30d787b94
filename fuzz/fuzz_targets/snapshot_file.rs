#![no_main]

// `Engine::restore` checks the restored invariants under `catch_unwind`
// (they panic by design); libFuzzer's panic hook would abort on that
// caught panic, so the default hook goes back in. An uncaught panic still
// fails the run: libfuzzer-sys aborts when one reaches it.
libfuzzer_sys::fuzz_target!(
    init: {
        drop(std::panic::take_hook());
    },
    |data: &[u8]| carbonx::fuzzing::snapshot_file(data)
);
