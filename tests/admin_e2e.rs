//! The operator's side end to end: a whole server in-process, the admin
//! endpoint over real HTTP (the library client and the `carbonx admin`
//! binary), order entry over SoupBinTCP/OUCH and the ITCH TCP feed. Each
//! command's effect is checked where a broker and a market maker see it,
//! and again after a restart. Every wait is bounded.

mod support;
use carbonx::admin::client::{AdminAction, AdminClient, AdminError};
use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx_feed::book::BookBuilder;
use carbonx_feed::watch::Follower;
use carbonx_gateway::client::Client;
use carbonx_gateway::ouch::{EnterOrder, Inbound, Outbound};
use std::path::Path;
use std::time::Duration;
use support::admin::cli;
use support::session::{login, try_login};

const WAIT: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::demo().on_free_ports()
}

fn start(dir: &Path) -> Server {
    let options = ServeOptions { data_dir: dir.to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    Server::start(&config(), &options).unwrap()
}

fn admin(server: &Server) -> AdminClient {
    AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), carbonx::config::DEMO_ADMIN_TOKEN)
}

fn order(token: &str, side: u8, shares: u32, price: u32, firm: &str) -> Inbound {
    Inbound::Enter(EnterOrder::limit(token, side, shares, "CEA", price, firm))
}

/// Logs in and also returns the trading day of the session (`CX` + `YYYYMMDD`),
/// the name of that day's end-of-day directory.
async fn login_to_day(server: &Server, user: &str) -> (Client, String) {
    let (client, session) = try_login(server.order_entry_addr(), user, "demo", 0).await.expect("login refused");
    (client, String::from_utf8_lossy(&session[2..]).trim().to_string())
}

/// The next sequenced message that is not a System Event.
async fn next(client: &mut Client) -> Outbound {
    loop {
        let (_, message) = client.next_message(WAIT).await.unwrap();
        if !matches!(message, Outbound::SystemEvent { .. }) {
            return message;
        }
    }
}

async fn reject_reason(client: &mut Client, message: Inbound) -> Option<u8> {
    client.send(&message).await.unwrap();
    match next(client).await {
        Outbound::Rejected { reason, .. } => Some(reason),
        Outbound::Accepted { .. } => None,
        other => panic!("unexpected {other:?}"),
    }
}

/// Polls the feed until `done` holds or the time is up.
async fn follow_until(follower: &mut Follower, done: impl Fn(&BookBuilder) -> bool) -> bool {
    for _ in 0..100 {
        if done(&follower.book) {
            return true;
        }
        follower.poll(Duration::from_millis(50)).await.unwrap();
    }
    done(&follower.book)
}

#[test]
fn halt_kill_switch_and_deposit_take_effect_on_order_entry_and_the_feed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut follower = Follower::start(server.tcp_feed_addr().unwrap(), BookBuilder::new()).await.unwrap();
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        // Halt through the CLI: new CEA orders are rejected H, the feed says H.
        let (code, out, err) = cli(&server, &["halt", "CEA"]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("\"halted\""), "{out}");
        assert_eq!(reject_reason(&mut client, order("H1", b'B', 10, 740_000, "0001")).await, Some(b'H'));
        assert!(follow_until(&mut follower, |b| b.state(1) == Some(b'H')).await, "no ITCH H halted");
        let (code, _, err) = cli(&server, &["halt", "CEA"]);
        assert_eq!(code, 1, "halting twice must be refused");
        assert!(err.contains("already halted"), "{err}");
        let (code, _, err) = cli(&server, &["halt", "NOPE"]);
        assert!(code == 1 && err.contains("no instrument NOPE"), "{code} {err}");
        // Resume, then the kill switch cancels every order of 0002 (S).
        assert_eq!(cli(&server, &["resume", "CEA"]).0, 0);
        assert!(follow_until(&mut follower, |b| b.state(1) == Some(b'T')).await, "no ITCH T after resume");
        for n in 0..3 {
            let token = format!("K{n}");
            assert_eq!(reject_reason(&mut client, order(&token, b'B', 10, 700_000 + n * 100, "0002")).await, None);
        }
        assert_eq!(reject_reason(&mut client, order("K9", b'B', 10, 700_000, "0003")).await, None);
        let (code, out, _) = cli(&server, &["kill", "0002"]);
        assert_eq!(code, 0);
        assert!(out.contains("\"cancelled\": 3"), "{out}");
        for _ in 0..3 {
            match next(&mut client).await {
                Outbound::Canceled { reason, .. } => assert_eq!(reason, b'S'),
                other => panic!("expected Canceled S, got {other:?}"),
            }
        }
        assert!(follow_until(&mut follower, |b| b.orders().len() == 1).await, "the feed still shows killed orders");
        // Withdraw nearly all of 0004's cash: a buy is rejected n; a deposit makes it fit.
        let admin = admin(&server);
        let withdraw =
            AdminAction::Withdraw { account: "0004".into(), asset: "cash".into(), amount: "99999000".into() };
        admin.run(&withdraw).unwrap();
        let too_much = AdminAction::Withdraw { account: "0004".into(), asset: "cash".into(), amount: "1000.01".into() };
        assert!(matches!(admin.run(&too_much), Err(AdminError::Refused { status: 409, .. })));
        assert_eq!(reject_reason(&mut client, order("D1", b'B', 100, 746_300, "0004")).await, Some(b'n'));
        let (code, out, err) = cli(&server, &["deposit", "0004", "cash", "10000"]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(reject_reason(&mut client, order("D2", b'B', 100, 746_300, "0004")).await, None);
        // A bad token is refused before anything happens.
        let wrong = AdminClient::new(&format!("http://{}", server.admin_addr().unwrap()), "wrong");
        assert!(matches!(wrong.run(&AdminAction::Roll), Err(AdminError::Refused { status: 401, .. })));
        // Halt again so that the restart has a halt to keep.
        admin.run(&AdminAction::Halt { stock: "CCER".into() }).unwrap();
    });
    server.shutdown().unwrap();
    let server = start(dir.path());
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        let ccer = Inbound::Enter(EnterOrder::limit("R1", b'B', 10, "CCER", 700_000, "0001"));
        assert_eq!(reject_reason(&mut client, ccer).await, Some(b'H'), "the halt did not survive");
        // 0004: 1,000 + 10,000 yuan, 7,463 locked by D2, 3,537 available:
        // 50 t at 74.63 (3,731.50) is n, 40 t (2,985.20) fits.
        assert_eq!(reject_reason(&mut client, order("R2", b'B', 50, 746_300, "0004")).await, Some(b'n'));
        assert_eq!(reject_reason(&mut client, order("R3", b'B', 40, 746_300, "0004")).await, None);
    });
    let book = admin(&server).run(&AdminAction::Book { stock: "CEA".into(), levels: 10 }).unwrap();
    assert!(book.contains("74.63") && book.contains("70.00") && !book.contains("70.01"), "{book}");
    let engine = server.shutdown().unwrap();
    let cash = engine.accounts().unwrap().cash(carbonx_engine::AccountId::new(3)).unwrap();
    assert_eq!((cash.available, cash.locked), (1_100_000 - 746_300 - 298_520, 746_300 + 298_520));
}

#[test]
fn the_roll_writes_end_of_day_files_and_sessions_and_disconnect_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let admin = admin(&server);
    runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        assert_eq!(reject_reason(&mut client, order("S1", b'S', 40, 746_300, "0001")).await, None);
        assert_eq!(reject_reason(&mut client, order("B1", b'B', 40, 746_300, "0002")).await, None);
        let sessions = admin.run(&AdminAction::Sessions).unwrap();
        assert!(sessions.contains("\"connected\": true"), "{sessions}");
        admin.run(&AdminAction::Disconnect { user: "DEMO01".into() }).unwrap();
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                if client.next_message(WAIT).await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the connection was not closed");
    });
    assert!(matches!(
        admin.run(&AdminAction::Disconnect { user: "DEMO01".into() }),
        Err(AdminError::Refused { status: 409, .. })
    ));
    let (code, out, err) = cli(&server, &["roll"]);
    assert_eq!(code, 0, "{out}{err}");
    server.shutdown().unwrap();
    let days: Vec<_> = std::fs::read_dir(dir.path().join("eod")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(days.len(), 2, "{days:?}: the rolled day and the new one");
    let day = days.iter().find(|d| d.join("positions.csv").exists()).expect("no positions.csv");
    let trades = std::fs::read_to_string(day.join("trades.csv")).unwrap();
    let lines: Vec<&str> = trades.lines().collect();
    assert_eq!(
        lines[0],
        "match,timestamp_ns,instrument,method,price_yuan,qty_t,buy_account,sell_account,buy_order,sell_order,aggressor"
    );
    assert_eq!(lines.len(), 2, "{trades}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        (fields[2], fields[3], fields[4], fields[5], fields[6], fields[7]),
        ("CEA", "listing", "74.63", "40", "0002", "0001")
    );
    let positions = std::fs::read_to_string(day.join("positions.csv")).unwrap();
    assert!(positions.starts_with("account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER\n"), "{positions}");
    assert!(positions.contains("\n0001,100002985.20,1999960,"), "{positions}");
    assert!(positions.contains("\n0002,99997014.80,2000040,"), "{positions}");
    assert_eq!(positions.lines().count(), 3_401);
    let stats = std::fs::read_to_string(day.join("statistics.csv")).unwrap();
    assert!(stats.contains(",CEA,listing,74.63,74.63,74.63,74.63,40,2985.20,1\n"), "{stats}");
    assert_eq!(stats.lines().count(), 1 + 7 * 3, "{stats}");
    // The positions load as an accounts file.
    let codes = ["CEA", "CEA21", "CEA22", "CEA23", "CEA24", "CEA25", "CCER"];
    let table = carbonx_engine::accounts::AccountTable::from_csv(&positions, &codes).unwrap();
    assert_eq!(table.len(), 3_400);
}

/// One sample's value from Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    support::admin::sample(text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn metrics_parse_as_openmetrics_and_count_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (orders, rejects) = (200u32, 20u32);
    let connected = runtime.block_on(async {
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        for n in 0..orders {
            // Every tenth is outside the band: rejected K.
            let price = if n % 10 == 0 { 900_000 } else { 700_000 + (n % 50) * 100 };
            client.queue(&order(&format!("M{n}"), b'B', 1, price, "0001"));
        }
        client.flush().await.unwrap();
        let mut answered = 0;
        while answered < orders {
            let (_, message) = client.next_message(WAIT).await.unwrap();
            answered += u32::from(matches!(message, Outbound::Accepted { .. } | Outbound::Rejected { .. }));
        }
        client // still logged in while the metrics are scraped
    });
    // The feed thread publishes on its own time: scrape until it has caught up (bounded).
    let feed_caught_up = |text: &str| metric(text, "carbonx_feed_next_sequence") > f64::from(orders - rejects);
    let mut text = admin(&server).run(&AdminAction::Metrics).unwrap();
    for _ in 0..100 {
        if feed_caught_up(&text) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        text = admin(&server).run(&AdminAction::Metrics).unwrap();
    }
    drop(connected);
    server.shutdown().unwrap();
    let sample = |name: &str| metric(&text, name);
    assert_eq!(sample("carbonx_gateway_messages_in_total{type=\"O\"}"), f64::from(orders));
    assert_eq!(sample("carbonx_gateway_messages_out_total{type=\"A\"}"), f64::from(orders - rejects));
    assert_eq!(sample("carbonx_gateway_messages_out_total{type=\"J\"}"), f64::from(rejects));
    assert_eq!(sample("carbonx_gateway_rejects_total{reason=\"K\"}"), f64::from(rejects));
    assert_eq!(sample("carbonx_gateway_sessions_connected"), 1.0);
    assert!(sample("carbonx_sequencer_commands_total") >= f64::from(orders));
    assert!(sample("carbonx_journal_batch_commands_count") >= 1.0);
    assert!(sample("carbonx_engine_apply_seconds_count") >= 1.0);
    assert!(sample("carbonx_feed_next_sequence") > f64::from(orders - rejects));
    for name in ["carbonx_queue_commands_depth", "carbonx_queue_order_entry_depth", "carbonx_queue_feed_depth"] {
        sample(name);
    }
    parse_with_prometheus_client(&text);
}

/// The official Python client's OpenMetrics parser must accept the text.
fn parse_with_prometheus_client(text: &str) {
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        families = list(text_string_to_metric_families(sys.stdin.read()))\n\
        print(len(families), sum(len(f.samples) for f in families))\n";
    let out = support::python::run(script, text);
    assert!(out.status.success(), "the OpenMetrics parser refused /metrics: {}", String::from_utf8_lossy(&out.stderr));
    let counts = String::from_utf8_lossy(&out.stdout);
    let families: usize = counts.split_whitespace().next().unwrap().parse().unwrap();
    assert!(families >= 12, "{counts}");
}

/// Parses yuan text (`-12.05`) to fen.
fn fen(text: &str) -> i64 {
    let (sign, digits) = text.strip_prefix('-').map_or((1, text), |rest| (-1, rest));
    sign * carbonx_engine::accounts::parse_yuan_to_fen(digits).unwrap()
}

/// Every data row of a CSV file, split into fields.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
fn end_of_day_files_of_a_seeded_day_reconcile_for_every_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let admin = admin(&server);
    let mut rng = carbonx_testkit::Rng::new(carbonx_testkit::seed("end-of-day day", 2026));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let traded_day = runtime.block_on(async {
        let (mut client, traded_day) = login_to_day(&server, "DEMO01").await;
        let count = 400;
        for n in 0..count {
            let (side, firm) = (if rng.below(2) == 0 { b'B' } else { b'S' }, format!("{:04}", 1 + rng.below(12)));
            let price = 745_000 + 100 * rng.below(30) as u32;
            let shares = 1 + rng.below(500) as u32;
            client.queue(&order(&format!("R{n}"), side, shares, price, &firm));
        }
        client.flush().await.unwrap();
        let mut answered = 0;
        while answered < count {
            let message = next(&mut client).await;
            answered += u32::from(matches!(message, Outbound::Accepted(_) | Outbound::Rejected { .. }));
        }
        traded_day
    });
    for (account, asset, amount) in [("0003", "cash", "1234.56"), ("0007", "CEA", "250"), ("0011", "CCER", "900")] {
        let deposit = AdminAction::Deposit { account: account.into(), asset: asset.into(), amount: amount.into() };
        admin.run(&deposit).unwrap();
    }
    let withdraw = AdminAction::Withdraw { account: "0005".into(), asset: "cash".into(), amount: "99.99".into() };
    admin.run(&withdraw).unwrap();
    admin.run(&AdminAction::Roll).unwrap();
    let engine = server.shutdown().unwrap();
    // The day the orders above traded in, not whichever day directory the
    // file system happens to list first (after the roll there are two).
    let day = dir.path().join("eod").join(&traded_day);
    let codes = ["CEA", "CEA21", "CEA22", "CEA23", "CEA24", "CEA25", "CCER"];
    // Opening: the demo market, 100,000,000.00 yuan and 2,000,000 t of everything.
    let mut expected: std::collections::BTreeMap<String, (i64, Vec<i64>)> =
        (1..=3_400).map(|a| (format!("{a:04}"), (100_000_000 * 100, vec![2_000_000; codes.len()]))).collect();
    let trades = rows(&day.join("trades.csv"));
    assert!(trades.len() > 50, "a seeded day with trades: {}", trades.len());
    for t in &trades {
        let (instrument, price, qty) =
            (codes.iter().position(|c| *c == t[2]).unwrap(), fen(&t[4]), t[5].parse::<i64>().unwrap());
        let buyer = expected.get_mut(&t[6]).unwrap();
        (buyer.0, buyer.1[instrument]) = (buyer.0 - price * qty, buyer.1[instrument] + qty);
        let seller = expected.get_mut(&t[7]).unwrap();
        (seller.0, seller.1[instrument]) = (seller.0 + price * qty, seller.1[instrument] - qty);
    }
    let transfers = rows(&day.join("transfers.csv"));
    assert_eq!(transfers.len(), 4);
    for t in &transfers {
        let account = expected.get_mut(&t[2]).unwrap();
        match t[3].as_str() {
            "cash" => account.0 += fen(&t[4]),
            code => account.1[codes.iter().position(|c| *c == code).unwrap()] += t[4].parse::<i64>().unwrap(),
        }
    }
    let positions = rows(&day.join("positions.csv"));
    assert_eq!(positions.len(), 3_400);
    for p in &positions {
        let holdings: Vec<i64> = p[2..].iter().map(|v| v.parse().unwrap()).collect();
        assert_eq!((fen(&p[1]), holdings), expected[&p[0]], "account {}: opening + trades + transfers", p[0]);
    }
    let cash = engine.accounts().unwrap().cash(carbonx_engine::AccountId::new(2)).unwrap();
    assert_eq!(fen(&positions[2][1]), cash.available + cash.locked, "the file agrees with the engine");
}

#[test]
fn the_start_up_banner_says_which_session_mode_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let text = carbonx::serve::banner(&config(), &server, dir.path());
    assert!(
        text.contains(
            "session mode: ALWAYS-OPEN (demo): the market never closes; \
             the trading day ends only at `carbonx admin roll`"
        ),
        "the demo market's banner must say it never closes:\n{text}"
    );
    let mut calendar = config();
    calendar.market.session = carbonx_engine::SessionMode::Calendar;
    calendar.market.holidays = vec![20261001, 20261002];
    let text = carbonx::serve::banner(&calendar, &server, dir.path());
    assert!(
        text.contains(
            "session mode: calendar: listing 09:30-11:30 and 13:00-15:00, blocks 13:00-15:00 \
             (UTC+08:00), weekdays except 2 holidays; the close at 15:00, the day rolls by itself at 15:30"
        ),
        "a calendar market's banner must print its hours:\n{text}"
    );
    calendar.market.morning_open = carbonx_engine::TimeOfDay::hm(10, 0);
    calendar.market.roll_at = carbonx_engine::TimeOfDay::hms(16, 0, 30).unwrap();
    let text = carbonx::serve::banner(&calendar, &server, dir.path());
    assert!(text.contains("listing 10:00-11:30 and") && text.contains("rolls by itself at 16:00:30"), "{text}");
    assert!(!text.contains("ALWAYS-OPEN"), "{text}");
}

/// One raw HTTP/1.1 GET without a token: the status code and the body.
fn get_without_token(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: carbonx\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

#[test]
fn healthz_and_readyz_answer_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.admin_addr().unwrap();
    let (status, body) = get_without_token(addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    // Server::start returns once the journal is recovered and every listener is open.
    let (status, body) = get_without_token(addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ready"), "{body}");
    // Every other route still needs the token.
    assert_eq!(get_without_token(addr, "/sessions").0, 401);
}

#[test]
fn the_operators_roll_is_refused_in_calendar_mode_where_the_clock_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.market.session = carbonx_engine::SessionMode::Calendar;
    let options = ServeOptions { data_dir: dir.path().to_path_buf(), fsync: FsyncMode::Never, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let (code, out, err) = cli(&server, &["roll"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("the day rolls by itself at market.roll_at"), "{err}");
    assert!(matches!(admin(&server).run(&AdminAction::Roll), Err(AdminError::Refused { status: 409, .. })));
    server.shutdown().unwrap();
    // Nothing was journaled for it: the one journal file holds no roll.
    let journals = carbonx::serve::journal_file::journal_files(dir.path()).unwrap();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let mut reader = carbonx::serve::journal_file::RecordReader::open(&journals[0]).unwrap();
    for _ in 0..100 {
        let Some(record) = reader.next_record().unwrap() else { return };
        assert_ne!(record.command, carbonx_engine::Command::Roll, "a refused roll was journaled");
    }
    panic!("the journal of a server that did nothing holds over 100 records");
}

/// Logs in once the gateway has started trading day `day` (`YYYYMMDD`):
/// right after a roll the previous day's session may still be ending.
async fn login_on_day(server: &Server, user: &str, day: &str) -> Client {
    for _ in 0..100 {
        match try_login(server.order_entry_addr(), user, "demo", 0).await {
            Ok((client, session)) if session.ends_with(day.as_bytes()) => return client,
            Ok(_) | Err(b'S') => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(reason) => panic!("{user}: login rejected {:?}", char::from(reason)),
        }
    }
    panic!("{user}: no session of day {day} within about 2 s");
}

/// The stock code an order entry reply names, for an accepted order.
async fn accepted_stock(client: &mut Client, message: Inbound) -> Result<String, u8> {
    client.send(&message).await.unwrap();
    match next(client).await {
        Outbound::Accepted(a) => Ok(String::from_utf8_lossy(&a.stock).trim_end().to_string()),
        Outbound::Rejected { reason, .. } => Err(reason),
        other => panic!("unexpected {other:?}"),
    }
}

fn enter(token: &str, stock: &str, firm: &str) -> Inbound {
    Inbound::Enter(EnterOrder::limit(token, b'B', 10, stock, 746_300, firm))
}

#[test]
fn an_instrument_listed_and_one_delisted_by_the_operator_take_effect_at_the_roll_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (code, out, err) = cli(&server, &["instrument", "add", "CEA26", "--prev-close", "74.63"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"effective\": \"next roll\"") && out.contains("\"instrument\": \"CEA26\""), "{out}");
    let (code, _, err) = cli(&server, &["instrument", "add", "CEA26", "--prev-close", "80.00"]);
    assert!(code == 1 && err.contains("list CEA26 refused: the code is listed already"), "{code} {err}");
    let (code, _, err) = cli(&server, &["instrument", "add", "CEA27", "--prev-close", "0.001"]);
    assert!(code == 1 && err.contains("prev_close"), "{code} {err}");
    assert_eq!(cli(&server, &["instrument", "delist", "CEA21"]).0, 0);
    let (code, _, err) = cli(&server, &["instrument", "delist", "CEA99"]);
    assert!(code == 1 && err.contains("no listed instrument"), "{code} {err}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Until the roll nothing changes: CEA26 is unknown (S), CEA21 trades.
        let mut client = login(server.order_entry_addr(), "DEMO01", 0).await;
        assert_eq!(accepted_stock(&mut client, enter("P1", "CEA26", "0001")).await, Err(b'S'));
        assert_eq!(accepted_stock(&mut client, enter("P2", "CEA21", "0001")).await.as_deref(), Ok("CEA21"));
    });
    let (code, out, err) = cli(&server, &["roll"]);
    assert_eq!(code, 0, "{out}{err}");
    let rolled: serde_json::Value = serde_json::from_str(&out).unwrap();
    let next_day = rolled["session_date"].as_u64().unwrap().to_string();
    let check_next_day = |server: &Server, token: &str| {
        runtime.block_on(async {
            let mut client = login_on_day(server, "DEMO01", &next_day).await;
            let t1 = format!("{token}1");
            assert_eq!(accepted_stock(&mut client, enter(&t1, "CEA26", "0001")).await.as_deref(), Ok("CEA26"));
            assert_eq!(accepted_stock(&mut client, enter(&format!("{token}2"), "CEA21", "0001")).await, Err(b'S'));
            // The feed's directory and collar carry CEA26 at the next locate, 8.
            let mut follower = Follower::start(server.tcp_feed_addr().unwrap(), BookBuilder::new()).await.unwrap();
            let listed = |b: &BookBuilder| b.instruments().iter().any(|(l, s)| *l == 8 && s == b"CEA26   ");
            assert!(follow_until(&mut follower, listed).await, "no ITCH R for CEA26");
            assert!(follow_until(&mut follower, |b| b.band(8) == Some((746_300, 671_700, 820_900))).await, "no J");
            assert!(follow_until(&mut follower, |b| b.state(2) == Some(b'H')).await, "CEA21 not halted on the feed");
        });
        // The operator names the new instrument like any other.
        let book = admin(server).run(&AdminAction::Book { stock: "CEA26".into(), levels: 5 }).unwrap();
        assert!(book.contains("74.63"), "{book}");
    };
    check_next_day(&server, "A");
    server.shutdown().unwrap();
    let server = start(dir.path());
    check_next_day(&server, "B");
    // The end-of-day files of the day after the listing name CEA26, after the restart too.
    assert_eq!(cli(&server, &["roll"]).0, 0);
    let engine = server.shutdown().unwrap();
    let positions = std::fs::read_to_string(dir.path().join("eod").join(&next_day).join("positions.csv")).unwrap();
    assert!(positions.starts_with("account,cash_yuan,CEA,CEA21,CEA22,CEA23,CEA24,CEA25,CCER,CEA26\n"), "{positions}");
    assert_eq!(engine.instruments().len(), 8);
    let holding =
        engine.accounts().unwrap().holding(carbonx_engine::AccountId::new(1), carbonx_engine::InstrumentId::new(7));
    assert_eq!(holding.map(|h| h.owned()), Some(0), "account 0002 holds none of CEA26");
}
