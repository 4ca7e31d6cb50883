//! A small async client for the Asterisk Manager Interface (AMI), written against the real
//! Asterisk 22.10.1 captures kept in `tests/fixtures/asterisk22/ami/`.
//!
//! - Messages are `Key: Value` lines ending in CRLF, closed by an empty line. Asterisk 22 sends
//!   one quirk the parser tolerates: `PJSIPShowEndpoints` with no endpoints answers
//!   `Message: No endpoints found\n\r\n\r\n` (a bare LF, then a stray empty line).
//! - Every action carries an `ActionID`; its response (and, for list actions, the events up to
//!   `EventList: Complete`) are matched back to it. Events without a pending ActionID go to the
//!   event stream.
//! - Nothing of the caller's reaches the socket unchecked: header names are tokens, and a value
//!   with CR or LF is refused, so no one can smuggle a second header or action.
//! - Limits on a message's size and header count keep a broken or hostile peer from exhausting
//!   memory. The secret never appears in errors or logs.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Largest message accepted (a `dialplan show` of a big PBX is several MiB of Output lines).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Most headers in one message.
pub const MAX_HEADERS: usize = 500_000;
/// Most events one list action may answer with (a PBX with 100,000 endpoints is far beyond
/// what pbxdesk manages; a runaway list is cut rather than filling memory).
pub const MAX_LIST_EVENTS: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum AmiError {
    #[error("cannot reach the AMI at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("the peer is not an Asterisk manager (banner: {0:?})")]
    NotAsterisk(String),
    #[error("the AMI refused the login of user {0:?} (wrong user or secret, or the user is not allowed from this address)")]
    AuthFailed(String),
    #[error("the AMI connection was lost")]
    ConnectionLost,
    #[error("the AMI did not answer {action} within {seconds} s")]
    Timeout { action: String, seconds: u64 },
    #[error("invalid AMI {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
    #[error("the AMI sent a malformed message: {0}")]
    Protocol(String),
    #[error("Asterisk answered {action} with an error: {message}")]
    ActionFailed { action: String, message: String },
}

/// One AMI message: headers in the order they came (keys may repeat, e.g. `Output`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Message {
    headers: Vec<(String, String)>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets may travel in headers (Login's Secret): never print their values.
        let mut m = f.debug_map();
        for (k, v) in &self.headers {
            // Login's Secret, and the trunk passwords AuthDetail events carry in clear
            // (PJSIPShowRegistrationsOutbound, PJSIPShowEndpoint: s17_trunks_02/04).
            if [
                "secret",
                "password",
                "md5cred",
                "oauthsecret",
                "refreshtoken",
            ]
            .iter()
            .any(|s| k.eq_ignore_ascii_case(s))
            {
                m.entry(k, &"***");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl Message {
    /// The first value of a header (names compare case-insensitively, as Asterisk does).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated header, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn is_event(&self) -> bool {
        self.get("Event").is_some()
    }

    fn is_success(&self) -> bool {
        matches!(self.get("Response"), Some(r) if r.eq_ignore_ascii_case("success") || r.eq_ignore_ascii_case("goodbye"))
    }
}

/// An action to send, with validated headers.
#[derive(Clone)]
pub struct Action {
    name: String,
    headers: Vec<(String, String)>,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Action({})", self.name)
    }
}

fn check_name(what: &'static str, s: &str) -> Result<(), AmiError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AmiError::InvalidInput {
            what,
            reason: format!("{s:?} is not a header name (letters, digits, '-', '_')"),
        })
    }
}

fn check_value(s: &str) -> Result<(), AmiError> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(AmiError::InvalidInput {
            what: "header value",
            reason: "CR, LF and NUL are not allowed (they would end the header)".into(),
        });
    }
    if s.len() > 64 * 1024 {
        return Err(AmiError::InvalidInput {
            what: "header value",
            reason: "longer than 64 KiB".into(),
        });
    }
    Ok(())
}

impl Action {
    pub fn new(name: &str) -> Result<Action, AmiError> {
        check_name("action name", name)?;
        Ok(Action {
            name: name.to_owned(),
            headers: Vec::new(),
        })
    }

    pub fn header(mut self, key: &str, value: &str) -> Result<Action, AmiError> {
        check_name("header name", key)?;
        if key.eq_ignore_ascii_case("action") || key.eq_ignore_ascii_case("actionid") {
            return Err(AmiError::InvalidInput {
                what: "header name",
                reason: format!("{key} is set by the client"),
            });
        }
        check_value(value)?;
        self.headers.push((key.to_owned(), value.to_owned()));
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wire form, with the given ActionID.
    pub fn encode(&self, action_id: &str) -> Vec<u8> {
        let mut out = format!("Action: {}\r\n", self.name);
        for (k, v) in &self.headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("ActionID: ");
        out.push_str(action_id);
        out.push_str("\r\n\r\n");
        out.into_bytes()
    }
}

/// Splits a byte stream into messages. Feed bytes with `push`, take messages with `next`.
/// Linear in what it is fed: a message's end is searched for only in bytes not searched
/// before, and taken messages are dropped from the buffer in bulk, not one by one.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Where the next message starts in `buf`.
    start: usize,
    /// Up to where `buf` was searched for a message end without finding one.
    scanned: usize,
    /// Bytes examined in all, for the test that keeps this linear.
    examined: usize,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes examined so far (each is looked at a bounded number of times).
    pub fn examined(&self) -> usize {
        self.examined
    }

    /// The next complete message, if the buffer holds one.
    pub fn next_message(&mut self) -> Result<Option<Message>, AmiError> {
        // Stray empty lines between messages (see the PJSIPShowEndpoints quirk) are skipped.
        let skip = self.buf[self.start..]
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.start += skip;
        self.scanned = self.scanned.max(self.start);
        // The end marker may straddle what was searched and what is new.
        let from = self.scanned.saturating_sub(3).max(self.start);
        let found = find(&self.buf[from..], b"\r\n\r\n");
        self.examined += found.map_or(self.buf.len() - from, |i| i + 4);
        let Some(end) = found.map(|i| from + i) else {
            self.scanned = self.buf.len();
            if self.buf.len() - self.start > MAX_MESSAGE_BYTES {
                return Err(AmiError::Protocol(format!(
                    "a message exceeded {MAX_MESSAGE_BYTES} bytes"
                )));
            }
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&self.buf[self.start..end]).into_owned();
        self.start = end + 4;
        self.scanned = self.start;
        let mut headers = Vec::new();
        for line in text.split("\r\n") {
            let line = line.trim_end_matches(['\r', '\n']);
            if headers.len() == MAX_HEADERS {
                return Err(AmiError::Protocol(format!(
                    "a message had more than {MAX_HEADERS} headers"
                )));
            }
            match line.split_once(':') {
                Some((k, v)) => headers.push((
                    k.trim().to_owned(),
                    v.strip_prefix(' ').unwrap_or(v).to_owned(),
                )),
                // Raw lines without a key are kept, under an empty key.
                None => headers.push((String::new(), line.to_owned())),
            }
        }
        Ok(Some(Message { headers }))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The transports `pjsip show transports` lists, as (name, protocol): a line
/// `Transport:  transport-udp   udp   0   0  127.0.0.1:5060` each (the header line, with
/// `<TransportId...>`, is not one; cli/pjsip_show_transports.txt, Asterisk 22.10.1).
pub fn parse_pjsip_transports(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Transport:")?;
            let mut parts = rest.split_whitespace();
            let (name, proto) = (parts.next()?, parts.next()?);
            (!name.starts_with('<')).then(|| (name.to_owned(), proto.to_ascii_lowercase()))
        })
        .collect()
}

/// What `dialplan show CONTEXT` reports for one context: the summary line Asterisk prints
/// under it (capture s3_reload_ok_04: `-= 2 extensions (6 priorities) in 1 context. =-`;
/// `cli/dialplan_show_pbx_generated.txt`: `-= 1 extension (4 priorities) ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextCount {
    pub extensions: u32,
    pub priorities: u32,
}

/// Reads the summary of `dialplan show CONTEXT`; `None` when Asterisk says the context does not
/// exist (capture s4_reload_broken_include_04: "There is no existence of 'pbx-test' context").
pub fn parse_dialplan_show(lines: &[String]) -> Option<ContextCount> {
    lines.iter().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("-= ")?;
        let (ext, rest) = rest.split_once(' ')?;
        let rest = rest
            .strip_prefix("extensions (")
            .or_else(|| rest.strip_prefix("extension ("))?;
        let (prio, rest) = rest.split_once(' ')?;
        rest.starts_with("priorit").then_some(()).and_then(|()| {
            Some(ContextCount {
                extensions: ext.parse().ok()?,
                priorities: prio.parse().ok()?,
            })
        })
    })
}

/// A response and, for list actions, the events that belong to it (without the closing
/// `...Complete` event, which is in `complete`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub response: Message,
    pub events: Vec<Message>,
    pub complete: Option<Message>,
}

/// The output of a CLI command run through AMI `Command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Asterisk 22 answers `Response: Error` when the CLI command itself failed.
    pub ok: bool,
    pub lines: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub connect_timeout: Duration,
    pub action_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(10),
            action_timeout: Duration::from_secs(15),
        }
    }
}

/// Actions sent and not yet answered, by ActionID; the reply builds up while list events come.
type Pending = HashMap<String, (oneshot::Sender<Result<Reply, AmiError>>, Option<Reply>)>;

struct Request {
    bytes: Vec<u8>,
    action_id: String,
    reply: oneshot::Sender<Result<Reply, AmiError>>,
}

/// A logged-in AMI connection. Cheap to clone; the connection closes when the last clone is
/// dropped or on `logoff`.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Message>,
    /// Subscribed before login, so the first `events()` also sees what came with the login
    /// (FullyBooted with the uptime, SuccessfulAuth).
    first_events: Arc<std::sync::Mutex<Option<broadcast::Receiver<Message>>>>,
    next_id: Arc<AtomicU64>,
    options: Options,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ami::Client")
    }
}

impl Client {
    /// Connects, checks the banner and logs in (with `Events: off` unless `events` is true).
    pub async fn connect(
        addr: &str,
        username: &str,
        secret: &SecretString,
        events: bool,
        options: Options,
    ) -> Result<Client, AmiError> {
        let connect_err = |reason: String| AmiError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = tokio::time::timeout(options.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                connect_err(format!(
                    "no answer within {} s",
                    options.connect_timeout.as_secs()
                ))
            })?
            .map_err(|e| connect_err(e.to_string()))?;
        stream.set_nodelay(true).ok();
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut banner = String::new();
        tokio::time::timeout(options.connect_timeout, read.read_line(&mut banner))
            .await
            .map_err(|_| connect_err("no banner".into()))?
            .map_err(|e| connect_err(e.to_string()))?;
        if !banner.starts_with("Asterisk Call Manager/") {
            return Err(AmiError::NotAsterisk(
                banner.trim_end().chars().take(80).collect(),
            ));
        }
        let (requests, mut rx) = mpsc::channel::<Request>(64);
        let (events_tx, first_rx) = broadcast::channel(1024);
        let events_out = events_tx.clone();
        tokio::spawn(async move {
            let mut pending: Pending = HashMap::new();
            let mut parser = Parser::default();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                tokio::select! {
                    req = rx.recv() => {
                        let Some(req) = req else { break };
                        if write.write_all(&req.bytes).await.is_err() {
                            let _ = req.reply.send(Err(AmiError::ConnectionLost));
                            break;
                        }
                        pending.insert(req.action_id, (req.reply, None));
                    }
                    n = read.read(&mut chunk) => {
                        let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                        parser.push(&chunk[..n]);
                        loop {
                            match parser.next_message() {
                                Ok(Some(msg)) => route(msg, &mut pending, &events_out),
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::warn!(error = %e, "AMI protocol error; closing");
                                    for (_, (tx, _)) in pending.drain() { let _ = tx.send(Err(AmiError::Protocol(e.to_string()))); }
                                    return;
                                }
                            }
                        }
                    }
                }
            }
            for (_, (tx, _)) in pending.drain() {
                let _ = tx.send(Err(AmiError::ConnectionLost));
            }
        });
        let client = Client {
            requests,
            events: events_tx,
            first_events: Arc::new(std::sync::Mutex::new(Some(first_rx))),
            next_id: Arc::new(AtomicU64::new(1)),
            options,
        };
        let login = Action::new("Login")?
            .header("Username", username)?
            .header("Secret", secret.expose_secret())?
            .header("Events", if events { "on" } else { "off" })?;
        let reply = client.send(&login).await?;
        if !reply.response.is_success() {
            return Err(AmiError::AuthFailed(username.to_owned()));
        }
        Ok(client)
    }

    /// Resolves when the connection is gone (closed by the PBX, cut, or a protocol error).
    pub async fn closed(&self) {
        self.requests.closed().await;
    }

    /// Events not tied to an action (only with `events = true` at login).
    pub fn events(&self) -> broadcast::Receiver<Message> {
        let first = self.first_events.lock().ok().and_then(|mut f| f.take());
        first.unwrap_or_else(|| self.events.subscribe())
    }

    /// Sends an action and waits for its response (and list events). An error response is
    /// returned as a reply, not as an `Err`: callers decide what an error means.
    pub async fn send(&self, action: &Action) -> Result<Reply, AmiError> {
        let id = format!("pbxdesk-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request {
                bytes: action.encode(&id),
                action_id: id,
                reply: tx,
            })
            .await
            .map_err(|_| AmiError::ConnectionLost)?;
        let timeout = AmiError::Timeout {
            action: action.name().to_owned(),
            seconds: self.options.action_timeout.as_secs(),
        };
        tokio::time::timeout(self.options.action_timeout, rx)
            .await
            .map_err(|_| timeout)?
            .map_err(|_| AmiError::ConnectionLost)?
    }

    pub(crate) async fn expect_success(&self, action: &Action) -> Result<Reply, AmiError> {
        let reply = self.send(action).await?;
        if reply.response.is_success() {
            Ok(reply)
        } else {
            Err(AmiError::ActionFailed {
                action: action.name().to_owned(),
                message: reply
                    .response
                    .get("Message")
                    .unwrap_or("(no message)")
                    .to_owned(),
            })
        }
    }

    pub async fn ping(&self) -> Result<(), AmiError> {
        self.expect_success(&Action::new("Ping")?).await.map(|_| ())
    }

    /// Runs a CLI command (needs the `command` class: prefer a dedicated action where one exists).
    pub async fn command(&self, command: &str) -> Result<CommandOutput, AmiError> {
        let reply = self
            .send(&Action::new("Command")?.header("Command", command)?)
            .await?;
        Ok(CommandOutput {
            ok: reply.response.is_success(),
            lines: reply.response.all("Output").map(str::to_owned).collect(),
        })
    }

    /// What Asterisk has loaded for one context (`dialplan show`, so this needs the `command`
    /// class); `None` when the context is not loaded. The name is checked first: it goes into
    /// a CLI command line.
    pub async fn dialplan_context(&self, context: &str) -> Result<Option<ContextCount>, AmiError> {
        let ok = (1..=79).contains(&context.len())
            && context
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(AmiError::InvalidInput {
                what: "context",
                reason: format!("{context:?}: 1 to 79 of letters, digits, '_', '-'"),
            });
        }
        let out = self.command(&format!("dialplan show {context}")).await?;
        Ok(parse_dialplan_show(&out.lines))
    }

    /// Reloads one module (e.g. `pbx_config`); `Err` when Asterisk reports the reload failed.
    pub async fn reload(&self, module: &str) -> Result<(), AmiError> {
        self.expect_success(&Action::new("Reload")?.header("Module", module)?)
            .await
            .map(|_| ())
    }

    /// An AstDB value, or `None` when the key does not exist.
    pub async fn db_get(&self, family: &str, key: &str) -> Result<Option<String>, AmiError> {
        let reply = self
            .send(
                &Action::new("DBGet")?
                    .header("Family", family)?
                    .header("Key", key)?,
            )
            .await?;
        if !reply.response.is_success() {
            return Ok(None);
        }
        Ok(reply
            .events
            .iter()
            .find_map(|e| e.get("Val"))
            .map(str::to_owned))
    }

    pub async fn db_put(&self, family: &str, key: &str, value: &str) -> Result<(), AmiError> {
        let a = Action::new("DBPut")?
            .header("Family", family)?
            .header("Key", key)?
            .header("Val", value)?;
        self.expect_success(&a).await.map(|_| ())
    }

    pub async fn db_del(&self, family: &str, key: &str) -> Result<(), AmiError> {
        self.expect_success(
            &Action::new("DBDel")?
                .header("Family", family)?
                .header("Key", key)?,
        )
        .await
        .map(|_| ())
    }

    /// Deletes a family and everything under it.
    pub async fn db_del_tree(&self, family: &str) -> Result<(), AmiError> {
        self.expect_success(&Action::new("DBDelTree")?.header("Family", family)?)
            .await
            .map(|_| ())
    }

    /// The PJSIP endpoints Asterisk knows (`EndpointList` events); none is not an error.
    pub async fn pjsip_endpoints(&self) -> Result<Vec<Message>, AmiError> {
        let reply = self.send(&Action::new("PJSIPShowEndpoints")?).await?;
        Ok(reply.events)
    }

    /// Registrations of PJSIP contacts (`ContactList` events).
    pub async fn pjsip_contacts(&self) -> Result<Vec<Message>, AmiError> {
        Ok(self.send(&Action::new("PJSIPShowContacts")?).await?.events)
    }

    /// Outbound registrations of trunks (`OutboundRegistrationDetail` events only: Asterisk
    /// follows each with an `AuthDetail` that carries the trunk's password in clear
    /// (s17_trunks_02), which is dropped here so it is never kept or shown).
    pub async fn pjsip_registrations_outbound(&self) -> Result<Vec<Message>, AmiError> {
        Ok(self
            .send(&Action::new("PJSIPShowRegistrationsOutbound")?)
            .await?
            .events
            .into_iter()
            .filter(|m| m.get("Event") == Some("OutboundRegistrationDetail"))
            .collect())
    }

    /// One endpoint and what belongs to it (EndpointDetail, AorDetail, IdentifyDetail, …;
    /// `AuthDetail` dropped: it carries the password). None when PJSIP does not know it
    /// (`Unable to retrieve endpoint NAME`, s7_pjsip_08).
    pub async fn pjsip_endpoint(&self, name: &str) -> Result<Option<Vec<Message>>, AmiError> {
        let reply = self
            .send(&Action::new("PJSIPShowEndpoint")?.header("Endpoint", name)?)
            .await?;
        if !reply.response.is_success() {
            return Ok(None);
        }
        Ok(Some(
            reply
                .events
                .into_iter()
                .filter(|m| m.get("Event") != Some("AuthDetail"))
                .collect(),
        ))
    }

    /// The PJSIP transports Asterisk runs, as (name, protocol) (`pjsip show transports`
    /// through Command; there is no AMI list action for transports).
    pub async fn pjsip_transports(&self) -> Result<Vec<(String, String)>, AmiError> {
        let out = self.command("pjsip show transports").await?;
        if !out.ok {
            return Err(AmiError::ActionFailed {
                action: "Command pjsip show transports".into(),
                message: out.lines.first().cloned().unwrap_or_default(),
            });
        }
        Ok(parse_pjsip_transports(&out.lines))
    }

    /// The voicemail boxes app_voicemail loaded, as (context, mailbox) (`VoicemailUsersList`,
    /// one `VoicemailUserEntry` event each with `VMContext` and `VoiceMailbox`; no capture:
    /// from Asterisk's documentation and source).
    pub async fn voicemail_boxes(&self) -> Result<Vec<(String, String)>, AmiError> {
        let reply = self.send(&Action::new("VoicemailUsersList")?).await?;
        Ok(reply
            .events
            .iter()
            .filter(|m| m.get("Event") == Some("VoicemailUserEntry"))
            .filter_map(|m| {
                Some((
                    m.get("VMContext")?.to_owned(),
                    m.get("VoiceMailbox")?.to_owned(),
                ))
            })
            .collect())
    }

    /// Asterisk's version and settings (`AsteriskVersion`, `SystemName`, …) without the
    /// `command` class.
    pub async fn core_settings(&self) -> Result<Message, AmiError> {
        Ok(self
            .expect_success(&Action::new("CoreSettings")?)
            .await?
            .response)
    }

    /// Asterisk's core status (startup and reload times, current calls).
    pub async fn core_status(&self) -> Result<Message, AmiError> {
        Ok(self
            .expect_success(&Action::new("CoreStatus")?)
            .await?
            .response)
    }

    /// Connects with retries: waits 0.5 s, 1 s, 2 s, … (at most 30 s) between attempts.
    /// A refused login is final and not retried.
    pub async fn connect_with_backoff(
        addr: &str,
        username: &str,
        secret: &SecretString,
        events: bool,
        options: Options,
        attempts: u32,
    ) -> Result<Client, AmiError> {
        let mut wait = Duration::from_millis(500);
        let mut n = 0;
        loop {
            match Client::connect(addr, username, secret, events, options.clone()).await {
                Ok(c) => return Ok(c),
                Err(
                    e @ (AmiError::AuthFailed(_)
                    | AmiError::NotAsterisk(_)
                    | AmiError::InvalidInput { .. }),
                ) => return Err(e),
                Err(e) if n + 1 >= attempts => return Err(e),
                Err(e) => {
                    tracing::info!(error = %e, attempt = n + 1, "AMI connect failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    n += 1;
                }
            }
        }
    }

    pub async fn logoff(&self) -> Result<(), AmiError> {
        self.expect_success(&Action::new("Logoff")?)
            .await
            .map(|_| ())
    }
}

/// Hands a message to the action waiting for it, or to the event stream.
fn route(msg: Message, pending: &mut Pending, events: &broadcast::Sender<Message>) {
    let Some(id) = msg.get("ActionID").map(str::to_owned) else {
        let _ = events.send(msg);
        return;
    };
    let Some((_, partial)) = pending.get_mut(&id) else {
        let _ = events.send(msg);
        return;
    };
    let done = match partial {
        None if msg.is_event() => {
            let _ = events.send(msg);
            return;
        }
        None => {
            // A list action answers "EventList: start"; its events follow.
            let list = msg
                .get("EventList")
                .is_some_and(|v| v.eq_ignore_ascii_case("start"))
                && msg.is_success();
            *partial = Some(Reply {
                response: msg,
                events: Vec::new(),
                complete: None,
            });
            !list
        }
        Some(reply) => {
            if msg
                .get("EventList")
                .is_some_and(|v| v.eq_ignore_ascii_case("complete"))
            {
                reply.complete = Some(msg);
                true
            } else if reply.events.len() >= MAX_LIST_EVENTS {
                // Cut, not kept growing: the caller gets an error; the rest of the list is
                // passed on as unsolicited events and dropped there.
                if let Some((tx, _)) = pending.remove(&id) {
                    let _ = tx.send(Err(AmiError::Protocol(format!(
                        "a list answer exceeded {MAX_LIST_EVENTS} events"
                    ))));
                }
                return;
            } else {
                reply.events.push(msg);
                false
            }
        }
    };
    if done {
        if let Some((tx, Some(reply))) = pending.remove(&id) {
            let _ = tx.send(Ok(reply));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big message fed in small pieces is searched once, not again from its start at every
    /// piece (that was quadratic up to the 32 MiB limit); many messages read at once are
    /// taken without moving the rest of the buffer each time.
    #[test]
    fn parsing_is_linear_in_what_is_fed() {
        let mut p = Parser::default();
        let mut big = b"Response: Success\r\n".to_vec();
        for i in 0..200_000 {
            big.extend_from_slice(format!("Output: line {i}\r\n").as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        let mut fed = 0;
        for piece in big.chunks(1024) {
            p.push(piece);
            fed += piece.len();
            if let Some(m) = p.next_message().unwrap() {
                assert_eq!(m.all("Output").count(), 200_000);
            }
        }
        assert!(
            p.examined() <= 2 * fed,
            "examined {} of {fed}",
            p.examined()
        );
        let mut many = Vec::new();
        for i in 0..50_000 {
            many.extend_from_slice(format!("Event: X\r\nN: {i}\r\n\r\n").as_bytes());
        }
        let mut p = Parser::default();
        p.push(&many);
        let mut n = 0;
        while p.next_message().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 50_000);
        assert!(p.examined() <= 2 * many.len());
    }

    #[test]
    fn transports_are_read_as_asterisk_22_prints_them() {
        // cli/pjsip_show_transports.txt (Asterisk 22.10.1).
        let text = "\nTransport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress....................>\n==========================================================================================\n\nTransport:  transport-udp             udp      0      0  127.0.0.1:5060\n\nObjects found: 1\n";
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(
            parse_pjsip_transports(&lines),
            vec![("transport-udp".to_owned(), "udp".to_owned())]
        );
        assert!(parse_pjsip_transports(&["No objects found.".to_owned()]).is_empty());
    }

    #[test]
    fn header_injection_is_refused() {
        for bad in ["x\r\nAction: Originate", "x\n", "x\r", "a\0b"] {
            assert!(
                Action::new("DBPut").unwrap().header("Val", bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(Action::new("DB Put").is_err());
        assert!(Action::new("DBPut").unwrap().header("Key: x", "v").is_err());
        assert!(Action::new("DBPut")
            .unwrap()
            .header("ActionID", "v")
            .is_err());
        let ok = Action::new("DBPut")
            .unwrap()
            .header("Val", "${SHELL(id)};x")
            .unwrap();
        assert_eq!(
            ok.encode("7"),
            b"Action: DBPut\r\nVal: ${SHELL(id)};x\r\nActionID: 7\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn parser_handles_split_reads_and_the_bare_lf_quirk() {
        let bytes = b"Response: Error\r\nActionID: a6\r\nMessage: No endpoints found\n\r\n\r\nResponse: Success\r\nActionID: a7\r\nMessage: ok\r\n\r\n";
        let mut p = Parser::default();
        for chunk in bytes.chunks(5) {
            p.push(chunk);
        }
        let a = p.next_message().unwrap().unwrap();
        assert_eq!(a.get("message"), Some("No endpoints found"));
        let b = p.next_message().unwrap().unwrap();
        assert_eq!(b.get("ActionID"), Some("a7"));
        assert!(p.next_message().unwrap().is_none());
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let mut p = Parser::default();
        p.push(b"Action: Login\r\nSecret: hunter2\r\n\r\n");
        let m = p.next_message().unwrap().unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut p = Parser::default();
        p.push(&vec![b'a'; MAX_MESSAGE_BYTES + 1]);
        assert!(matches!(p.next_message(), Err(AmiError::Protocol(_))));
    }
}
