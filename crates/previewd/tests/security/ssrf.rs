//! Callbacks that cannot be aimed inside. The daemon runs in a mount
//! namespace of its own whose `/etc/hosts` gives test names the addresses
//! an attacker's DNS would: loopback, the metadata endpoint, NAT64.

use crate::daemon::{Daemon, fake_github, http};
use crate::{deploy_body, previews, refusal};

const HOSTS: &str = "\
127.0.0.1 loop.callbacks.test
169.254.169.254 meta.callbacks.test
64:ff9b::a9fe:a9fe nat64.callbacks.test
10.1.2.3 private.callbacks.test
";

/// `previewd serve` with `HOSTS` as its `/etc/hosts`, and `env`.
fn daemon_with_hosts(extra_hosts: &str, env: &[(&str, &str)]) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n{HOSTS}{extra_hosts}")).unwrap();
    let hosts = hosts.display().to_string();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut wrapper = vec!["unshare", "--mount", "--fork", "--kill-child"];
    if !root {
        // Without root, a user namespace lends the mount the right.
        wrapper.push("--map-root-user");
    }
    wrapper.extend([
        "sh",
        "-c",
        "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
        hosts.as_str(),
    ]);
    let wrapper: Vec<&str> = wrapper.into_iter().collect();
    let d = Daemon::start_wrapped(&wrapper, env);
    (d, dir)
}

fn dispatch(d: &Daemon, branch: &str, callback: &str) -> (u16, String) {
    http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[("Content-Type", "application/json")],
        &deploy_body(branch, Some(callback)),
    )
}

#[test]
fn callback_names_resolving_inside_are_refused_and_nothing_is_written() {
    let (d, _dir) = daemon_with_hosts(
        "",
        &[(
            "PREVIEWD_CALLBACKS_ALLOWED_HOSTS",
            r#"["*.callbacks.test", "*"]"#,
        )],
    );
    for (i, url) in [
        "http://loop.callbacks.test/done",
        "https://meta.callbacks.test/latest/meta-data/",
        "http://nat64.callbacks.test/",
        "http://private.callbacks.test/",
        // Literal forms of internal addresses, embedded in IPv6.
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::1]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[::127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fec0::1]/",
        "http://192.0.0.8/",
        "http://169.254.169.254/",
    ]
    .iter()
    .enumerate()
    {
        let (status, reply) = dispatch(&d, &format!("qanote/issue-{i}"), url);
        let v = refusal(status, &reply, 422, "callback_url");
        assert!(
            !v["error"].as_str().unwrap().contains("/done"),
            "the URL's path is echoed: {v}"
        );
    }
    assert!(
        previews(&d, None).is_empty(),
        "a refused dispatch wrote a row"
    );
}

#[test]
fn only_ports_80_and_443_unless_an_entry_names_the_port() {
    let (d, _dir) = daemon_with_hosts(
        "127.0.0.1 hooks.callbacks.test\n",
        &[(
            "PREVIEWD_CALLBACKS_ALLOWED_HOSTS",
            r#"["127.0.0.1", "hooks.callbacks.test"]"#,
        )],
    );
    for url in [
        "http://hooks.callbacks.test:8080/done",
        "http://127.0.0.1:6379/",
        "https://hooks.callbacks.test:22/",
    ] {
        let (status, reply) = dispatch(&d, "qanote/issue-9", url);
        let v = refusal(status, &reply, 422, "callback_url");
        assert!(v["error"].as_str().unwrap().contains("port"), "{v}");
    }
    assert!(previews(&d, None).is_empty());
}

#[test]
fn a_listed_internal_address_is_called_at_the_address_that_was_checked() {
    let (receiver, seen) = fake_github();
    let port = receiver.rsplit(':').next().unwrap().to_owned();
    let allowed = format!(r#"["hooks.callbacks.test:{port}", "127.0.0.1:{port}"]"#);
    let (d, _dir) = daemon_with_hosts(
        "127.0.0.1 hooks.callbacks.test\n",
        &[
            ("PREVIEWD_CALLBACKS_ALLOWED_HOSTS", &allowed),
            ("PREVIEWD_CALLBACK_SECRET", "callback-secret-for-ssrf-test"),
        ],
    );
    let url = format!("http://hooks.callbacks.test:{port}/done?token=sekrit-Qw3");
    let (status, reply) = dispatch(&d, "qanote/issue-10", &url);
    assert_eq!(status, 202, "{reply}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with("POST /done"))
    {
        assert!(std::time::Instant::now() < deadline, "no callback arrived");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The callback's URL is never logged whole: its query may hold a token.
    assert!(
        d.lines().iter().all(|l| !l.contains("sekrit-Qw3")),
        "the callback URL's query reached the log"
    );
}
