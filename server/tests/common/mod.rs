//! Helpers shared by the integration tests: where the shared fixtures are, and
//! the skip policy (skip visibly on a user's clone, fail under `CI=true`).
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a subset

use std::path::PathBuf;

/// `../shared/fixtures` next to the repository (or `$EMBERLENS_SHARED/fixtures`,
/// for a checkout elsewhere), if present. Without it the test is skipped
/// with a message, except under `CI=true`, where it fails.
pub fn shared_fixtures() -> Option<PathBuf> {
    let root = std::env::var_os("EMBERLENS_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
        |s| PathBuf::from(s).join("fixtures"),
    );
    if root.is_dir() {
        return Some(root.canonicalize().unwrap());
    }
    require_or_skip(&format!("{} (the shared fixtures)", root.display()));
    None
}

/// A program on PATH, under the same skip policy.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        require_or_skip(&format!(
            "`{name}` on PATH (Debian package; tools/setup.sh installs it)"
        ));
    }
    found
}

fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {what} is missing");
    }
    eprintln!("SKIPPED: {what} not found");
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("emberlens-{tag}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree (files and directories only), making it writable.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let mut perm = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dst, perm).unwrap();
        }
    }
}

/// A Debian Prometheus started by `../shared/fixtures/oracle/oracle.sh` on a
/// copy of a TSDB directory; stopped (by PID) when dropped.
pub struct Oracle {
    script: PathBuf,
    env: Vec<(String, String)>,
}

impl Oracle {
    pub fn start(fixtures: &std::path::Path, dir: &std::path::Path) -> Self {
        let script = fixtures.join("oracle/oracle.sh");
        let out = std::process::Command::new(&script)
            .arg("start")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "oracle.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "export ORACLE_STATE=... ORACLE_URL=... ORACLE_PID=..."
        let text = String::from_utf8(out.stdout).unwrap();
        let env = text
            .trim()
            .trim_start_matches("export ")
            .split_whitespace()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Oracle { script, env }
    }

    /// Runs one recorded query (`endpoint`, `params` as in `expected/*.json`)
    /// and returns Prometheus's JSON answer.
    pub fn query(&self, endpoint: &str, params: &serde_json::Value) -> serde_json::Value {
        let s = |k: &str| params[k].as_str().unwrap().to_string();
        let args: Vec<String> = if endpoint.ends_with("query_range") {
            vec![
                "query_range".into(),
                s("query"),
                s("start"),
                s("end"),
                s("step"),
            ]
        } else {
            vec!["query".into(), s("query"), s("time")]
        };
        let out = std::process::Command::new(&self.script)
            .args(&args)
            .envs(self.env.clone())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "oracle query failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.script)
            .arg("stop")
            .envs(self.env.clone())
            .output();
    }
}

/// A query answer's `data` with instant-vector series in a fixed order (their
/// order is not stable between Prometheus runs).
pub fn normalized_data(response: &serde_json::Value) -> serde_json::Value {
    let mut data = response["data"].clone();
    if let Some(result) = data.get_mut("result").and_then(|r| r.as_array_mut()) {
        result.sort_by_key(|s| s["metric"].to_string());
    }
    data
}

/// Runs `promtool tsdb <args> <copy of dir>` and returns its stdout. promtool
/// opens the directory as a database (it needs `wal/` and writes into it), so
/// it gets a copy, never the fixture itself.
pub fn promtool_tsdb(bin: &std::path::Path, args: &[&str], dir: &std::path::Path) -> String {
    let tmp = TempDir::new("promtool");
    copy_tree(dir, &tmp.0);
    std::fs::create_dir_all(tmp.0.join("wal")).unwrap();
    let out = std::process::Command::new(bin)
        .arg("tsdb")
        .args(args)
        .arg(&tmp.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool tsdb {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts the `emberlens` binary on a free loopback port with the remote
/// write receiver on, over `data`, with `extra` flags; returns the child
/// (kill it by PID) and its base URL, read from its first stdout line.
pub fn spawn_emberlens(data: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_emberlens"))
        .args(["serve", "--web.listen-address", "127.0.0.1:0"])
        .arg("--storage.tsdb.path")
        .arg(data)
        .args([
            "--web.ui-path",
            "does-not-exist",
            "--web.enable-remote-write-receiver",
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("Emberlens listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (child, base)
}

/// A loopback exporter serving `body` at `/metrics`; returns its URL.
pub async fn fake_target(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(move || async move { body }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/metrics")
}
