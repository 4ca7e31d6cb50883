//! A team on one PostgreSQL workspace: two `pbxdesk serve` processes (as two machines of a team
//! would run them) share every session, token, lock and number. A login on one is good on the
//! other, a refresh token is used once across both, a token revoked on one is refused by the
//! other at once, users created on both at the same moment get distinct extensions, an edit
//! based on a stale version is refused whichever instance made the newer one, and an end user
//! invited on one uses the other.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use assert_cmd::Command;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A PostgreSQL database of its own, dropped at the end.
struct Db {
    admin: String,
    name: String,
    url: String,
}

fn psql(admin: &str, sql: &str) {
    let ok = std::process::Command::new("psql")
        .arg(admin)
        .arg("-qc")
        .arg(sql)
        .stdout(Stdio::null())
        .status()
        .expect("psql is required (bash scripts/setup.sh)");
    assert!(ok.success(), "{sql}");
}

impl Db {
    fn new() -> Db {
        let admin = std::env::var("PBXDESK_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("pbxdesk_team_{}", std::process::id());
        psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Db { admin, name, url }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// One `pbxdesk serve` on the team workspace; stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A request with curl: the status and the JSON body (null when empty).
fn http(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut c = std::process::Command::new("curl");
    c.args(["-sS", "-X", method, "-w", "\n%{http_code}", url]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
    }
    let out = c.output().expect("curl is required");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
    };
    (status.parse().unwrap(), v)
}

struct Team {
    db: Db,
    dir: tempfile::TempDir,
}

impl Team {
    fn cli(&self) -> Command {
        let mut c = Command::cargo_bin("pbxdesk").unwrap();
        c.args(["--database-url", &self.db.url, "--key-file"])
            .arg(self.dir.path().join("team.key"))
            .arg("--json")
            .env_remove("PBXDESK_OPERATOR")
            .env_remove("PBXDESK_PASSPHRASE");
        c
    }

    fn as_boss(&self, args: &[&str]) -> Value {
        let out = self
            .cli()
            .args(["--operator", "boss"])
            .args(args)
            .env("PBXDESK_PASSWORD", "boss password 123")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn serve(&self) -> Server {
        let port = free_port();
        let bin = assert_cmd::cargo::cargo_bin("pbxdesk");
        let child = std::process::Command::new(bin)
            .args(["--database-url", &self.db.url, "--key-file"])
            .arg(self.dir.path().join("team.key"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}/api/v1");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "serve never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, base }
    }
}

fn team() -> Team {
    let t = Team {
        db: Db::new(),
        dir: tempfile::tempdir().unwrap(),
    };
    let out = t
        .cli()
        .args([
            "operator",
            "add",
            "--username",
            "boss",
            "--role",
            "msp_admin",
            "--password-stdin",
        ])
        .write_stdin("boss password 123\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    t.as_boss(&["demo", "seed"]);
    t
}

fn login(s: &Server) -> Value {
    let (code, v) = http(
        "POST",
        &format!("{}/auth/login", s.base),
        None,
        Some(&json!({"username": "boss", "password": "boss password 123"})),
    );
    assert_eq!(code, 200, "{v}");
    v
}

#[test]
fn two_servers_on_one_postgres_workspace_share_sessions_tokens_and_numbers() {
    let t = team();
    let (a, b) = (t.serve(), t.serve());

    // A login on one is good on the other; its refresh token is used once, across both.
    let session = login(&a);
    let access = session["access_token"].as_str().unwrap();
    let (code, tenants) = http("GET", &format!("{}/tenants", b.base), Some(access), None);
    assert_eq!(code, 200, "{tenants}");
    assert_eq!(tenants.as_array().unwrap().len(), 2);
    let refresh = json!({"refresh_token": session["refresh_token"]});
    let (code, renewed) = http(
        "POST",
        &format!("{}/auth/refresh", b.base),
        None,
        Some(&refresh),
    );
    assert_eq!(code, 200, "{renewed}");
    let (code, _) = http(
        "POST",
        &format!("{}/auth/refresh", a.base),
        None,
        Some(&refresh),
    );
    assert_eq!(
        code, 401,
        "a refresh token is used once, whichever server took it"
    );
    let access = renewed["access_token"].as_str().unwrap().to_owned();

    // An automation token made on one works on the other until revoked there; then on neither.
    let (code, made) = http(
        "POST",
        &format!("{}/tokens", a.base),
        Some(&access),
        Some(&json!({"name": "psa", "role": "technician"})),
    );
    assert_eq!(code, 201, "{made}");
    let psa = made["secret"].as_str().unwrap();
    let (code, _) = http("GET", &format!("{}/tenants", b.base), Some(psa), None);
    assert_eq!(code, 200);
    let (code, _) = http(
        "DELETE",
        &format!("{}/tokens/psa", b.base),
        Some(&access),
        None,
    );
    assert_eq!(code, 200);
    for s in [&a, &b] {
        let (code, _) = http("GET", &format!("{}/tenants", s.base), Some(psa), None);
        assert_eq!(code, 401, "revoked: refused by every server at once");
    }

    // Users created on both servers at the same moment: every one made, no number twice.
    let creates: Vec<_> = (0..24)
        .map(|i| {
            let base = if i % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            };
            let access = access.clone();
            std::thread::spawn(move || {
                http(
                    "POST",
                    &format!("{base}/users"),
                    Some(&access),
                    Some(&json!({
                        "tenant": "acme-dental",
                        "name": format!("Team User {i}"),
                        "email": format!("team{i}@acme-dental.example"),
                    })),
                )
            })
        })
        .collect();
    let mut extensions = BTreeSet::new();
    for c in creates {
        let (code, user) = c.join().unwrap();
        assert_eq!(code, 201, "{user}");
        assert!(
            extensions.insert(user["extension"].as_u64().unwrap()),
            "{user}"
        );
    }
    assert_eq!(extensions.len(), 24);
    let (_, listed) = http(
        "GET",
        &format!("{}/tenants/acme-dental/users", a.base),
        Some(&access),
        None,
    );
    assert_eq!(listed.as_array().unwrap().len(), 8 + 24);

    // An edit based on a version another server has moved past is refused.
    let id = listed[0]["id"].as_i64().unwrap();
    let (_, user) = http(
        "GET",
        &format!("{}/users/{id}", a.base),
        Some(&access),
        None,
    );
    let stale = user["version"].clone();
    let (code, _) = http(
        "PATCH",
        &format!("{}/users/{id}", a.base),
        Some(&access),
        Some(&json!({"ring_seconds": 30, "expected_version": stale})),
    );
    assert_eq!(code, 200);
    let (code, v) = http(
        "PATCH",
        &format!("{}/users/{id}", b.base),
        Some(&access),
        Some(&json!({"ring_seconds": 40, "expected_version": stale})),
    );
    assert_eq!(code, 409, "{v}");

    // An end user invited on one server takes the invite and acts on the other.
    let (code, invite) = http(
        "POST",
        &format!("{}/users/{id}/invite", a.base),
        Some(&access),
        None,
    );
    assert_eq!(code, 201, "{invite}");
    let (code, me) = http(
        "POST",
        &format!("{}/me/accept", b.base),
        None,
        Some(&json!({"invite": invite["invite"], "password": "an end user's passphrase"})),
    );
    assert_eq!(code, 200, "{me}");
    let me_token = me["token"].as_str().unwrap();
    let (code, v) = http(
        "PATCH",
        &format!("{}/me", a.base),
        Some(me_token),
        Some(&json!({"dnd": true})),
    );
    assert_eq!((code, v["dnd"].as_bool()), (200, Some(true)), "{v}");
    let (code, v) = http(
        "POST",
        &format!("{}/me/login", a.base),
        None,
        Some(
            &json!({"tenant": "acme-dental", "email": user["email"], "password": "an end user's passphrase"}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    let shown = t.as_boss(&["user", "show", &id.to_string()]);
    assert_eq!(shown["dnd"], true, "{shown}");
}
