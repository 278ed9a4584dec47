//! An HTTP server that hostile clients cannot starve: idle and
//! byte-a-second connections under a low descriptor limit, while a normal
//! request is still answered.

use crate::daemon::{Daemon, http};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn idle_and_trickling_connections_cannot_exhaust_descriptors() {
    // 256 descriptors, as in the audit; short timeouts keep the test short.
    let d = Daemon::start_wrapped(
        &["sh", "-c", "ulimit -n 256 && exec \"$@\"", "sh"],
        &[("PREVIEWD_SERVER_HEADER_READ_TIMEOUT_SECS", "2")],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
        "{limits}"
    );
    let started = Instant::now();
    // 300 connections that send nothing...
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&d.addr).ok())
        .collect();
    assert!(idle.len() >= 250, "only {} connections opened", idle.len());
    // ...and 20 that send one header byte a second.
    let mut trickling: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(&d.addr).ok())
        .collect();
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa";
    let trickle = std::thread::spawn(move || {
        for byte in head.iter().take(6) {
            for s in &mut trickling {
                let _ = s.write_all(&[*byte]);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        trickling
    });
    // A normal request gets its answer while they hang on.
    let (status, body) = http(&d.addr, "GET", "/healthz", &[], "");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let answered = started.elapsed();
    let trickling = trickle.join().unwrap();
    // The daemon closed them: a read sees the end, or a reset, not a hang.
    let mut probes: Vec<TcpStream> = idle
        .iter()
        .take(20)
        .chain(trickling.iter().take(5))
        .map(|s| s.try_clone().unwrap())
        .collect();
    for s in &mut probes {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 512];
        match std::io::Read::read(s, &mut buf) {
            Ok(_) => {}
            Err(e) => assert!(
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut,
                "a hostile connection is still open after 15 s"
            ),
        }
    }
    drop(trickling);
    drop(idle);
    let lines = d.lines();
    assert!(
        !lines.iter().any(|l| l.contains("Too many open files")),
        "descriptors ran out (a normal request took {answered:?}): {lines:#?}"
    );
    d.stop();
}
