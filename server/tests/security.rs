//! The security layer on the real server, in-process: the token that admin,
//! write and reload endpoints need off loopback (the bound address decides:
//! a server bound to 0.0.0.0 is reached here through 127.0.0.1 and still
//! counts as exposed), cross-site refusals on loopback, CORS for the API,
//! and the request body limit.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::TempDir;
use emberlens_server::security::AuthToken;
use emberlens_server::{ServeOptions, serve};
use expect_test::expect;

/// A server bound to `bind` with `opts`, and the loopback URL that reaches it.
async fn start(bind: &str, opts: ServeOptions) -> (String, TempDir) {
    let data = TempDir::new("security");
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let running = serve(
        listener,
        ServeOptions {
            data_dir: data.0.clone(),
            ui_dir: "does-not-exist".into(),
            scrape_interval: Duration::from_secs(60),
            ..opts
        },
    )
    .await
    .unwrap();
    (format!("http://127.0.0.1:{}", running.addr.port()), data)
}

fn token() -> Option<AuthToken> {
    Some(AuthToken::new("s3cret-token", "test").unwrap())
}

/// Status and body of a POST with optional headers.
async fn post(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = reqwest::Client::new().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposed_without_token_refuses_admin_write_and_reload() {
    let (base, _d) = start("0.0.0.0:0", ServeOptions::default()).await;
    for path in [
        "/-/reload",
        "/api/v1/write",
        // Not routed yet: the prefix is protected before any route exists.
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1//admin/tsdb/snapshot",
    ] {
        let (status, body) = post(&format!("{base}{path}"), &[]).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("--web.auth-token-file"), "{body}");
    }
    let (status, body) = post(&format!("{base}/-/reload"), &[]).await;
    expect![[r#"403 {"status":"error","errorType":"forbidden","error":"/-/reload is disabled: the server listens on a non-loopback address and no token is set; start it with --web.auth-token-file=FILE or the EMBERLENS_TOKEN environment variable and send \"Authorization: Bearer <token>\""}"#]]
        .assert_eq(&format!("{status} {body}"));
    // Reads stay open.
    let r = reqwest::get(format!("{base}/api/v1/query?query=1"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("{base}/-/healthy")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposed_with_token_needs_the_bearer_header() {
    let dir = TempDir::new("token-file");
    let file = dir.0.join("token");
    std::fs::write(&file, "s3cret-token\n").unwrap();
    let (base, _d) = start(
        "0.0.0.0:0",
        ServeOptions {
            auth_token: Some(AuthToken::from_file(&file).unwrap()),
            ..ServeOptions::default()
        },
    )
    .await;
    let reload = format!("{base}/-/reload");
    let r = reqwest::Client::new().post(&reload).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    expect![[r#"{"status":"error","errorType":"unauthorized","error":"/-/reload needs the server's token: send \"Authorization: Bearer <token>\""}"#]]
        .assert_eq(&r.text().await.unwrap());
    for bad in [
        "Bearer wrong",
        "Bearer s3cret-toke",
        "Basic czNjcmV0LXRva2Vu",
        "s3cret-token",
    ] {
        let (status, _) = post(&reload, &[("authorization", bad)]).await;
        assert_eq!(status, 401, "{bad}");
    }
    let ok = [("authorization", "Bearer s3cret-token")];
    assert_eq!(post(&reload, &ok).await.0, 200);
    // Through the guard to the router: the snapshot is made.
    assert_eq!(
        post(&format!("{base}/api/v1/admin/tsdb/snapshot"), &ok)
            .await
            .0,
        200
    );
    assert_eq!(
        post(&format!("{base}/api/v1/admin/tsdb/snapshot"), &[])
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_needs_no_token_unless_one_is_set() {
    let (base, _d) = start("127.0.0.1:0", ServeOptions::default()).await;
    let reload = format!("{base}/-/reload");
    assert_eq!(post(&reload, &[]).await.0, 200);
    // Same origin (the app) is fine; another site's page is not.
    let host = base.trim_start_matches("http://").to_string();
    let same = format!("http://{host}");
    assert_eq!(post(&reload, &[("origin", &same)]).await.0, 200);
    let (status, body) = post(&reload, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cross-site"), "{body}");
    assert_eq!(
        post(&reload, &[("sec-fetch-site", "cross-site")]).await.0,
        403
    );

    let (base, _d2) = start(
        "127.0.0.1:0",
        ServeOptions {
            auth_token: token(),
            ..ServeOptions::default()
        },
    )
    .await;
    let reload = format!("{base}/-/reload");
    assert_eq!(post(&reload, &[]).await.0, 401);
    // With the token, even a cross-site request is allowed.
    assert_eq!(
        post(
            &reload,
            &[
                ("authorization", "Bearer s3cret-token"),
                ("origin", "https://app.example")
            ]
        )
        .await
        .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_simple_requests() {
    let client = reqwest::Client::new();
    let (base, _d) = start("127.0.0.1:0", ServeOptions::default()).await;
    // Preflight on the default `.*`: 204 and `*`.
    let r = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/api/v1/query_range"),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    let got = [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "vary",
    ]
    .map(|k| format!("{k}: {}", h[k].to_str().unwrap()))
    .join("\n");
    expect![[r#"
        access-control-allow-origin: *
        access-control-allow-methods: GET, POST, OPTIONS
        access-control-allow-headers: Accept, Authorization, Content-Type, Origin, X-Requested-With, Content-Encoding, X-Prometheus-Remote-Read-Version, X-Prometheus-Remote-Write-Version
        access-control-expose-headers: Date
        vary: Origin"#]]
    .assert_eq(&got);
    // No Origin: no CORS headers; outside /api/v1: none either.
    let r = client
        .get(format!("{base}/api/v1/query?query=1"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = client
        .get(format!("{base}/metrics"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // A configured origin regex, anchored: echoed when it matches.
    let (base, _d2) = start(
        "127.0.0.1:0",
        ServeOptions {
            cors_origin: r"https://(app|grafana)\.example".into(),
            ..ServeOptions::default()
        },
    )
    .await;
    let origin_of = |origin: &'static str| {
        let client = client.clone();
        let url = format!("{base}/api/v1/labels");
        async move {
            let r = client
                .get(url)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["access-control-expose-headers"], "Date");
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    assert_eq!(
        origin_of("https://grafana.example").await.as_deref(),
        Some("https://grafana.example")
    );
    assert_eq!(origin_of("https://evil.example").await, None);
    assert_eq!(origin_of("https://app.example.evil.example").await, None);
    let r = client
        .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/series"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_beyond_the_limit_get_413() {
    let (base, _d) = start(
        "127.0.0.1:0",
        ServeOptions {
            max_request_body_bytes: 1024,
            ..ServeOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let small = "query=1";
    let r = client
        .post(format!("{base}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let big = format!("query=1&pad={}", "x".repeat(2000));
    let r = client
        .post(format!("{base}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    expect![[r#"{"status":"error","errorType":"bad_data","error":"request body of 2012 bytes is larger than the limit of 1024 bytes (--web.max-request-body-bytes)"}"#]]
        .assert_eq(&r.text().await.unwrap());

    // Without a Content-Length (chunked), the body stops being read at the
    // limit and the handler's extractor answers 413.
    let addr = base.trim_start_matches("http://").to_string();
    let resp = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        let mut req = format!(
            "POST /api/v1/query HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        for chunk in big.as_bytes().chunks(500) {
            req.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                std::str::from_utf8(chunk).unwrap()
            ));
        }
        req.push_str("0\r\n\r\n");
        conn.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        resp
    })
    .await
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
}

/// The binary reads the token from `--web.auth-token-file`, else from
/// `EMBERLENS_TOKEN`, and refuses an empty token file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_takes_the_token_from_file_or_environment() {
    use std::io::BufRead as _;
    let dir = TempDir::new("token-bin");
    let file = dir.0.join("token");
    std::fs::write(&file, "from-file\n").unwrap();
    let empty = dir.0.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let run = |token_file: Option<&std::path::Path>, env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_emberlens"));
        cmd.args(["--web.listen-address", "0.0.0.0:0", "--web.ui-path", "none"])
            .arg("--storage.tsdb.path")
            .arg(dir.0.join("data"))
            .env_remove("EMBERLENS_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(f) = token_file {
            cmd.arg("--web.auth-token-file").arg(f);
        }
        if let Some(t) = env {
            cmd.env("EMBERLENS_TOKEN", t);
        }
        cmd.spawn().unwrap()
    };
    for (file, env, good) in [
        (Some(file.as_path()), Some("from-env"), "from-file"),
        (None, Some("from-env"), "from-env"),
    ] {
        let mut child = run(file, env);
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap();
        let reload = format!("http://127.0.0.1:{port}/-/reload");
        assert_eq!(post(&reload, &[]).await.0, 401, "{line}");
        let wrong = if good == "from-file" {
            "from-env"
        } else {
            "from-file"
        };
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(
            post(&reload, &[("authorization", &bearer(wrong))]).await.0,
            401
        );
        assert_eq!(
            post(&reload, &[("authorization", &bearer(good))]).await.0,
            200
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = run(Some(&empty), None).wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is empty"), "{err}");
}
