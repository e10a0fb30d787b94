//! In-process engine latency, open loop: the exchange-core mix fed to one
//! engine at a planned rate, each command's latency in an HDR histogram.
//!
//! Command `i` is due at `start + i / rate`. The loop spins until it is
//! due, applies it, and records the time from when it was due to the end
//! of its `apply`, so a command that waits behind a slow one counts its
//! wait (no coordinated omission: a closed loop would start the clock only
//! when the engine is free). The first [`WARM_UP`] commands are applied
//! and not recorded. The clock's own cost (at least two reads per
//! command) is measured and printed beside the figures.
//!
//! Run: `cargo bench --bench latency` (`-- --test` runs 20,000 commands,
//! as CI does, so that the bench never rots).

// The shared streams serve the matchcore comparison too; this bench uses
// the mix only.
#[allow(dead_code)]
mod streams;

use carbonx_engine as cx;
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::time::{Duration, Instant};
use streams::{carbonx_book, mixed_streams_of, to_carbonx};

/// Commands per second, planned: the goal's rate, and one within what
/// this engine sustains on the reference machine, to show the distribution
/// without a queue.
const RATES: [u64; 2] = [5_000_000, 2_000_000];
/// Commands in a full run (0.4 s at 5 M/s).
const COMMANDS: usize = 2_000_000;
/// Commands in `--test` mode.
const COMMANDS_TEST: usize = 20_000;
/// Commands applied before recording starts (full runs only).
const WARM_UP: usize = 100_000;

fn main() {
    let test_mode = std::env::args().any(|arg| arg == "--test");
    let (commands, warm_up) = if test_mode { (COMMANDS_TEST, 0) } else { (COMMANDS, WARM_UP) };
    let (prefill, stream) = mixed_streams_of(commands);
    let all = to_carbonx(&prefill.iter().chain(&stream).copied().collect::<Vec<_>>());
    let (prefill, stream) = all.split_at(prefill.len());
    let capacity = closed_loop(carbonx_book(prefill), stream);
    println!(
        "latency/open_loop: {} commands of the exchange-core mix; closed loop (no clock): {:.1} ns per command, {:.2} M/s; \
         one clock read: {} ns",
        stream.len(),
        capacity.as_nanos() as f64 / stream.len() as f64,
        stream.len() as f64 / capacity.as_secs_f64() / 1e6,
        clock_cost()
    );
    for rate in RATES {
        let run = open_loop(carbonx_book(prefill), stream, rate, warm_up);
        let h = &run.histogram;
        println!(
            "  {:.1} M/s planned ({:.2} M/s achieved), due to applied: p50 {} ns  p99 {} ns  p99.9 {} ns  \
             p99.99 {} ns  max {} ns",
            rate as f64 / 1e6,
            stream.len() as f64 / run.elapsed.as_secs_f64() / 1e6,
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max()
        );
        assert_eq!(h.len() as usize, stream.len() - warm_up, "every command after the warm-up is recorded");
    }
}

/// The time the engine takes for `stream` back to back, without a clock
/// read per command: what it can sustain at most.
fn closed_loop(mut engine: cx::Engine, stream: &[cx::Command]) -> Duration {
    let mut out: Vec<cx::Event> = Vec::with_capacity(1 << 12);
    let start = Instant::now();
    for command in stream {
        out.clear();
        engine.apply(black_box(command), cx::Timestamp::from_nanos(2), &mut out);
    }
    black_box(&engine);
    start.elapsed()
}

/// What one open-loop run measured.
struct Run {
    histogram: Histogram<u64>,
    elapsed: Duration,
}

/// Applies `stream` to `engine` at `rate` commands per second, recording
/// from command `warm_up` on.
fn open_loop(mut engine: cx::Engine, stream: &[cx::Command], rate: u64, warm_up: usize) -> Run {
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds");
    let mut out: Vec<cx::Event> = Vec::with_capacity(1 << 12);
    let start = Instant::now();
    let mut due = Duration::ZERO;
    for (i, command) in stream.iter().enumerate() {
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
        out.clear();
        engine.apply(black_box(command), cx::Timestamp::from_nanos(2), &mut out);
        let latency = start.elapsed().saturating_sub(due);
        if i >= warm_up {
            histogram.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        }
        due += period;
    }
    black_box(&engine);
    Run { histogram, elapsed: start.elapsed() }
}

/// The median cost of one clock read, in ns (each command pays at least
/// two: the last check that it is due, and the end of its `apply`).
fn clock_cost() -> u64 {
    let mut histogram = Histogram::<u64>::new(3).expect("valid precision");
    let start = Instant::now();
    for _ in 0..100_000 {
        let before = start.elapsed();
        let after = start.elapsed();
        black_box(before);
        histogram.saturating_record(u64::try_from((after - before).as_nanos()).unwrap_or(u64::MAX));
    }
    histogram.value_at_quantile(0.5)
}
