//! The apply over HTTP against the PBX test double (Debian's sshd on loopback, the stateful
//! Asterisk double, MariaDB with Asterisk's realtime tables; see `pbxdesk-core/tests/pbx_double`):
//! with `Accept: application/x-ndjson` each step arrives as it ends, before the apply is over,
//! then the report; without it, the report alone; the history over HTTP holds it. The live
//! status streamed the same way follows a phone registering and leaving.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

#[path = "../../pbxdesk-core/tests/pbx_double/mod.rs"]
mod pbx_double;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use pbxdesk_core::domain::Role;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tower::ServiceExt;

fn request(method: Method, path: &str, token: &str, body: Value, accept: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, accept)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_streams_its_steps_as_they_end_then_its_report() {
    let (_dir, ws) = pbx_double::temp_workspace().await;
    let me = ws.local_owner().unwrap();
    let pbx = pbx_double::setup(&ws, &me, "api").await;
    ws.operator_add(
        Some(&me),
        "tech",
        Role::Technician,
        &[],
        &SecretString::from("tech password 1"),
    )
    .await
    .unwrap();
    let router = pbxdesk_api::router(ws.clone());
    let login = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": "tech", "password": "tech password 1"}).to_string(),
        ))
        .unwrap();
    let res = router.clone().oneshot(login).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let token = serde_json::from_slice::<Value>(&bytes).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Asterisk's reload hangs: the steps up to it must have arrived while the apply waits.
    pbx.ast.hold_reloads.store(true, Ordering::SeqCst);
    let res = router
        .clone()
        .oneshot(request(
            Method::POST,
            "/api/v1/pbxs/demo-pbx/apply",
            &token,
            json!({"add_includes": true, "confirm_seconds": 60}),
            "application/x-ndjson",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/x-ndjson");
    let mut body = res.into_body();
    let mut text = String::new();
    let mut lines: Vec<Value> = Vec::new();
    let early = tokio::time::timeout(Duration::from_secs(30), async {
        while !lines.iter().any(|l| l["step"]["kind"] == "sync") {
            let frame = body.frame().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
            while let Some(i) = text.find('\n') {
                lines.push(serde_json::from_str(&text[..i]).unwrap());
                text.drain(..=i);
            }
        }
    })
    .await;
    assert!(
        early.is_ok(),
        "the steps before the reload never came: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.get("step").is_some()),
        "only steps, and no report, while the reload hangs: {lines:?}"
    );
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l["step"]["kind"].as_str().unwrap())
        .collect();
    for k in ["render", "lock", "backup", "upload", "sync"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    pbx.ast.hold_reloads.store(false, Ordering::SeqCst);
    let rest = body.collect().await.unwrap().to_bytes();
    text.push_str(std::str::from_utf8(&rest).unwrap());
    lines.extend(
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );
    let last = lines.last().unwrap();
    let report = &last["report"];
    assert!(report.is_object(), "the last line is the report: {last}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.get("step").is_some()),
        "one report, at the end"
    );
    // Every step the report holds came over the stream first, in its order.
    let streamed: Vec<&Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| &l["step"])
        .collect();
    let reported: Vec<&Value> = report["steps"].as_array().unwrap().iter().collect();
    assert_eq!(streamed, reported);

    // Without the stream: the report, as JSON, when it is over (nothing left to change).
    let res = router
        .clone()
        .oneshot(request(
            Method::POST,
            "/api/v1/pbxs/demo-pbx/apply",
            &token,
            json!({"confirm_seconds": 60}),
            "application/json",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let second: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(second["outcome"].is_string(), "{second}");

    // Refused before a step: its status, not a stream.
    let res = router
        .clone()
        .oneshot(request(
            Method::POST,
            "/api/v1/pbxs/demo-pbx/apply",
            &token,
            json!({"confirm_seconds": 1}),
            "application/x-ndjson",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(second["outcome"], "nothing_to_do", "{}", second["summary"]);

    // The history over HTTP holds the apply that changed the PBX.
    let res = router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/pbxs/demo-pbx/history")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let history: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(history[0]["outcome"], report["outcome"]);
    assert_eq!(history[0]["steps"], report["steps"]);
    assert_eq!(history[0]["actor"], "tech");

    // The live status as a stream: the state at once, then a line when a phone registers and
    // when it leaves, for as long as the client reads.
    let res = router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/pbxs/demo-pbx/status")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::ACCEPT, "application/x-ndjson")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/x-ndjson");
    let mut status = Lines::new(res.into_body());
    let first = status.next().await;
    assert_eq!(first["connected"], true, "{first}");
    let contacts = |l: &Value| {
        l["state"]["endpoints"]["acme-dental-100"]["contacts"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(contacts(&first), 0);
    pbx.ast
        .register("acme-dental-100", 5071, "stream-test-phone/1.0");
    let registered = status.until(|l| contacts(l) == 1).await;
    let contact = &registered["state"]["endpoints"]["acme-dental-100"]["contacts"][0];
    assert_eq!(contact["user_agent"], "stream-test-phone/1.0", "{contact}");
    pbx.ast.unregister("acme-dental-100");
    status.until(|l| contacts(l) == 0).await;
}

/// The lines of an NDJSON body, as they come.
struct Lines {
    body: Body,
    text: String,
}

impl Lines {
    fn new(body: Body) -> Lines {
        Lines {
            body,
            text: String::new(),
        }
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(i) = self.text.find('\n') {
                    let line: Value = serde_json::from_str(&self.text[..i]).unwrap();
                    self.text.drain(..=i);
                    return line;
                }
                let frame = self.body.frame().await.unwrap().unwrap();
                self.text
                    .push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
            }
        })
        .await
        .expect("no line within 15 s")
    }

    /// The first line that `ok` takes.
    async fn until(&mut self, ok: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next().await;
            if ok(&line) {
                return line;
            }
        }
    }
}
