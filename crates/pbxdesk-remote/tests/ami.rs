//! The AMI client against a test double of Asterisk 22's manager that replays the real
//! captures in `fixtures/asterisk22/ami/` byte for byte (only the ActionID is the client's),
//! plus the failure cases: a wrong secret, slow answers, a connection dropped mid-list.
//! Asterisk itself cannot be installed here; this double is the honest stand-in.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ami::{AmiError, Client, Message, Options, Parser};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asterisk22/ami")
}

/// One captured exchange: the request's headers (without ActionID), the response bytes and
/// the ActionID used in the capture.
struct Exchange {
    session: String,
    request: Vec<(String, String)>,
    response: Vec<u8>,
    captured_id: String,
}

fn load() -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let Some(stem) = name.strip_suffix(".request.raw") else {
            continue;
        };
        let mut p = Parser::default();
        p.push(&std::fs::read(fixtures().join(&name)).unwrap());
        let msg = p.next_message().unwrap().unwrap();
        let captured_id = msg.get("ActionID").unwrap().to_owned();
        let request = msg
            .headers()
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID"))
            .cloned()
            .collect();
        let response =
            std::fs::read(fixtures().join(format!("{stem}.response.raw"))).unwrap_or_default();
        out.push(Exchange {
            session: stem.split('_').next().unwrap().to_owned(),
            request,
            response,
            captured_id,
        });
    }
    out
}

#[derive(Clone, Default)]
struct Behaviour {
    /// Which capture sessions answer, first match wins (e.g. ["s1"], ["s4", "s1"]).
    sessions: Vec<&'static str>,
    delay: Duration,
    /// Close the socket after sending this many bytes of a list response.
    drop_list_after: Option<usize>,
}

/// Starts the double on a loopback port; returns its address and the actions it received.
async fn start(b: Behaviour) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let exchanges = Arc::new(load());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (b, ex, seen) = (b.clone(), exchanges.clone(), seen2.clone());
            tokio::spawn(async move {
                // s1_00: the banner.
                sock.write_all(
                    &std::fs::read(fixtures().join("s1_00_banner.response.raw")).unwrap(),
                )
                .await
                .unwrap();
                let mut parser = Parser::default();
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    parser.push(&buf[..n]);
                    while let Some(req) = parser.next_message().unwrap() {
                        let action = req.get("Action").unwrap_or("").to_owned();
                        seen.lock().unwrap().push(action.clone());
                        let id = req.get("ActionID").unwrap_or("").to_owned();
                        tokio::time::sleep(b.delay).await;
                        if action == "Login" && req.get("Secret") != Some("pbx-secret-1") {
                            // s2_badlogin_01: an error, then Asterisk closes the socket.
                            let r =
                                std::fs::read(fixtures().join("s2_badlogin_01_login.response.raw"))
                                    .unwrap();
                            sock.write_all(&with_id(&r, "b1", &id)).await.unwrap();
                            return;
                        }
                        let wanted: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .filter(|(k, _)| !k.eq_ignore_ascii_case("ActionID"))
                            .cloned()
                            .collect();
                        let found = b.sessions.iter().find_map(|s| {
                            ex.iter()
                                .find(|e| e.session == *s && same(&e.request, &wanted))
                        });
                        let reply = match found {
                            Some(e) => with_id(&e.response, &e.captured_id, &id),
                            None => format!("Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command\r\n\r\n").into_bytes(),
                        };
                        let is_list = reply.windows(16).any(|w| w == b"EventList: start");
                        match b.drop_list_after {
                            Some(n) if is_list => {
                                sock.write_all(&reply[..n.min(reply.len())]).await.unwrap();
                                return;
                            }
                            _ => sock.write_all(&reply).await.unwrap(),
                        }
                        if action == "Logoff" {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn same(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka.eq_ignore_ascii_case(kb) && va == vb)
}

fn with_id(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.replace(
        &format!("ActionID: {from}\r\n"),
        &format!("ActionID: {to}\r\n"),
    )
    .into_bytes()
}

fn secret() -> SecretString {
    SecretString::from("pbx-secret-1")
}

async fn login(addr: &str, options: Options) -> Client {
    Client::connect(addr, "pbx", &secret(), false, options)
        .await
        .unwrap()
}

#[tokio::test]
async fn login_ping_and_commands_follow_the_captures() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s1"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    c.ping().await.unwrap();
    // s1_03: one Output line per CLI line.
    let v = c.command("core show version").await.unwrap();
    assert!(v.ok);
    assert_eq!(v.lines, vec!["Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-25 22:59:41 UTC"]);
    // s1_04: a multi-line output, with an empty Output line kept.
    let d = c.command("dialplan show pbx-test").await.unwrap();
    assert!(d.ok && d.lines.len() > 3 && d.lines.iter().any(|l| l.is_empty()));
    // s1_05: a failing CLI command answers Response: Error with its output.
    let e = c.command("dialplan show no-such-context").await.unwrap();
    assert!(!e.ok);
    assert_eq!(
        e.lines[0],
        "There is no existence of 'no-such-context' context"
    );
    c.logoff().await.unwrap();
}

#[tokio::test]
async fn astdb_and_pjsip_lists() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s1"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    c.db_put("pbx", "test", "hello world").await.unwrap();
    assert_eq!(
        c.db_get("pbx", "test").await.unwrap().as_deref(),
        Some("hello world")
    );
    assert_eq!(
        c.db_get("pbx", "missing").await.unwrap(),
        None,
        "s1_09: not found is None"
    );
    c.db_del("pbx", "test").await.unwrap();
    // s1_06: no endpoints is an error response with the bare-LF quirk: an empty list.
    assert!(c.pjsip_endpoints().await.unwrap().is_empty());

    let (addr7, _) = start(Behaviour {
        sessions: vec!["s7"],
        ..Default::default()
    })
    .await;
    let c7 = login(&addr7, Options::default()).await;
    let eps: Vec<Message> = c7.pjsip_endpoints().await.unwrap();
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].get("ObjectName"), Some("100"));
    assert_eq!(eps[0].get("DeviceState"), Some("Unavailable"));
}

#[tokio::test]
async fn reload_results_as_asterisk_reports_them() {
    // s3: a good dialplan reloads with Success.
    let (ok, _) = start(Behaviour {
        sessions: vec!["s3"],
        ..Default::default()
    })
    .await;
    login(&ok, Options::default())
        .await
        .reload("pbx_config")
        .await
        .unwrap();
    // s5: an error in extensions.conf itself: Reload answers Error, the old dialplan stays.
    let (main, _) = start(Behaviour {
        sessions: vec!["s5"],
        ..Default::default()
    })
    .await;
    let err = login(&main, Options::default())
        .await
        .reload("pbx_config")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AmiError::ActionFailed { message, .. } if message == "An unknown error occurred"),
        "{err}"
    );
    // s4: a broken *included* file: Reload still says Success, but the context is gone. This
    // is why apply must verify what Asterisk loaded instead of trusting the reload.
    let (inc, _) = start(Behaviour {
        sessions: vec!["s4"],
        ..Default::default()
    })
    .await;
    let c = login(&inc, Options::default()).await;
    c.reload("pbx_config").await.unwrap();
    let shown = c.command("dialplan show pbx-test").await.unwrap();
    assert!(!shown.ok);
    assert!(shown
        .lines
        .iter()
        .any(|l| l.contains("There is no existence of 'pbx-test' context")));
}

#[tokio::test]
async fn wrong_secret_is_an_auth_failure() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s1"],
        ..Default::default()
    })
    .await;
    let err = Client::connect(
        &addr,
        "pbx",
        &SecretString::from("Not-The-S3cret"),
        false,
        Options::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AmiError::AuthFailed(ref u) if u == "pbx"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("Not-The-S3cret"),
        "the secret is never in an error"
    );
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s1"],
        delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let patient = Options {
        connect_timeout: Duration::from_secs(2),
        action_timeout: Duration::from_secs(2),
    };
    login(&addr, patient).await.ping().await.unwrap();
    let impatient = Options {
        connect_timeout: Duration::from_secs(2),
        action_timeout: Duration::from_millis(100),
    };
    let err = Client::connect(&addr, "pbx", &secret(), false, impatient)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AmiError::Timeout { ref action, .. } if action == "Login"),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_list_fails_the_action() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s7"],
        drop_list_after: Some(200),
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    let err = c.pjsip_endpoints().await.unwrap_err();
    assert!(matches!(err, AmiError::ConnectionLost), "{err}");
    assert!(matches!(c.ping().await, Err(AmiError::ConnectionLost)));
}

#[tokio::test]
async fn injected_headers_never_reach_the_socket() {
    let (addr, seen) = start(Behaviour {
        sessions: vec!["s1"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    let err = c
        .db_put("pbx", "test", "x\r\nAction: Originate")
        .await
        .unwrap_err();
    assert!(matches!(err, AmiError::InvalidInput { .. }));
    c.ping().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["Login", "Ping"]);
}

#[tokio::test]
async fn concurrent_actions_get_their_own_answers() {
    let (addr, _) = start(Behaviour {
        sessions: vec!["s1"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                c.command("core show version").await.map(|o| o.lines.len())
            } else {
                c.db_get("pbx", "missing")
                    .await
                    .map(|v| usize::from(v.is_some()))
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let n = t.await.unwrap().unwrap();
        assert_eq!(n, if i % 2 == 0 { 1 } else { 0 });
    }
}
