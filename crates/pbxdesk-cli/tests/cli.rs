//! The `pbxdesk` binary end to end on a temporary SQLite workspace, and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::panic)] // tests and benches fail loudly by design

use assert_cmd::Command;
use serde_json::Value;

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        Ws {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("pbxdesk").expect("binary");
        c.arg("--workspace")
            .arg(self.dir.path().join("sub/ws.sqlite"));
        c.env_remove("PBXDESK_DATABASE_URL")
            .env_remove("PBXDESK_PASSPHRASE")
            .env_remove("PBXDESK_OPERATOR");
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().arg("--json").args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    fn fails(&self, args: &[&str], code: i32) -> Value {
        let out = self.cmd().arg("--json").args(args).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("json error")
    }
}

#[test]
fn first_run_creates_the_workspace_and_a_user_gets_an_extension() {
    let ws = Ws::new();
    ws.json(&["pbx", "add", "--name", "pbx1", "--host", "pbx1.example.net"]);
    let t = ws.json(&[
        "tenant",
        "create",
        "--name",
        "Acme Dental",
        "--pbx",
        "pbx1",
        "--ext-range",
        "1000-1999",
    ]);
    assert_eq!(t["slug"], "acme-dental");
    let u = ws.json(&[
        "user",
        "create",
        "--tenant",
        "acme-dental",
        "--name",
        "Ann Example",
        "--email",
        "ann@acme.example",
    ]);
    assert_eq!(u["extension"], 1000);
    assert_eq!(u["devices"][0]["sip_username"], "acme-dental-1000");
    let text = serde_json::to_string(&u).unwrap();
    assert!(
        !text.contains("password") && !text.contains("pin\""),
        "no secret in output: {text}"
    );
    let u2 = ws.json(&[
        "user",
        "create",
        "--tenant",
        "acme-dental",
        "--name",
        "Bob",
        "--email",
        "bob@acme.example",
        "--extension",
        "1500",
    ]);
    assert_eq!(u2["extension"], 1500);
    let list = ws.json(&["user", "list", "--tenant", "acme-dental"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let shown = ws.json(&["user", "show", "acme-dental/1500"]);
    assert_eq!(shown["display_name"], "Bob");
    // Every device of the tenant at once (what the app's status dots read), no secret in it.
    let devices = ws.json(&["device", "list", "--tenant", "acme-dental"]);
    let names: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sip_username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme-dental-1000", "acme-dental-1500"]);
    assert!(devices[0].get("sip_password").is_none());
    // Reveal is the one way to a SIP password, and it is audited.
    let r = ws.json(&["device", "reveal", "acme-dental-1000"]);
    assert_eq!(r["sip_password"].as_str().unwrap().len(), 24);
    let audit = ws.json(&["audit", "list"]);
    assert_eq!(audit[0]["action"], "device.reveal");
    // A new password, printed once; reveal shows it from then on.
    let n = ws.json(&["device", "new-password", "acme-dental-1000"]);
    assert_ne!(n["sip_password"], r["sip_password"]);
    assert_eq!(
        ws.json(&["device", "reveal", "acme-dental-1000"])["sip_password"],
        n["sip_password"]
    );
    assert!(
        ws.dir.path().join("sub/ws.sqlite.key").exists(),
        "key file beside the workspace"
    );
    // An inbound number, typed the national way.
    let d = ws.json(&[
        "did",
        "add",
        "--tenant",
        "acme-dental",
        "--number",
        "044 555 12 34",
        "--country",
        "CH",
        "--destination",
        "user:1000",
    ]);
    assert_eq!(d["number"], "+41445551234");
    let e = ws.fails(
        &[
            "did",
            "add",
            "--tenant",
            "acme-dental",
            "--number",
            "+41445551234",
            "--destination",
            "hangup",
        ],
        5,
    );
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already routed"));
    // Human output works too; audit times are readable UTC.
    let out = ws.cmd().args(["audit", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("device.reveal") && text.contains('T') && text.contains('Z'),
        "{text}"
    );
    let out = ws
        .cmd()
        .args(["user", "list", "--tenant", "acme-dental"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Ann Example"));
}

#[test]
fn exit_codes_tell_usage_validation_not_found_and_conflict_apart() {
    let ws = Ws::new();
    ws.json(&["pbx", "add", "--name", "pbx1", "--host", "10.1.1.1"]);
    ws.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--pbx",
        "pbx1",
        "--ext-range",
        "100-101",
    ]);
    let out = ws
        .cmd()
        .args(["user", "create", "--tenant", "acme"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage");
    let e = ws.fails(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--name",
            "A",
            "--email",
            "not-an-email",
        ],
        3,
    );
    assert_eq!(e["error"]["code"], "validation");
    assert_eq!(e["error"]["field"], "email");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not-an-email"));
    let e = ws.fails(&["tenant", "show", "nope"], 4);
    assert_eq!(e["error"]["code"], "not_found");
    ws.json(&[
        "user",
        "create",
        "--tenant",
        "acme",
        "--name",
        "A",
        "--email",
        "a@acme.example",
    ]);
    ws.json(&[
        "user",
        "create",
        "--tenant",
        "acme",
        "--name",
        "B",
        "--email",
        "b@acme.example",
    ]);
    let e = ws.fails(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--name",
            "C",
            "--email",
            "c@acme.example",
        ],
        5,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("100-101"));
    let e = ws.fails(&["pbx", "add", "--name", "bad name", "--host", "x"], 3);
    assert_eq!(e["error"]["field"], "name");
    let e = ws.fails(
        &[
            "user",
            "create",
            "--tenant",
            "acme",
            "--name",
            "Evil\nName",
            "--email",
            "e@acme.example",
        ],
        3,
    );
    assert_eq!(e["error"]["field"], "name");
}

#[test]
fn team_workspace_on_postgres_needs_a_login() {
    let admin = std::env::var("PBXDESK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!("pbxdesk_cli_{}", std::process::id());
    let psql = |sql: &str| {
        let ok = std::process::Command::new("psql")
            .arg(&admin)
            .arg("-qc")
            .arg(sql)
            .status()
            .expect("psql is required");
        assert!(ok.success(), "{sql}");
    };
    psql(&format!("DROP DATABASE IF EXISTS {db}"));
    psql(&format!("CREATE DATABASE {db}"));
    let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = Command::cargo_bin("pbxdesk").unwrap();
        c.args(["--database-url", &url, "--key-file"])
            .arg(dir.path().join("team.key"))
            .arg("--json");
        c.env_remove("PBXDESK_OPERATOR")
            .env_remove("PBXDESK_PASSPHRASE");
        c
    };
    let out = cmd().args(["pbx", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "no login on a team workspace");
    let out = cmd()
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
        "bootstrap: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cmd()
        .args([
            "--operator",
            "boss",
            "pbx",
            "add",
            "--name",
            "p",
            "--host",
            "10.0.0.1",
        ])
        .env("PBXDESK_PASSWORD", "boss password 123")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cmd()
        .args(["--operator", "boss", "pbx", "list"])
        .env("PBXDESK_PASSWORD", "wrong password!!")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}

#[test]
fn routing_from_the_command_line_render_diff_and_trace() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    // A trunk with its password on standard input; the password never comes back.
    let out = ws
        .cmd()
        .args([
            "--json",
            "trunk",
            "add",
            "--pbx",
            "demo-pbx",
            "--name",
            "backup",
            "--host",
            "sip.backup.example",
            "--register",
            "true",
            "--username",
            "acme-b",
            "--password-stdin",
            "--tenants",
            "acme-dental",
        ])
        .write_stdin("Backup-Secret-9\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("Backup-Secret-9"));
    let k: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(k["password_set"], true);
    // One rule in front, then a bad rule refused with its field.
    let p = ws.json(&[
        "policy",
        "rule-add",
        "--tenant",
        "acme-dental",
        "--policy",
        "default",
        "--at",
        "1",
        "_0800X. allow trunks=backup",
    ]);
    assert_eq!(p["rules"][0]["pattern"], "_0800X.");
    assert_eq!(p["rules"].as_array().unwrap().len(), 5);
    let e = ws.fails(
        &[
            "policy",
            "rule-add",
            "--tenant",
            "acme-dental",
            "--policy",
            "default",
            "_0X.;x allow trunks=backup",
        ],
        3,
    );
    assert_eq!(
        e["error"]["field"], "rules[6].pattern",
        "the new rule, at the end"
    );
    ws.fails(&["trunk", "remove", "--pbx", "demo-pbx", "backup"], 5);

    // Render into a folder that lines up with /etc/asterisk; secrets masked by default.
    let out_dir = ws.dir.path().join("etc-asterisk");
    let r = ws.json(&[
        "render",
        "--pbx",
        "demo-pbx",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{r}");
    let tenant =
        std::fs::read_to_string(out_dir.join("extensions.d/pbxdesk/tenant-acme-dental.conf"))
            .unwrap();
    assert!(tenant.starts_with("; Generated by pbxdesk"));
    assert!(tenant.contains("exten => _0800X.,1,Gosub(pbxdesk_dialout,s,1(${FILTER(0123456789*#+,${EXTEN})},acme-dental,pbxdesk-trunk-backup))"), "{tenant}");
    let trunk = std::fs::read_to_string(out_dir.join("pjsip.d/pbxdesk/trunk-backup.conf")).unwrap();
    assert!(trunk.contains("password = ********") && !trunk.contains("Backup-Secret-9"));
    let rows: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("realtime/ps_endpoints.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 16);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["password"] == "********"));
    // Writing again replaces; a folder pbxdesk did not write is refused.
    ws.json(&[
        "render",
        "--pbx",
        "demo-pbx",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let foreign = ws.dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("extensions.conf"), "[general]\n").unwrap();
    ws.fails(
        &[
            "render",
            "--pbx",
            "demo-pbx",
            "--out",
            foreign.to_str().unwrap(),
        ],
        5,
    );

    // Diff: nothing applied yet, so everything is new; never a secret.
    let d = ws.json(&["diff", "--pbx", "demo-pbx"]);
    assert_eq!(d["last_applied_at"], Value::Null);
    assert_eq!(d["diff"]["rows_added"].as_array().unwrap().len(), 16);
    assert!(!d.to_string().contains("Backup-Secret-9"));
    let human = ws
        .cmd()
        .args(["diff", "--pbx", "demo-pbx"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("+++ b/extensions.d/pbxdesk/tenant-acme-dental.conf"),
        "{text}"
    );

    // Trace an inbound number and an outbound call.
    let t = ws.json(&["trace", "--pbx", "demo-pbx", "--number", "+41445551000"]);
    assert_eq!(t["tenant"], "acme-dental");
    assert_eq!(t["path"][1]["kind"], "user");
    let t = ws.json(&[
        "trace",
        "--pbx",
        "demo-pbx",
        "--number",
        "0800123456",
        "--from",
        "acme-dental/101",
    ]);
    assert!(
        t["path"][2]["title"]
            .as_str()
            .unwrap()
            .contains("through 1 trunk"),
        "{t}"
    );
    assert!(t["path"][2]["detail"]
        .as_str()
        .unwrap()
        .starts_with("backup"));
    let t = ws.json(&[
        "trace", "--pbx", "demo-pbx", "--number", "112", "--from", "1000",
    ]);
    assert_eq!(t["path"][1]["kind"], "emergency");
    ws.fails(
        &[
            "trace",
            "--pbx",
            "demo-pbx",
            "--number",
            "0800$(id)",
            "--from",
            "101",
        ],
        3,
    );
}

#[test]
fn apply_dry_run_previews_offline_and_an_untrusted_pbx_is_refused() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let r = ws.json(&["apply", "--pbx", "demo-pbx", "--dry-run"]);
    assert_eq!(r["outcome"], "dry_run");
    assert_eq!(r["diff"]["rows_added"].as_array().unwrap().len(), 16);
    assert!(
        !r.to_string().contains("demo-swisscom-Trunk-1"),
        "no secret in the preview"
    );
    // Nothing applied: the diff still shows everything as new.
    assert_eq!(
        ws.json(&["diff", "--pbx", "demo-pbx"])["last_applied_at"],
        Value::Null
    );
    // A real apply needs a trusted host key; nothing is contacted before. A refusal has its
    // own exit code and kind, and the CLI's hint names the command that fixes it.
    let e = ws.fails(&["apply", "--pbx", "demo-pbx"], 10);
    assert_eq!(e["error"]["code"], "refused", "{e}");
    assert_eq!(e["error"]["refusal"]["kind"], "untrusted", "{e}");
    assert!(
        e["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("pbxdesk pbx trust demo-pbx"),
        "{e}"
    );
    // The fleet: the demo PBX is pending (never applied) and refused (untrusted): one line,
    // the exit code of the worst; --pbx and --all-pending exclude each other.
    let f = ws.fails(&["apply", "--all-pending", "--parallel", "2"], 10);
    assert_eq!(f["lines"][0]["pbx"], "demo-pbx", "{f}");
    assert_eq!(f["lines"][0]["outcome"], "refused", "{f}");
    assert_eq!(f["worst"], "refused", "{f}");
    let out = ws
        .cmd()
        .args(["apply", "--all-pending", "--pbx", "demo-pbx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    // A confirm window the PBX's rollback cannot keep is refused with the field and the range.
    for bad in ["1", "601"] {
        let e = ws.fails(&["apply", "--pbx", "demo-pbx", "--confirm-seconds", bad], 3);
        assert_eq!(e["error"]["field"], "confirm_seconds", "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("2 to 600"),
            "{e}"
        );
    }
    // Nothing applied yet: there is no earlier apply to go back to.
    let e = ws.fails(
        &["apply", "--pbx", "demo-pbx", "--previous", "--dry-run"],
        10,
    );
    assert!(e.to_string().contains("no earlier apply"), "{e}");
    // The history lists the two refused attempts (the single one and the fleet's), not the
    // dry runs nor the refused confirm windows, and nothing applied.
    let h = ws.json(&["history", "--pbx", "demo-pbx"]);
    let outcomes: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["refused", "refused"], "{h}");
    assert!(
        h[0]["summary"].as_str().unwrap().contains("not trusted"),
        "{h}"
    );
}

/// `pbxdesk diff | head`, `| grep -q`: a reader that goes away ends the output quietly, with no
/// panic ("failed printing to stdout: Broken pipe") and the command's own exit code.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let pbx = ["--pbx", "demo-pbx"];
    let cases: Vec<Vec<&str>> = vec![
        [&["diff"][..], &pbx].concat(),
        vec!["trunk", "list"],
        vec!["did", "list", "--tenant", "acme-dental"],
        [&["trace"][..], &pbx, &["--number", "+41445551200"]].concat(),
        vec!["tenant", "list"],
        vec!["user", "list", "--tenant", "acme-dental"],
        vec!["audit", "list"],
        [&["history"][..], &pbx].concat(),
        vec!["--json", "diff", "--pbx", "demo-pbx"],
    ];
    for args in cases {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("pbxdesk"));
        c.arg("--workspace")
            .arg(ws.dir.path().join("sub/ws.sqlite"))
            .args(&args)
            .env_remove("PBXDESK_DATABASE_URL")
            .env_remove("PBXDESK_PASSPHRASE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        // The reader is gone before the first byte is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// `pbx check` with a failing check exits 9 (scripts branch on it), and `--json` carries each
/// check's outcome. The demo PBX (pbx.example.net) does not resolve: that check fails first.
#[test]
fn pbx_check_exits_non_zero_when_a_check_fails() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let lines = ws.fails(&["pbx", "check", "demo-pbx"], 9);
    let lines = lines.as_array().expect("one JSON array of checks");
    assert!(!lines.is_empty());
    let failed: Vec<&Value> = lines.iter().filter(|l| l["ok"] == false).collect();
    assert!(!failed.is_empty(), "{lines:?}");
    assert!(failed
        .iter()
        .all(|l| l["item"].is_string() && l["detail"].is_string()));
    // The same without --json: the FAIL lines on stdout, exit 9.
    let out = ws
        .cmd()
        .args(["pbx", "check", "demo-pbx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}

#[test]
fn pbx_status_is_refused_untrusted_and_exits_11_when_the_pbx_is_out_of_reach() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    // An untrusted host key: refused before anything is contacted, with the remedy.
    let e = ws.fails(&["pbx", "status", "demo-pbx"], 10);
    assert_eq!(e["error"]["refusal"]["kind"], "untrusted", "{e}");
    assert!(e["error"]["hint"].as_str().unwrap().contains("pbx trust"));
    // A port nothing listens on, a pinned key, an AMI user: unreachable, exit 11.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let mut c = ws.cmd();
    c.args([
        "--json",
        "pbx",
        "update",
        "demo-pbx",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--ami-user",
        "pbx",
        "--ami-secret-stdin",
        "--connect-timeout-ms",
        "2000",
    ])
    .write_stdin("pbx-secret-1\n");
    assert!(c.output().unwrap().status.success());
    ws.json(&[
        "pbx",
        "trust",
        "demo-pbx",
        "--fingerprint",
        "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
    ]);
    let e = ws.fails(&["pbx", "status", "demo-pbx"], 11);
    assert_eq!(e["error"]["code"], "unreachable", "{e}");
    // `status --pbx` is the same command.
    let e = ws.fails(&["status", "--pbx", "demo-pbx"], 11);
    assert_eq!(e["error"]["code"], "unreachable", "{e}");
    // DND and forwards set while the PBX is out of reach: kept, and shown pending.
    let u = ws.json(&[
        "user",
        "update",
        "acme-dental/100",
        "--dnd",
        "true",
        "--forward-busy",
        "+41445551234",
        "--forward-no-answer",
        "101",
    ]);
    assert_eq!(u["dnd"], true, "{u}");
    assert_eq!(u["forward_busy"], "+41445551234");
    assert_eq!(u["forward_no_answer"], "101");
    assert_eq!(u["features_pending"], true, "{u}");
    // A target that is neither an extension nor E.164 is refused, naming its field.
    let e = ws.fails(
        &[
            "user",
            "update",
            "acme-dental/100",
            "--forward-always",
            "91&PJSIP/x",
        ],
        3,
    );
    assert_eq!(e["error"]["field"], "forward_always", "{e}");
}

/// `pbxdesk serve` answers HTTP on loopback (its OpenAPI document, a login refused in the
/// API's error shape).
#[test]
fn serve_answers_http_on_loopback() {
    use std::io::{Read, Write};
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = assert_cmd::cargo::cargo_bin("pbxdesk");
    let mut server = std::process::Command::new(bin)
        .arg("--workspace")
        .arg(ws.dir.path().join("sub/ws.sqlite"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("PBXDESK_DATABASE_URL")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ask = |request: &str| -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let t = std::time::Instant::now();
    let doc = loop {
        if let Some(r) =
            ask("GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        {
            break r;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "the server never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let body = r#"{"username":"nobody","password":"x"}"#;
    let login = ask(&format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(doc.starts_with("HTTP/1.1 200"), "{doc}");
    assert!(doc.contains("\"openapi\": \"3.1"), "{doc}");
    assert!(login.starts_with("HTTP/1.1 401"), "{login}");
    assert!(login.contains("\"code\":\"unauthenticated\""), "{login}");
}

#[test]
fn api_tokens_are_made_listed_and_revoked_from_the_cli() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let made = ws.json(&[
        "token",
        "create",
        "psa",
        "--role",
        "tenant_admin",
        "--tenant",
        "acme-dental",
    ]);
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.starts_with("pbxt_"), "{made}");
    assert_eq!(made["token"]["tenant"], "acme-dental");
    let e = ws.fails(&["token", "create", "more", "--role", "msp_admin"], 3);
    assert_eq!(e["error"]["field"], "role", "{e}");
    let list = ws.json(&["token", "list"]);
    assert_eq!(list[0]["name"], "psa");
    assert!(
        !list.to_string().contains(secret),
        "never listed with its secret"
    );
    let revoked = ws.json(&["token", "revoke", "psa"]);
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");
    let e = ws.fails(&["token", "revoke", "psa"], 4);
    assert_eq!(e["error"]["code"], "not_found", "{e}");
}

/// A free TCP port on this machine.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `pbxdesk serve` with `args` and returns it with the fingerprint it printed.
fn serve_tls(ws: &Ws, args: &[&str]) -> (std::process::Child, String, bool) {
    use std::io::BufRead;
    let mut server = std::process::Command::new(assert_cmd::cargo::cargo_bin("pbxdesk"))
        .arg("--workspace")
        .arg(ws.dir.path().join("sub/ws.sqlite"))
        .arg("serve")
        .args(args)
        .env_remove("PBXDESK_DATABASE_URL")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if let Some((head, fp)) = line.split_once("fingerprint") {
            let made = fp.contains("made now");
            let fp = fp.rsplit(": ").next().unwrap().trim().to_owned();
            assert!(head.starts_with("pbxdesk: certificate SHA-256"), "{said}");
            // The rest of its words go nowhere, so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (server, fp, made);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("no fingerprint printed: {said}");
}

/// What curl gets at `url`, trusting only `cacert` (None: the request fails).
fn curl(url: &str, cacert: &std::path::Path) -> Option<String> {
    let t = std::time::Instant::now();
    loop {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(cacert)
            .arg(url)
            .output()
            .unwrap();
        if out.status.success() {
            return Some(String::from_utf8(out.stdout).unwrap());
        }
        // 7: not listening yet.
        if out.status.code() != Some(7) || t.elapsed() > std::time::Duration::from_secs(20) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// HTTPS: a self-signed certificate made on the first start with --tls, kept (the same
/// fingerprint on the next start), served on any address but loopback without asking; the
/// fingerprint printed is the certificate's; plain HTTP on its port gets no answer.
#[test]
fn serve_speaks_tls_with_a_kept_self_signed_certificate_off_loopback() {
    use std::io::{Read, Write};
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    let out = ws
        .cmd()
        .args(["serve", "--tls-cert", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--tls-cert needs --tls-key");

    let port = free_port();
    let (mut server, fp, made) =
        serve_tls(&ws, &["--listen", &format!("127.0.0.1:{port}"), "--tls"]);
    assert!(made, "made on the first start");
    let cert = ws.dir.path().join("sub/ws.sqlite.tls/cert.pem");
    let doc = curl(
        &format!("https://127.0.0.1:{port}/api/v1/openapi.json"),
        &cert,
    );
    let openssl = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let plain = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        s.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Ok(out)
    });
    let _ = server.kill();
    let _ = server.wait();
    let doc = doc.expect("curl trusting the printed certificate gets the document");
    assert!(doc.contains("\"openapi\": \"3.1"), "{doc}");
    let openssl = String::from_utf8(openssl.stdout).unwrap();
    assert_eq!(openssl.trim().rsplit('=').next().unwrap(), fp, "{openssl}");
    let plain = plain.unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&plain).contains("200 OK"),
        "no plain HTTP on a TLS port"
    );

    // Off loopback it is HTTPS without asking, with the certificate kept from before.
    let port = free_port();
    let (mut server, again, made) = serve_tls(&ws, &["--listen", &format!("0.0.0.0:{port}")]);
    let doc = curl(
        &format!("https://127.0.0.1:{port}/api/v1/openapi.json"),
        &cert,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(!made, "kept, not made again");
    assert_eq!(again, fp);
    assert!(doc.is_some_and(|d| d.contains("\"openapi\"")));
}

/// A CORS origin that is not `scheme://host[:port]` (a wildcard, a path) is refused with its
/// field before anything is served.
#[test]
fn serve_refuses_a_cors_origin_that_is_not_one() {
    let ws = Ws::new();
    ws.json(&["demo", "seed"]);
    for bad in ["*", "https://psa.example.com/app"] {
        let e = ws.fails(
            &["serve", "--listen", "127.0.0.1:0", "--cors-origin", bad],
            3,
        );
        assert_eq!(e["error"]["field"], "cors_origin", "{bad}: {e}");
    }
}

#[test]
fn import_and_export_users_and_numbers_from_csv() {
    let ws = Ws::new();
    ws.json(&["pbx", "add", "--name", "pbx1", "--host", "pbx1.example.net"]);
    ws.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--pbx",
        "pbx1",
        "--ext-range",
        "100-199",
    ]);
    let file = ws.dir.path().join("users.csv");
    std::fs::write(
        &file,
        "\u{feff}Email;Name;Extension\r\nann@acme.example;Ann;\r\nbob@acme.example;\"Bob; B.\";120\r\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let dry = ws.json(&["import", "users", "--tenant", "acme", f, "--dry-run"]);
    assert_eq!(
        (dry["created"].as_u64(), dry["written"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(
        ws.json(&["user", "list", "--tenant", "acme"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let done = ws.json(&["import", "users", "--tenant", "acme", f]);
    assert_eq!(done["written"], true);
    assert_eq!(done["rows"][0]["extension"], 100);
    // People get a summary and the rows; the export goes to a file and comes back unchanged.
    let out = ws.dir.path().join("export.csv");
    let text = ws
        .cmd()
        .args([
            "export",
            "users",
            "--tenant",
            "acme",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("wrote 2 row(s)"));
    let again = ws
        .cmd()
        .args(["import", "users", "--tenant", "acme", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("created 0, updated 0, 2 unchanged"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    // A bad file exits 3 with every problem listed, and nothing is written.
    std::fs::write(
        &file,
        "email,name,ring_seconds\nx@acme.example,X,999\n,Y,\n",
    )
    .unwrap();
    let bad = ws.fails(&["import", "users", "--tenant", "acme", f], 3);
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
    assert_eq!(bad["errors"][0]["column"], "ring_seconds");
    assert_eq!(
        ws.json(&["user", "list", "--tenant", "acme"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Numbers from standard input.
    let out = ws
        .cmd()
        .args(["--json", "import", "dids", "--tenant", "acme", "-"])
        .write_stdin("number,destination\n+41445551234,user:100\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let csv = ws
        .cmd()
        .args(["export", "dids", "--tenant", "acme"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout),
        "number,label,destination,trunk\n+41445551234,+41445551234,user:100,\n"
    );
}

#[test]
fn audit_search_filters_and_pages_and_exports_csv() {
    let ws = Ws::new();
    ws.json(&["pbx", "add", "--name", "pbx1", "--host", "pbx1.example.net"]);
    ws.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--pbx",
        "pbx1",
        "--ext-range",
        "100-199",
    ]);
    for i in 0..3 {
        ws.json(&[
            "user",
            "create",
            "--tenant",
            "acme",
            "--name",
            &format!("U{i}"),
            "--email",
            &format!("u{i}@acme.example"),
        ]);
    }
    let p = ws.json(&["audit", "search", "--kind", "user", "--limit", "2"]);
    assert_eq!(p["entries"].as_array().unwrap().len(), 2);
    assert_eq!(p["entries"][0]["entity_id"], "acme/102");
    assert!(p["entries"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "email"));
    let before = p["next_before"].as_i64().unwrap().to_string();
    let p2 = ws.json(&[
        "audit", "search", "--kind", "user", "--limit", "2", "--before", &before,
    ]);
    assert_eq!(p2["entries"].as_array().unwrap().len(), 1);
    assert!(p2["next_before"].is_null());
    let none = ws.json(&["audit", "search", "--since", "2999-01-01"]);
    assert!(none["entries"].as_array().unwrap().is_empty());
    let bad = ws.fails(&["audit", "search", "--since", "yesterday"], 3);
    assert_eq!(bad["error"]["field"], "since", "{bad}");
    let csv = ws
        .cmd()
        .args(["audit", "export", "--action", "user.create"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&csv.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.starts_with("time,actor,via,action,entity_type,entity_id,tenant,changes\n"));
    assert!(
        text.contains(",cli,user.create,user,acme/100,acme,"),
        "{text}"
    );
}

/// `pbxdesk --version` is the workspace's version, as the app's About and bundle are
/// (src-tauri/tests/version.rs).
#[test]
fn the_version_is_the_workspaces() {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("pbxdesk"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pbxdesk {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Ring groups from the command line: made, listed, shown, changed, routed to, traced, and
/// refused where they must be (with the exit codes of validation and conflict).
#[test]
fn ring_groups_from_the_command_line() {
    let ws = Ws::new();
    ws.json(&["pbx", "add", "--name", "pbx1", "--host", "pbx1.example.net"]);
    ws.json(&[
        "tenant",
        "create",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--pbx",
        "pbx1",
        "--ext-range",
        "100-199",
    ]);
    for (name, email) in [("Ann", "ann@acme.example"), ("Bob", "bob@acme.example")] {
        ws.json(&[
            "user", "create", "--tenant", "acme", "--name", name, "--email", email,
        ]);
    }
    let g = ws.json(&[
        "ring-group",
        "create",
        "--tenant",
        "acme",
        "--name",
        "Front desk",
        "--members",
        "101,100",
        "--strategy",
        "in_order",
        "--no-answer",
        "voicemail:100",
    ]);
    assert_eq!(g["extension"], 102);
    assert_eq!(g["strategy"], "in_order");
    assert_eq!(g["members"][0]["extension"], 101);
    let list = ws.json(&["ring-group", "list", "--tenant", "acme"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let human = ws
        .cmd()
        .args(["ring-group", "show", "acme/102"])
        .output()
        .unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains("1. 101 Bob") && human.contains("2. 100 Ann"),
        "{human}"
    );
    let g = ws.json(&[
        "ring-group",
        "update",
        "acme/102",
        "--strategy",
        "round_robin",
        "--total-seconds",
        "90",
    ]);
    assert_eq!(
        (g["strategy"].as_str(), g["total_seconds"].as_u64()),
        (Some("round_robin"), Some(90))
    );
    ws.json(&[
        "did",
        "add",
        "--tenant",
        "acme",
        "--number",
        "+41445551200",
        "--destination",
        "ring_group:102",
    ]);
    let t = ws.json(&["trace", "--pbx", "pbx1", "--number", "+41445551200"]);
    assert!(
        t["path"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "ring_group"),
        "{t}"
    );

    // Bad input: every field named; a group something routes to is kept.
    let e = ws.fails(
        &[
            "ring-group",
            "create",
            "--tenant",
            "acme",
            "--name",
            "x\ny",
            "--members",
            "100,100",
            "--member-seconds",
            "0",
        ],
        3,
    );
    let fields: Vec<&str> = e["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"members") && fields.contains(&"member_seconds"),
        "{e}"
    );
    ws.fails(&["ring-group", "show", "acme/x"], 3);
    ws.fails(&["ring-group", "show", "acme/150"], 4);
    let e = ws.fails(&["ring-group", "delete", "acme/102"], 5);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("+41445551200"),
        "{e}"
    );
    ws.json(&["did", "update", "+41445551200", "--destination", "user:100"]);
    ws.json(&["ring-group", "delete", "acme/102"]);
    assert!(ws
        .json(&["ring-group", "list", "--tenant", "acme"])
        .as_array()
        .unwrap()
        .is_empty());
}
