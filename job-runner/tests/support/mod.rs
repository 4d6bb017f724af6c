//! Test support for the hostile-input suites: a loopback HTTP server whose routes misbehave
//! on purpose, and `job-runner run` started as a user would, with its peak memory measured.
//! Everything listens on 127.0.0.1 only, and every wait is bounded.

#![allow(dead_code)]

pub mod images;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a route answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with a Content-Length.
    Body(&'static str, Bytes),
    /// 200 without a Content-Length (chunked).
    Chunked(&'static str, Bytes),
    /// An empty answer with this status.
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// Headers and a few bytes of a longer body, then silence (30 s at most).
    Stall,
    /// One byte every interval, `total` bytes declared and sent.
    Drip(Duration, usize),
    /// The status line, then one byte of a header every interval, `total` bytes.
    DripHeaders(Duration, usize),
    /// 200 with this Content-Encoding header and body (which the runner must not inflate).
    Encoded(&'static str, Bytes),
    /// A Content-Length that differs from the body sent.
    WrongLength(u64, Bytes),
    /// The connection closed without an answer.
    Reset,
}

pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl Server {
    /// Serves `routes` (by path, without the query) on 127.0.0.1; unknown paths are 404.
    pub async fn start(routes: HashMap<String, Reply>) -> Self {
        Self::start_with(|_| routes).await
    }

    /// Serves the routes `make` builds from the server's port (for redirects to itself).
    pub async fn start_with(make: impl FnOnce(u16) -> HashMap<String, Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(make(addr.port()));
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (routes, counter) = (routes.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(stream, routes, counter)).await;
                });
            }
        });
        Self { addr, task, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    routes: Arc<HashMap<String, Reply>>,
    hits: Arc<Mutex<HashMap<String, u32>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 << 10 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes.get(&path).cloned().unwrap_or(Reply::Status(404));
    let ok = |len: Option<u64>, ct: &str| {
        let length = match len {
            Some(n) => format!("Content-Length: {n}\r\n"),
            None => "Transfer-Encoding: chunked\r\n".to_string(),
        };
        format!("HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\n{length}Connection: close\r\n\r\n")
    };
    match reply {
        Reply::Body(ct, body) => {
            stream.write_all(ok(Some(body.len() as u64), ct).as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Reply::Chunked(ct, body) => {
            stream.write_all(ok(None, ct).as_bytes()).await?;
            for chunk in body.chunks(256 << 10) {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                stream.write_all(chunk).await?;
                stream.write_all(b"\r\n").await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        Reply::Status(code) => {
            let head = format!("HTTP/1.1 {code} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
        }
        Reply::Redirect(to) => {
            let head =
                format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
        }
        Reply::Stall => {
            stream.write_all(ok(Some(1_000_000), "text/html").as_bytes()).await?;
            stream.write_all(b"<html>").await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Drip(every, total) => {
            stream.write_all(ok(Some(total as u64), "text/html").as_bytes()).await?;
            for _ in 0..total {
                stream.write_all(b"x").await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::DripHeaders(every, total) => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ").await?;
            for _ in 0..total {
                stream.write_all(b"x").await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Encoded(encoding, body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Reply::WrongLength(declared, body) => {
            stream.write_all(ok(Some(declared), "image/png").as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        Reply::Reset => {
            // A zero linger makes the close an RST; the socket is closed at once anyway.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            return Ok(());
        }
    }
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// What one `job-runner run` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub status: Value,
    pub stdout_len: usize,
    pub stderr: String,
    /// Peak resident memory of the runner process, in KiB.
    pub peak_rss_kib: u64,
    pub elapsed: Duration,
}

impl Run {
    pub fn reason(&self) -> &str {
        self.status["conditions"][0]["reason"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.status["conditions"][0]["message"].as_str().unwrap_or("")
    }

    pub fn peak_mib(&self) -> u64 {
        self.peak_rss_kib >> 10
    }
}

/// Writes `yaml` beside `store` and runs `job-runner run --store STORE` on it, allowed to
/// fetch from 127.0.0.1 only, with `extra` flags; killed after `limit`.
pub fn run_task(store: &Path, yaml: &str, extra: &[&str], limit: Duration) -> Run {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let task = store.with_extension(format!(
        "{}-{}.yaml",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&task, yaml).unwrap();
    let mut args = vec![
        "run",
        "--store",
        store.to_str().unwrap(),
        "--allow-network",
        "127.0.0.1/32",
    ];
    args.extend_from_slice(extra);
    args.push(task.to_str().unwrap());
    run_measured(&args, limit)
}

/// This checkout's runner, copied once to a private place. The target directory may be
/// shared with other checkouts, whose builds replace `CARGO_BIN_EXE_job-runner` in place; a
/// flag only this version has tells the binaries apart.
pub fn runner_binary() -> &'static Path {
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        // Another build to measure, e.g. an older one for before/after numbers.
        if let Some(other) = std::env::var_os("TASKYARD_RUNNER_UNDER_TEST") {
            return other.into();
        }
        let built = env!("CARGO_BIN_EXE_job-runner");
        let help = std::process::Command::new(built).args(["run", "--help"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("--download-timeout-seconds"),
            "{built} is not this checkout's runner (another checkout built into the same target directory); run the tests again"
        );
        let dir = std::env::temp_dir().join(format!("taskyard-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("job-runner");
        std::fs::copy(built, &copy).unwrap();
        copy
    })
}

/// GNU time, which reports its child's peak RSS from wait4. It is started from this test
/// process, but the runner is forked from it: a child's maxrss starts from the memory of
/// the process it was forked from, and this test process can be large.
const TIME: &str = "/usr/bin/time";

/// Runs the runner binary with `args` in its own process group, measuring its peak RSS;
/// the group is killed after `limit`.
pub fn run_measured(args: &[&str], limit: Duration) -> Run {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let started = Instant::now();
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let with_time = Path::new(TIME).exists();
    let mut command = if with_time {
        let mut c = Command::new(TIME);
        c.args(["-f", "%M", "-o", rss_file.path().to_str().unwrap()]);
        c.arg(runner_binary());
        c
    } else {
        Command::new(runner_binary())
    };
    let mut child = command
        .process_group(0)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the runner starts");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let done = Arc::new(Mutex::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
                if *done.lock().unwrap() {
                    return;
                }
            }
            let done = done.lock().unwrap();
            if !*done {
                // SAFETY: the child is not reaped while `done` is false and the lock is held.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
        })
    };
    // Without GNU time: the high-water mark of the runner's own memory, polled.
    let mut polled_hwm = 0u64;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if !with_time {
            polled_hwm = polled_hwm.max(vm_hwm_kib(pid).unwrap_or(0));
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
                )
            };
            if r == 0 && unsafe { info.si_pid() } == 0 {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        }
        // Peek without reaping, so the watchdog never signals a reused pid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            break;
        }
        assert_eq!(std::io::Error::last_os_error().kind(), std::io::ErrorKind::Interrupted);
    }
    {
        let mut done = done.lock().unwrap();
        *done = true;
        // SAFETY: pid is our child, exited and not yet reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(r, pid, "wait4 on the runner");
    }
    drop(child);
    watchdog.join().unwrap();
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let _ = usage;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let peak_rss_kib = if with_time {
        // time's own diagnostics (a signal, an exit code) come before the number.
        let text = std::fs::read_to_string(rss_file.path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().parse().ok())
            .next_back()
            .unwrap_or(0)
    } else {
        polled_hwm
    };
    Run {
        code,
        status: serde_yaml::from_slice(&stdout).unwrap_or(Value::Null),
        stdout_len: stdout.len(),
        stderr,
        peak_rss_kib,
        elapsed: started.elapsed(),
    }
}

/// VmHWM of a live process, in KiB.
fn vm_hwm_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A task resource of `kind` whose spec is `spec` (YAML, indented by two spaces).
pub fn task_yaml(kind: &str, spec: &str) -> String {
    format!("apiVersion: taskyard.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: t}}\nspec:\n{spec}\n")
}

/// The largest file under `dir` named `name`.
pub fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
