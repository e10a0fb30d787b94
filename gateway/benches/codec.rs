//! Codec cost per message: decode and encode of Enter Order and Executed
//! (goal: under 20 ns each). `cargo bench -p carbonx-gateway --bench codec`.

use carbonx_gateway::ouch::{EnterOrder, Executed, Inbound, Outbound};
use criterion::{Criterion, criterion_main};
use std::hint::black_box;

fn enter() -> EnterOrder {
    EnterOrder::limit("ORD00000000001", b'B', 10, "CEA", 746_300, "0001")
}

fn executed() -> Outbound {
    Outbound::Executed(Executed {
        timestamp: 36_000_000_000_000,
        token: *b"ORD00000000001",
        shares: 10,
        price: 746_300,
        liquidity: b'A',
        match_number: 12_345,
    })
}

fn codec(c: &mut Criterion) {
    let wire = enter().encode();
    c.bench_function("ouch/enter_order/decode", |b| b.iter(|| Inbound::decode(black_box(&wire))));
    c.bench_function("ouch/enter_order/encode", |b| b.iter(|| black_box(enter()).encode()));
    let mut out = Vec::with_capacity(64);
    let mut executed_wire = Vec::new();
    executed().encode_into(&mut executed_wire);
    let Outbound::Executed(fill) = executed() else { unreachable!() };
    c.bench_function("ouch/executed/encode", |b| b.iter(|| black_box(fill).encode()));
    c.bench_function("ouch/executed/encode_into_vec", |b| {
        b.iter(|| {
            out.clear();
            black_box(executed()).encode_into(&mut out);
            out.len()
        })
    });
    c.bench_function("ouch/executed/decode", |b| b.iter(|| Outbound::decode(black_box(&executed_wire))));
}

// criterion's macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::codec);
}
criterion_main!(group::benches);
