//! A first end-to-end look at the engine through its public API.
use carbonx_engine::*;

#[test]
fn a_cross_trades_at_the_resting_price() {
    let mut engine = Engine::new(EngineConfig::demo()).unwrap();
    let mut out = Vec::new();
    let now = Timestamp::from_nanos(1);
    engine.apply(&Command::demo_order("s1", 1, Side::Sell, 10, 7_500), now, &mut out);
    engine.apply(&Command::demo_order("b1", 2, Side::Buy, 4, 7_600), now, &mut out);
    engine.check_invariants();
    let fills: Vec<_> = out.iter().filter_map(|e| if let Event::Executed(x) = e { Some(*x) } else { None }).collect();
    assert_eq!(fills.len(), 1);
    assert_eq!((fills[0].price.fen(), fills[0].qty.tonnes()), (7_500, 4));
    let asks: Vec<_> = engine.depth(InstrumentId::new(0), Side::Sell, 5).collect();
    assert_eq!(asks[0].qty, 6);
    for e in &out {
        println!("{e:?}");
    }
}
