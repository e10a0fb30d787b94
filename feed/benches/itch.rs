//! Per-message cost of the feed's hot path: ITCH encode of Add Order and
//! Order Executed, and packing one Add Order into a MoldUDP64 datagram
//! (goal: encode under 15 ns per message); and the book builder applying a
//! realistic stream (goal: at least 20,000,000 messages per second).

use std::hint::black_box;

use carbonx_feed::itch::{AddOrder, Header, MESSAGE_LEN_MAX, Message, OrderExecuted};
use carbonx_feed::moldudp::Packer;
use criterion::{Criterion, criterion_main};

const T_OPEN: u64 = 34_200_000_000_123;

fn add_order() -> AddOrder {
    AddOrder {
        header: Header::new(6, T_OPEN),
        order_ref: 1234,
        side: b'B',
        shares: 1000,
        stock: *b"CEA25   ",
        price: 746_300,
    }
}

fn encode(c: &mut Criterion) {
    let mut buf = [0u8; MESSAGE_LEN_MAX];
    let add = add_order();
    c.bench_function("itch encode Add Order", |b| {
        b.iter(|| black_box(black_box(&add).encode(black_box(&mut buf))));
    });
    let executed = OrderExecuted { header: Header::new(6, T_OPEN), order_ref: 1234, shares: 400, match_number: 7 };
    c.bench_function("itch encode Order Executed", |b| {
        b.iter(|| black_box(black_box(&executed).encode(black_box(&mut buf))));
    });
    let message = Message::from(add);
    c.bench_function("itch encode Message::AddOrder", |b| {
        b.iter(|| black_box(black_box(&message).encode(black_box(&mut buf))));
    });
}

fn pack(c: &mut Criterion) {
    let message = Message::from(add_order());
    let mut packer = Packer::new(*b"CX20250102", 1);
    c.bench_function("moldudp64 pack one Add Order", |b| {
        b.iter(|| {
            packer.clear();
            let sequence = packer.push_itch(black_box(&message));
            black_box(packer.datagram());
            black_box(sequence)
        });
    });
}

fn decode(c: &mut Criterion) {
    let mut buf = [0u8; MESSAGE_LEN_MAX];
    let len = Message::from(add_order()).encode(&mut buf);
    c.bench_function("itch decode Add Order", |b| {
        b.iter(|| black_box(Message::decode(black_box(&buf[..len]))));
    });
}

/// The group `main` runs (in a private module: the macro's `pub fn` has no
/// doc comment).
mod group {
    criterion::criterion_group!(benches, super::encode, super::pack, super::decode, super::book);
}

/// 100,000 messages: adds over 20 levels a side, executions, cancels,
/// deletes and replaces, keeping about 2,000 orders live.
fn book_stream() -> Vec<Message> {
    use carbonx_feed::itch::{OrderCancel, OrderDelete, OrderReplace};
    let mut messages = Vec::with_capacity(100_000);
    let mut live: Vec<u64> = Vec::new();
    let (mut next_ref, mut state) = (1u64, 0x2545_F491_4F6C_DD1Du64);
    let header = Header::new(1, T_OPEN);
    for _ in 0..100_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pick = (state >> 32) as usize % live.len().max(1);
        let message = match state % 10 {
            0..=4 => {
                let side = if state & 1 == 0 { b'B' } else { b'S' };
                let price = if side == b'B' { 740_000 } else { 750_000 } + ((state >> 8) % 20) as u32 * 100;
                live.push(next_ref);
                next_ref += 1;
                Message::from(AddOrder {
                    header,
                    order_ref: next_ref - 1,
                    side,
                    shares: 100,
                    stock: *b"CEA     ",
                    price,
                })
            }
            _ if live.is_empty() => continue,
            5 => Message::from(OrderExecuted { header, order_ref: live[pick], shares: 10, match_number: 1 }),
            6 => Message::from(OrderCancel { header, order_ref: live[pick], shares: 10 }),
            7 | 8 => Message::from(OrderDelete { header, order_ref: live.swap_remove(pick) }),
            _ => {
                let original_ref = live[pick];
                live[pick] = next_ref;
                next_ref += 1;
                Message::from(OrderReplace { header, original_ref, new_ref: next_ref - 1, shares: 50, price: 745_000 })
            }
        };
        messages.push(message);
    }
    messages
}

fn book(c: &mut Criterion) {
    use carbonx_feed::book::BookBuilder;
    let stream = book_stream();
    let mut group = c.benchmark_group("book builder");
    group.throughput(criterion::Throughput::Elements(stream.len() as u64));
    group.bench_function("apply 100k messages", |b| {
        b.iter(|| {
            let mut book = BookBuilder::new();
            for (i, m) in stream.iter().enumerate() {
                let _ = book.apply(i as u64 + 1, m);
            }
            black_box(book.top(1, b'B', 5))
        });
    });
    group.finish();
}
criterion_main!(group::benches);
