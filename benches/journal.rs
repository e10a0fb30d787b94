//! The journal: group-commit throughput with `fdatasync` (goal: at least
//! 1,000,000 commands per second durable) and replay speed: read, checksum,
//! decode and apply (goal: at least 10,000,000 commands per second); and
//! the snapshot of a busy day's state (3,400 accounts, 20,000 resting
//! orders): taken, written as a file and restored; and the day's set of
//! taken tokens against `HashSet`s, with the longest single insert of a
//! busy day. `cargo bench --bench journal`.

use carbonx::serve::journal_file::{FsyncMode, JournalWriter};
use carbonx::serve::sequencer::{Publisher, Sequencer};
use carbonx::serve::taken::TakenTokens;
use carbonx_engine::journal::Record;
use carbonx_engine::{AccountId, Command, Engine, Event, NewOrder, Seq, Side, StockCode, Timestamp, Token, UserId};
use carbonx_testkit::Rng;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use rustc_hash::FxHashSet;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Orders around the reference, a fifth of them crossing.
fn commands(n: usize) -> Vec<Command> {
    let mut rng = Rng::new(11);
    let stock = StockCode::from_text("CEA").unwrap();
    (0..n)
        .map(|i| {
            let side = if rng.below(2) == 0 { Side::Buy } else { Side::Sell };
            let token = Token::from_text(&format!("j{i}")).unwrap();
            let account = AccountId::new(rng.below(3_000) as u32);
            let order = NewOrder::limit(
                UserId::new(0),
                token,
                account,
                side,
                1 + rng.below(20) as u32,
                stock,
                7_440 + rng.below(40) as u32,
            );
            Command::NewOrder(order)
        })
        .collect()
}

struct Nothing;

impl Publisher for Nothing {
    fn publish(&mut self, _now: Timestamp, events: &[Event]) {
        black_box(events);
    }
}

fn group_commit(c: &mut Criterion) {
    let batch = commands(4_096);
    let tmp = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(batch.len() as u64));
    let mut writer =
        JournalWriter::open(tmp.path(), 20_261_124, FsyncMode::Batch, carbonx_soup::files::FileModes::default())
            .unwrap();
    let mut seq = 0;
    group.bench_function("group commit of 4,096 orders with fdatasync", |b| {
        b.iter(|| {
            for command in &batch {
                seq += 1;
                writer.append(&Record {
                    seq: Seq::new(seq),
                    timestamp: Timestamp::from_nanos(seq),
                    command: command.clone(),
                });
            }
            writer.commit().unwrap();
        });
    });
    group.finish();
}

fn engine() -> Engine {
    carbonx::config::Config::demo().build_engine(Path::new(".")).unwrap()
}

fn replay(c: &mut Criterion) {
    let day = commands(200_000);
    let tmp = tempfile::tempdir().unwrap();
    let mut live = Sequencer::new(engine(), Nothing, Some(tmp.path().into()), FsyncMode::Never);
    for chunk in day.chunks(4_096) {
        live.process(chunk, &carbonx::serve::sequencer::SystemClock).unwrap();
    }
    drop(live);
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(day.len() as u64));
    group.sample_size(10);
    group.bench_function("replay 200,000 orders (read, checksum, decode, apply)", |b| {
        b.iter_batched(
            || Sequencer::new(engine(), Nothing, Some(tmp.path().into()), FsyncMode::Never),
            |mut sequencer| {
                black_box(sequencer.replay_journal(carbonx::serve::journal_file::TornTail::Keep).unwrap());
                sequencer // dropped after the clock stops: a replay ends in a running exchange
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// A day's state: the demo accounts and the book the orders left resting.
fn busy_engine() -> Engine {
    let mut engine = engine();
    let mut out = Vec::new();
    for (i, command) in commands(60_000).iter().enumerate() {
        out.clear();
        engine.apply(command, Timestamp::from_nanos(1 + i as u64), &mut out);
    }
    engine
}

fn snapshot(c: &mut Criterion) {
    let engine = busy_engine();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bench.snap");
    let file = |engine: &Engine| carbonx::serve::snapshot_file::SnapshotFile {
        journal_date: 20261124,
        next_seq: 1,
        last_ts: 0,
        kind: carbonx::serve::snapshot_file::START_OF_DAY.into(),
        taken: Vec::new(),
        engine: engine.snapshot(),
    };
    carbonx::serve::snapshot_file::write(&path, &file(&engine), carbonx_soup::files::FileModes::default()).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("snapshot of {} resting orders and 3,400 accounts: {bytes} bytes", engine.resting_count());
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("take and write (fsync) a busy day's snapshot", |b| {
        b.iter(|| {
            carbonx::serve::snapshot_file::write(
                &path,
                &file(black_box(&engine)),
                carbonx_soup::files::FileModes::default(),
            )
            .unwrap()
        });
    });
    let config = engine.config().clone();
    group.bench_function("read, check and restore it", |b| {
        b.iter(|| {
            let read = carbonx::serve::snapshot_file::read(&path).unwrap();
            black_box(Engine::restore(config.clone(), &read.engine).unwrap())
        });
    });
    group.finish();
}

/// A busy day's tokens: 16 users, sequential tokens each.
fn day_tokens(n: usize) -> Vec<(UserId, Token)> {
    (0..n).map(|i| (UserId::new((i % 16) as u16), Token::from_text(&format!("T{:012}", i / 16)).unwrap())).collect()
}

/// Total time and longest single insert of `tokens` into a set.
fn insert_all(tokens: &[(UserId, Token)], mut insert: impl FnMut(UserId, &Token)) -> (Duration, Duration) {
    let (start, mut longest) = (Instant::now(), Duration::ZERO);
    for (user, token) in tokens {
        let one = Instant::now();
        insert(*user, token);
        longest = longest.max(one.elapsed());
    }
    (start.elapsed(), longest)
}

fn taken_tokens(c: &mut Criterion) {
    let busy = day_tokens(3_000_000);
    let mut ours = TakenTokens::new();
    let mut growing: FxHashSet<(UserId, Token)> = FxHashSet::default();
    let mut reserved: FxHashSet<(UserId, Token)> = FxHashSet::with_capacity_and_hasher(1 << 21, Default::default());
    for (name, (total, longest)) in [
        ("TakenTokens (incremental doubling)", insert_all(&busy, |u, t| _ = ours.insert(u, t))),
        ("FxHashSet, growing", insert_all(&busy, |u, t| _ = growing.insert((u, *t)))),
        ("FxHashSet, reserved for 2 M", insert_all(&busy, |u, t| _ = reserved.insert((u, *t)))),
    ] {
        println!("3,000,000 tokens into {name}: {total:.2?} in all, longest single insert {longest:.2?}");
    }
    let day = day_tokens(200_000);
    let mut group = c.benchmark_group("taken tokens");
    group.throughput(Throughput::Elements(day.len() as u64));
    group.sample_size(10);
    group.bench_function("200,000 checks and inserts: TakenTokens", |b| {
        b.iter_batched(
            TakenTokens::new,
            |mut set| {
                for (user, token) in &day {
                    if !set.contains(*user, token) {
                        set.insert(*user, token);
                    }
                }
                set
            },
            BatchSize::PerIteration,
        );
    });
    let sets = [("FxHashSet, growing", 0), ("FxHashSet, reserved for 2 M", 1 << 21)];
    for (name, reserve) in sets {
        group.bench_function(format!("200,000 checks and inserts: {name}"), |b| {
            b.iter_batched(
                || FxHashSet::with_capacity_and_hasher(reserve, Default::default()),
                |mut set| {
                    for pair in &day {
                        if !set.contains(pair) {
                            set.insert(*pair);
                        }
                    }
                    set
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::group_commit, super::replay, super::snapshot, super::taken_tokens);
}
criterion_main!(group::benches);
