//! Per-message cost of the feed's hot path: ITCH encode of Add Order and
//! Order Executed, and packing one Add Order into a MoldUDP64 datagram.
//! Goal: encode under 15 ns per message.

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
    criterion::criterion_group!(benches, super::encode, super::pack, super::decode);
}
criterion_main!(group::benches);
