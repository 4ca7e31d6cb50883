//! The AMI client against a test double of Asterisk 22's manager that replays the real
//! captures in `fixtures/asterisk22/ami/` byte for byte (only the ActionID is the client's),
//! plus the failure cases: a wrong secret, slow answers, a connection dropped mid-list.
//! Asterisk itself cannot be installed here; this double is the honest stand-in.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ami::{AmiError, Client, Message, Options};
use pbxdesk_remote::testkit::{start_ami, Behaviour};
use secrecy::SecretString;
use std::time::Duration;

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
    let (addr, _) = start_ami(Behaviour {
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
    let (addr, _) = start_ami(Behaviour {
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

    let (addr7, _) = start_ami(Behaviour {
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
    let (ok, _) = start_ami(Behaviour {
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
    let (main, _) = start_ami(Behaviour {
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
    let (inc, _) = start_ami(Behaviour {
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
    let (addr, _) = start_ami(Behaviour {
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
    let (addr, _) = start_ami(Behaviour {
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
    let (addr, _) = start_ami(Behaviour {
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
    let (addr, seen) = start_ami(Behaviour {
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
    let (addr, _) = start_ami(Behaviour {
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

#[tokio::test]
async fn pjsip_contacts_follow_the_capture_and_reconnect_backs_off() {
    let (addr, _) = start_ami(Behaviour {
        sessions: vec!["s7"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    // s7_04: the contact registered by sipp, Status NonQualified.
    let contacts = c.pjsip_contacts().await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].get("Status"), Some("NonQualified"));
    // Nothing listens on a closed port: retried with backoff, then the last error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let t = std::time::Instant::now();
    let err = Client::connect_with_backoff(&closed, "pbx", &secret(), false, Options::default(), 3)
        .await
        .unwrap_err();
    assert!(matches!(err, AmiError::Connect { .. }), "{err}");
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "waited 0.5 s + 1 s between three attempts"
    );
    // A refused login is not retried.
    let t = std::time::Instant::now();
    let err = Client::connect_with_backoff(
        &addr,
        "pbx",
        &SecretString::from("nope"),
        false,
        Options::default(),
        5,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AmiError::AuthFailed(_)));
    assert!(t.elapsed() < Duration::from_millis(400));
}

/// s6: a session with events on, replayed from the captured byte stream (the transcript gives
/// the size of each chunk Asterisk sent).
#[tokio::test]
async fn events_follow_the_s6_capture() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = pbxdesk_remote::testkit::fixtures();
    let transcript = std::fs::read_to_string(dir.join("s6_events_on.transcript.txt")).unwrap();
    let stream = std::fs::read(dir.join("s6_events_on.received_stream.raw")).unwrap();
    let sizes: Vec<usize> = transcript
        .lines()
        .filter_map(|l| {
            l.strip_prefix("<<< ")
                .and_then(|r| r.strip_suffix(" bytes"))
                .map(|n| n.parse().unwrap())
        })
        .collect();
    let mut chunks = Vec::new();
    let mut at = 0;
    for n in sizes {
        chunks.push(stream[at..at + n].to_vec());
        at += n;
    }
    assert_eq!(at, stream.len());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(&chunks[0]).await.unwrap();
        let mut parser = pbxdesk_remote::ami::Parser::default();
        let mut buf = vec![0u8; 4096];
        let mut next = 1;
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            parser.push(&buf[..n]);
            while let Some(req) = parser.next_message().unwrap() {
                let id = req.get("ActionID").unwrap().to_owned();
                let text = String::from_utf8_lossy(&chunks[next]).replace(
                    &format!("ActionID: e{next}\r\n"),
                    &format!("ActionID: {id}\r\n"),
                );
                sock.write_all(text.as_bytes()).await.unwrap();
                next += 1;
            }
        }
    });
    let c = Client::connect(&addr, "pbx", &secret(), true, Options::default())
        .await
        .unwrap();
    let mut events = c.events();
    let booted = events.recv().await.unwrap();
    assert_eq!(booted.get("Event"), Some("FullyBooted"));
    assert_eq!(booted.get("Uptime"), Some("130"));
    assert_eq!(
        events.recv().await.unwrap().get("Event"),
        Some("SuccessfulAuth")
    );
    let sent = c
        .send(
            &pbxdesk_remote::ami::Action::new("UserEvent")
                .unwrap()
                .header("UserEvent", "PbxTest")
                .unwrap()
                .header("Header1", "hello")
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(sent.response.get("Message"), Some("Event Sent"));
    let user = events.recv().await.unwrap();
    assert_eq!(
        (user.get("Event"), user.get("Header1")),
        (Some("UserEvent"), Some("hello"))
    );
    c.reload("pbx_config").await.unwrap();
    let reload = events.recv().await.unwrap();
    assert_eq!(
        (reload.get("Event"), reload.get("Status")),
        (Some("Reload"), Some("0"))
    );
    c.logoff().await.unwrap();
}

/// s17 (Asterisk 22.10.1 with file trunks next to realtime phones): outbound registrations
/// are read without the `AuthDetail` Asterisk sends along with the password in clear, a
/// trunk's identify comes with its endpoint, and no password is kept or printed.
#[tokio::test]
async fn trunk_registrations_and_identify_without_their_passwords() {
    let (addr, _) = start_ami(Behaviour {
        sessions: vec!["s17", "s1"],
        ..Default::default()
    })
    .await;
    let c = login(&addr, Options::default()).await;
    let regs = c.pjsip_registrations_outbound().await.unwrap();
    let names: Vec<(&str, &str)> = regs
        .iter()
        .map(|m| (m.get("ObjectName").unwrap(), m.get("Status").unwrap()))
        .collect();
    assert_eq!(
        names,
        [("trunk-dead", "Rejected"), ("trunk-ok", "Registered")]
    );
    let shown = format!("{regs:?}");
    assert!(
        regs.iter().all(|m| m.get("Password").is_none()) && !shown.contains("trunk-secret"),
        "{shown}"
    );
    let detail = c.pjsip_endpoint("trunk-ok").await.unwrap().unwrap();
    let identify = detail
        .iter()
        .find(|m| m.get("Event") == Some("IdentifyDetail"))
        .unwrap();
    assert_eq!(identify.get("EndpointName"), Some("trunk-ok"));
    assert_eq!(identify.get("Match"), Some("127.0.0.2/255.255.255.255"));
    assert!(!format!("{detail:?}").contains("trunk-secret"));
    // A Debug of any message hides password-like headers.
    let mut p = pbxdesk_remote::ami::Parser::default();
    p.push(b"Event: AuthDetail\r\nPassword: trunk-secret\r\nUsername: u\r\n\r\n");
    let m = p.next_message().unwrap().unwrap();
    assert!(!format!("{m:?}").contains("trunk-secret"));
    c.logoff().await.unwrap();
}

/// A list answer that never ends is cut at MAX_LIST_EVENTS with an error, instead of
/// filling memory; the connection stays usable.
#[tokio::test]
async fn a_runaway_list_is_cut() {
    use pbxdesk_remote::ami::MAX_LIST_EVENTS;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"Asterisk Call Manager/11.0.0\r\n")
            .await
            .unwrap();
        let mut p = pbxdesk_remote::ami::Parser::default();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            p.push(&buf[..n]);
            while let Some(req) = p.next_message().unwrap() {
                let id = req.get("ActionID").unwrap_or("").to_owned();
                let out = match req.get("Action") {
                    Some("PJSIPShowEndpoints") => {
                        let mut s = format!(
                            "Response: Success\r\nActionID: {id}\r\nEventList: start\r\n\r\n"
                        );
                        for i in 0..=MAX_LIST_EVENTS {
                            s.push_str(&format!(
                                "Event: EndpointList\r\nActionID: {id}\r\nObjectName: e{i}\r\n\r\n"
                            ));
                        }
                        s
                    }
                    _ => format!(
                        "Response: Success\r\nActionID: {id}\r\nMessage: ok\r\nPing: Pong\r\n\r\n"
                    ),
                };
                sock.write_all(out.as_bytes()).await.unwrap();
            }
        }
    });
    let c = login(&addr, Options::default()).await;
    let e = c.pjsip_endpoints().await.unwrap_err();
    assert!(e.to_string().contains("exceeded"), "{e}");
    c.ping().await.unwrap();
}
