//! Runs a Python script of the test virtual environment (`CARBONX_PYTHON`,
//! set by `scripts/test.sh`) with text on its standard input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `script` (`python -c`) with `stdin` as its input and waits for it.
///
/// # Panics
/// If `CARBONX_PYTHON` is not set (the tests fail, not skip, without it) or
/// the interpreter cannot be started.
pub fn run(script: &str, stdin: &str) -> Output {
    let python = std::env::var("CARBONX_PYTHON")
        .expect("CARBONX_PYTHON is not set: run scripts/test.sh, which installs prometheus-client in .venv-test");
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test virtual environment's python starts");
    child.stdin.take().expect("a piped stdin").write_all(stdin.as_bytes()).expect("python reads its input");
    child.wait_with_output().expect("python ends")
}
