//! The README's local-mode commands, run as written: the gateway started from a directory
//! with no flags but the port (the README's default store `./taskyard-store` appears there),
//! and each `curl` line answers what its comment says.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEADING: &str = "## Try it as the original services' users knew it (the gateway's local mode)";

fn block() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == HEADING)
        .expect("the README's local-mode heading");
    lines[start..]
        .iter()
        .skip_while(|l| **l != "```sh")
        .skip(1)
        .take_while(|l| **l != "```")
        .map(|l| l.to_string())
        .collect()
}

/// Runs a command line with bash in `dir`.
fn run(dir: &Path, command: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_readme_local_mode_commands_work_as_written() {
    let block = block();
    let (command, calls) = block.split_first().expect("commands in the block");
    assert!(
        command.starts_with("cargo run -p taskyard-gateway -- --local "),
        "{command}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_taskyard-gateway"))
        .args(["--local", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(gateway.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        dir.path().join("taskyard-store").is_dir(),
        "the default store is ./taskyard-store"
    );

    std::fs::write(dir.path().join("report.pdf"), b"%PDF-1.4 a report\n").unwrap();
    let md5 = run(dir.path(), "md5sum report.pdf")[..32].to_string();
    let result = std::panic::catch_unwind(|| {
        for call in calls {
            let (command, want) = call.split_once('#').expect("each call says what it answers");
            let command = command.trim().replace("localhost:9000", &addr);
            let want = want.trim().replace("<md5>", &md5);
            // A result comes once the task ran: ask again for a while, as a user would.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = run(dir.path(), &format!("{command} -s"));
                if got.trim() == want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{command} answers {got:?}, the README says {want:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let _ = gateway.kill();
    let _ = gateway.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
