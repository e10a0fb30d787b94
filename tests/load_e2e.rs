//! `carbonx load` end to end: a short open-loop run against an in-process
//! server; the counts must add up and the outputs must be written and well formed.

use carbonx::config::Config;
use carbonx::serve::journal_file::FsyncMode;
use carbonx::serve::{ServeOptions, Server};
use carbonx::tools::load::{LoadOptions, run};
use std::time::Duration;

#[test]
fn a_short_load_accounts_for_every_message_and_writes_its_outputs() {
    let config = Config::demo().on_free_ports();
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { data_dir: dir.path().join("data"), fsync: FsyncMode::Batch, config_dir: ".".into() };
    let server = Server::start(&config, &options).unwrap();
    let load = LoadOptions {
        connect: server.order_entry_addr(),
        users: vec!["DEMO01".into(), "DEMO02".into()],
        password: "demo".into(),
        rate: Some(4_000),
        in_flight: 64,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(300),
        seed: 7,
        progress: false,
        tls: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(run(&load)).unwrap();
    let (sent, answers) = (report.sent, report.answers);
    assert!(sent.orders > 3_000, "{sent:?}");
    assert_eq!(report.unanswered(), 0, "{report}");
    assert_eq!(sent.orders + sent.replaces, answers.accepted + answers.replaced + answers.rejected, "{report}");
    assert_eq!(sent.cancels, answers.cancelled_by_user + answers.cancel_rejects, "{report}");
    assert_eq!(answers.fills_maker, answers.fills_taker, "both sides of every listing fill");
    assert!(answers.fills_taker > 0 && answers.fills_block % 2 == 0, "{report}");
    assert_eq!(report.rejects.values().sum::<u64>(), answers.rejected);
    assert!(report.accepted.len() > 1_000 && !report.ping.is_empty());
    assert!((report.throughput() - 4_000.0).abs() < 400.0, "throughput {}", report.throughput());
    let out = dir.path().join("out");
    let written = report.write_outputs(&out, "t-").unwrap();
    assert_eq!(written.len(), 4);
    let hgrm = std::fs::read_to_string(out.join("t-accepted.hgrm")).unwrap();
    assert!(hgrm.contains("Percentile") && hgrm.contains("Total count"), "{hgrm}");
    for svg in ["t-latency.svg", "t-throughput.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{svg}");
    }
    let json = report.to_json();
    assert!(json.starts_with('{') && json.ends_with('}') && json.contains("\"unanswered\":0"), "{json}");
    assert_eq!(json.matches('{').count(), json.matches('}').count());
    // A second run the same day (a ladder's next step, or an operator
    // running the load again) must not reuse the first run's tokens: the
    // server would ignore those orders as resends and they would go unanswered.
    let closed_loop = LoadOptions { rate: None, duration: Duration::from_millis(500), ..load };
    let again = runtime.block_on(run(&closed_loop)).unwrap();
    assert!(again.sent.orders > 100, "{again}");
    assert_eq!(again.unanswered(), 0, "{again}");
    drop(runtime);
    server.shutdown().unwrap();
}
