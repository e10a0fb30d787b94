//! Places one limit order on a running carbonx and prints every reply.
//!
//! Start the demo market first (`cargo run --release -- serve`), then:
//!
//! ```sh
//! cargo run --example place_order -- BUY 100 CEA 74.50 0001
//! cargo run --example place_order -- SELL 40 CEA 74.50 0341 --user DEMO02
//! ```
//!
//! Arguments: side (`BUY` or `SELL`), tonnes, instrument, price in yuan,
//! trading account; then optionally `--user NAME` (default `DEMO01`; each
//! demo user trades its own 340 accounts, docs/RULES.md §13), `--password`
//! (default `demo`), `--token` (default: one made from the clock, so that a
//! second run is a new order) and `--connect ADDR` (default 127.0.0.1:7001).
//! It logs in for new messages only, sends the order, and prints the
//! replies (Accepted, Executed, Canceled or Rejected) until the order has
//! been answered and one second passes without another message.

use carbonx_gateway::client::{Client, Received};
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

/// How long to keep printing after the last reply.
const QUIET: Duration = Duration::from_secs(1);

/// What the command line asks for.
struct Order {
    side: u8,
    shares: u32,
    stock: String,
    price: u32,
    account: String,
    user: String,
    password: String,
    token: String,
    connect: String,
}

fn main() -> ExitCode {
    let order = match parse(std::env::args().skip(1).collect()) {
        Ok(order) => order,
        Err(message) => {
            eprintln!(
                "place_order: {message}\nusage: place_order BUY|SELL TONNES STOCK PRICE ACCOUNT [--user U] [--password P] [--token T] [--connect ADDR]"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(place(&order)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("place_order: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs in, sends the order and prints the replies.
async fn place(order: &Order) -> Result<(), Box<dyn Error>> {
    let addr = order.connect.parse().map_err(|e| format!("--connect {}: {e}", order.connect))?;
    let mut client = Client::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    match client.login(&order.user, &order.password, "", 0).await? {
        Received::LoginAccepted { session, sequence } => {
            println!("logged in as {} to session {}, next message {sequence}", order.user, text(&session));
        }
        other => return Err(format!("login refused: {other:?}").into()),
    }
    let enter = EnterOrder::limit(&order.token, order.side, order.shares, &order.stock, order.price, &order.account);
    client.send(&Inbound::Enter(enter)).await?;
    println!("sent order {}", order.token);
    let mut answered = false;
    loop {
        let wait = if answered { QUIET } else { Duration::from_secs(5) };
        match client.next_message(wait).await {
            Ok((sequence, message)) => {
                answered |= !matches!(message, Outbound::SystemEvent { .. });
                println!("{sequence:>6} {}", describe(&message));
            }
            Err(_) if answered => return Ok(()),
            Err(e) => return Err(format!("no answer to the order: {e}").into()),
        }
    }
}

/// One line per reply, the letters as PROTOCOL §5 names them.
fn describe(message: &Outbound) -> String {
    match message {
        Outbound::Accepted(a) => {
            format!("Accepted  {} order reference {} price {}", text(&a.token), a.order_ref, yuan(a.price))
        }
        Outbound::Executed(e) => format!(
            "Executed  {} {} t at {} match {} ({})",
            text(&e.token),
            e.shares,
            yuan(e.price),
            e.match_number,
            char::from(e.liquidity)
        ),
        Outbound::Canceled { token, decrement, reason, .. } => {
            format!("Canceled  {} {decrement} t, reason {}", text(token), char::from(*reason))
        }
        Outbound::Rejected { token, reason, .. } => {
            format!("Rejected  {}, reason {}", text(token), char::from(*reason))
        }
        other => format!("{other:?}"),
    }
}

fn parse(args: Vec<String>) -> Result<Order, Box<dyn Error>> {
    let [side, shares, stock, price, account, options @ ..] = args.as_slice() else {
        return Err("five arguments are needed".into());
    };
    let side = match side.to_ascii_uppercase().as_str() {
        "BUY" | "B" => b'B',
        "SELL" | "S" => b'S',
        other => return Err(format!("side {other:?}: BUY or SELL").into()),
    };
    let shares = shares.parse().map_err(|_| format!("tonnes {shares:?}: a whole number"))?;
    let mut order = Order {
        side,
        shares,
        stock: stock.clone(),
        price: price_field(price)?,
        account: account.clone(),
        user: "DEMO01".into(),
        password: "demo".into(),
        token: clock_token(),
        connect: "127.0.0.1:7001".into(),
    };
    for pair in options.chunks(2) {
        let [name, value] = pair else { return Err(format!("{} needs a value", pair[0]).into()) };
        match name.as_str() {
            "--user" => order.user.clone_from(value),
            "--password" => order.password.clone_from(value),
            "--token" => order.token.clone_from(value),
            "--connect" => order.connect.clone_from(value),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(order)
}

/// Yuan with up to two decimals to the OUCH price field (4 implied decimals).
fn price_field(text: &str) -> Result<u32, Box<dyn Error>> {
    let bad = || format!("price {text:?}: yuan with at most two decimals, such as 74.50");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad().into());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let fen: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole.checked_mul(100).and_then(|f| f.checked_add(fen)).and_then(|f| f.checked_mul(100)).ok_or_else(|| bad().into())
}

fn yuan(price: u32) -> String {
    if price == 0x7FFF_FFFF { "market".into() } else { format!("{}.{:02}", price / 10_000, price % 10_000 / 100) }
}

/// A token from the clock: `P` and the milliseconds of the day, unique enough for a person typing.
fn clock_token() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("P{}", now.as_millis() % 86_400_000)
}

fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).trim_end().to_string()
}
