//! A real `previewd serve` on 127.0.0.1 with a fresh SQLite file and a fast
//! simulated AWS, every line it prints kept; the binary as a client; and a
//! bare HTTP/1.1 request for what the client does not send.

pub mod comments;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_previewd");

/// Settings that make a preview Ready within a fraction of a second.
pub const FAST: [(&str, &str); 5] = [
    ("PREVIEWD_SIM_LATENCY_MS", "0"),
    ("PREVIEWD_SIM_SERVICE_STABLE_AFTER_MS", "0"),
    ("PREVIEWD_SIM_TARGET_HEALTHY_AFTER_MS", "0"),
    ("PREVIEWD_CONTROLLER_PROGRESS_INTERVAL_MS", "20"),
    ("PREVIEWD_CONTROLLER_POLL_INTERVAL_MS", "50"),
];

pub struct Daemon {
    child: Child,
    /// `127.0.0.1:PORT`, as the daemon announced it.
    pub addr: String,
    output: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Keeps every line `from` prints.
fn keep_lines(from: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    })
}

/// Drops terminal colour codes (`ESC [ … m`), which text logs carry.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The `addr` of a "previewd listening" line, text or JSON.
fn listening_addr(line: &str) -> Option<String> {
    let line = plain(line);
    let rest = &line[line.find("addr")? + 4..];
    let rest = rest.trim_start_matches(['=', '"', ':']);
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.contains(':').then_some(addr)
}

impl Daemon {
    /// Starts `serve` with `env` on top of the fast settings; nothing of the
    /// caller's environment but PATH reaches it.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], env)
    }

    /// Like [`Daemon::start`], with `wrapper` in front of the binary: a
    /// command that ends by running its last two arguments (`BIN serve`),
    /// such as `sh -c 'ulimit -n 256; exec "$@"' sh`.
    pub fn start_wrapped(wrapper: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/previewd.db", dir.path().display());
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PREVIEWD_SERVER_LISTEN", "127.0.0.1:0")
            .env("PREVIEWD_STORE_URL", &db)
            .envs(FAST)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("previewd serve starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("serve ended before listening: {:?}", output.lock().unwrap());
            }
            let l = line.trim_end().to_owned();
            if l.contains("previewd listening") {
                addr = listening_addr(&l);
                if addr.is_none() {
                    let _ = child.kill();
                    panic!("no address in {l:?}");
                }
            }
            output.lock().unwrap().push(l);
        }
        let readers = vec![
            keep_lines(stderr, output.clone()),
            keep_lines(child.stdout.take().unwrap(), output.clone()),
        ];
        Self {
            child,
            addr: addr.unwrap(),
            output,
            readers,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id (of the wrapper, which `exec`s the daemon).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line printed so far.
    #[allow(dead_code)]
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// SIGTERM, then everything it printed, one line each.
    pub fn stop(mut self) -> Vec<String> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let lines = std::mem::take(&mut *self.output.lock().unwrap());
        assert!(status.success(), "serve exited {status:?}: {lines:#?}");
        lines
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave a daemon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary as a client of `server` with only `env` set.
pub fn client(server: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PREVIEWD_SERVER", server)
        .envs(env.iter().copied())
        .output()
        .expect("previewd runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One HTTP/1.1 request on its own connection: the status and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the daemon");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends `request` as it is on its own connection and reads the whole
/// answer: status, head (lower-cased) and body.
#[allow(dead_code)]
pub fn raw(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the daemon");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The daemon may answer and close before it reads everything.
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Polls `get BRANCH --output json` until `done` holds, or panics.
pub fn wait_for(
    server: &str,
    env: &[(&str, &str)],
    branch: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = client(server, &["get", branch, "--output", "json"], env);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            if done(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{branch} did not get there: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A stand-in for GitHub and the callback receiver on 127.0.0.1: answers
/// every request `201 {"id": 1}` and keeps each request's text.
// Not every test binary that includes this module fakes GitHub.
#[allow(dead_code)]
pub fn fake_github() -> (String, Arc<Mutex<Vec<String>>>) {
    fake_github_with(|_, _| None)
}

/// Like [`fake_github`], but `answer(head, body)` answers first: `Some`
/// with a status line (`"200 OK"`) and a JSON body, or `None` for the
/// default answer. The head's first line is `METHOD /path?query HTTP/1.1`.
#[allow(dead_code)]
pub fn fake_github_with(
    answer: impl Fn(&str, &str) -> Option<(String, String)> + Send + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body).into_owned();
            keep.lock().unwrap().push(format!("{head}\r\n{body}"));
            // A listing of deployments (a `once` destroy looks its one up)
            // answers one, id 77; anything else is created, id 1.
            let listing = head.starts_with("GET ") && head.contains("/deployments?");
            let (status, answer) = answer(&head, &body).unwrap_or_else(|| {
                if listing {
                    ("200 OK".into(), r#"[{"id": 77}]"#.into())
                } else {
                    ("201 Created".into(), r#"{"id": 1}"#.into())
                }
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (addr, seen)
}
