//! The `carbonx admin` binary against a test server.

use carbonx::serve::Server;
use std::process::Command;
use std::str::FromStr;

/// The value of the sample `name` (with its labels, if any) in `/metrics`
/// text, if that line is there and its value parses as a `T`.
pub fn sample<T: FromStr>(text: &str, name: &str) -> Option<T> {
    let line = text.lines().find(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// Runs `carbonx admin --url <server's admin endpoint> <args>` with the
/// demo token: (exit code, stdout, stderr).
pub fn cli(server: &Server, args: &[&str]) -> (i32, String, String) {
    let url = format!("http://{}", server.admin_addr().expect("the admin endpoint runs"));
    let out = Command::new(env!("CARGO_BIN_EXE_carbonx"))
        .args(["admin", "--url", &url])
        .args(args)
        .env("CARBONX_ADMIN_TOKEN", carbonx::config::DEMO_ADMIN_TOKEN)
        .output()
        .expect("the carbonx binary runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}
