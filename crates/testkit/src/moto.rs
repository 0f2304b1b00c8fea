//! moto server, the AWS emulator the AWS adapters are tested against. moto is a Python
//! program (`pip install 'moto[server]'`, done by `scripts/test.sh` into
//! `.tools/aws-venv`); this module finds it and runs it on a free loopback port for the
//! life of the test process.
//!
//! `REZ_TEST_AWS_ENDPOINT`, when set, points the tests at an emulator that is already
//! running (the test script starts one and shares it), so each test process does not
//! start its own. Tests isolate themselves by giving their resources unique names.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running moto server. Dropping the handle of a server this process started stops it.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    child: Option<Child>,
}

impl Moto {
    /// The shared emulator of this test process: `REZ_TEST_AWS_ENDPOINT` if set, otherwise
    /// a moto server started on first use. Panics with instructions if moto is missing.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(|| match std::env::var("REZ_TEST_AWS_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => Moto { endpoint, child: None },
            _ => Moto::start().unwrap_or_else(|e| panic!("{e}")),
        })
    }

    /// The shared emulator behind a proxy that passes DynamoDB calls on one at a time,
    /// so that conditional writes and transactions are atomic as on DynamoDB (see
    /// `moto_serial`). Tests of the AWS adapters use this one.
    pub fn shared_serialized() -> &'static Moto {
        static PROXY: OnceLock<Moto> = OnceLock::new();
        PROXY.get_or_init(|| {
            let endpoint = crate::moto_serial::start(Moto::shared().endpoint()).unwrap_or_else(|e| panic!("{e}"));
            Moto { endpoint, child: None }
        })
    }

    /// Start a fresh moto server on a free port and wait until it answers.
    pub fn start() -> Result<Moto, String> {
        Self::start_with_env(&[])
    }

    /// Start a fresh moto server that checks IAM permissions: the first
    /// `initial_unchecked` requests are let through (enough to create an administrator
    /// and its access key); every later one must be signed with the access key of a
    /// user created in this moto, and is allowed only if that user's policy allows it.
    /// See moto's documentation of `INITIAL_NO_AUTH_ACTION_COUNT` and what it does not
    /// check (resource ARNs are compared only for SQS; conditions are not evaluated).
    pub fn start_with_iam(initial_unchecked: u32) -> Result<Moto, String> {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &initial_unchecked.to_string())])
    }

    fn start_with_env(env: &[(&str, &str)]) -> Result<Moto, String> {
        let bin = find_moto().ok_or_else(|| {
            "moto_server not found: run scripts/test.sh (it installs moto into .tools/aws-venv) \
             or `pip install 'moto[server]'`, or set REZ_MOTO_SERVER"
                .to_owned()
        })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        // A small shell watchdog owns moto: it stops moto when this (test) process is
        // gone, since the shared handle lives in a static that is never dropped.
        let child = Command::new("sh")
            .args(["-c", WATCHDOG, "moto-watchdog"])
            .arg(&bin)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .envs(env.iter().copied())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("moto_server did not listen on port {port} within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SIGTERM lets the watchdog stop moto too.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// Runs `$1 -H 127.0.0.1 -p $2` and kills it when the parent process exits or this
/// shell is terminated.
const WATCHDOG: &str = r#"parent=$PPID
"$1" -H 127.0.0.1 -p "$2" &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
kill $child 2>/dev/null
"#;

/// `REZ_MOTO_SERVER`, then `.tools/aws-venv/bin/moto_server` above the current
/// directory, then `moto_server` on `PATH`.
fn find_moto() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("REZ_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let candidate = d.join(".tools/aws-venv/bin/moto_server");
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent().map(PathBuf::from);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("moto_server")).find(|p| p.is_file()))
}
