//! A stateful Asterisk double: it loads the dialplan from a config folder (the test sshd's
//! "/etc/asterisk") by the rules the Asterisk 22.10.1 captures show, and answers the AMI
//! actions an apply uses (Login, Ping, Reload, Command `dialplan show`/`dialplan reload`,
//! PJSIPShowEndpoints read from the realtime tables, Logoff) with the captured message shapes,
//! and `asterisk -rx "module reload …"` through a stand-in for the control socket. `tests/asterisk_double.rs` checks every captured
//! reload case comes out as Asterisk reported it.
//!
//! Loading rules (fixtures `config/` and `cli/`):
//! - a parse error in extensions.conf itself, or `#include` of something that matches no file,
//!   fails the whole reload and keeps the old dialplan (`Reload` answers `Response: Error`,
//!   `Message: An unknown error occurred`; s5, `dialplan_reload_main_file_*`);
//! - `[name` without `]` inside an included file drops the rest of that file only; the partial
//!   dialplan replaces the old one and `Reload` still answers Success (s4,
//!   `dialplan_reload_broken_*`);
//! - a line without '=' is skipped (`garbage_line`), an `exten` with an invalid priority is
//!   skipped (`bad_priority`);
//! - `#tryinclude` of nothing is fine (`empty_tryinclude_glob`);
//! - the CLI's `dialplan reload` always prints "Dialplan reloaded." (`dialplan_reload_*.txt`).

use super::dialplan::{parse_priority, ContextDef, Program};
use crate::ami::Parser;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Context -> extension pattern -> number of priorities.
pub type Dialplan = BTreeMap<String, BTreeMap<String, u32>>;

fn strip_comment(line: &str, in_block: &mut bool) -> String {
    let mut out = String::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if *in_block {
            if line[i..].starts_with("--;") {
                *in_block = false;
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        if line[i..].starts_with(";--") {
            *in_block = true;
            i += 3;
            continue;
        }
        if b[i] == b';' && (i == 0 || b[i - 1] != b'\\') {
            break;
        }
        out.push(line[i..].chars().next().unwrap_or(' '));
        i += line[i..].chars().next().map_or(1, char::len_utf8);
    }
    out
}

fn glob(etc: &Path, pattern: &str) -> Vec<PathBuf> {
    let full = etc.join(pattern);
    let (Some(dir), Some(name)) = (full.parent(), full.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Some((pre, post)) = name.split_once('*') else {
        return if full.is_file() {
            vec![full]
        } else {
            Vec::new()
        };
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                            n.starts_with(pre)
                                && n.ends_with(post)
                                && n.len() >= pre.len() + post.len()
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn valid_priority(p: &str) -> bool {
    let base = p
        .split_once('(')
        .map_or(p, |(b, l)| if l.ends_with(')') { b } else { "" });
    base == "n" || base == "hint" || (!base.is_empty() && base.bytes().all(|c| c.is_ascii_digit()))
}

struct Loader<'a> {
    etc: &'a Path,
    plan: Dialplan,
    /// The same lines with every priority, for the executor.
    program: Program,
    context: Option<String>,
    last_exten: Option<String>,
    depth: usize,
}

impl Loader<'_> {
    /// Err only for what fails a whole reload.
    fn file(&mut self, path: &Path, main: bool) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut in_block = false;
        for raw in text.lines() {
            let line = strip_comment(raw, &mut in_block);
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(rest) = t
                .strip_prefix("#include")
                .or_else(|| t.strip_prefix("#tryinclude"))
            {
                let try_only = t.starts_with("#tryinclude");
                let arg = rest.trim().trim_matches('"');
                let files = glob(self.etc, arg);
                if files.is_empty() && !try_only {
                    return Err(format!(
                        "The file '{arg}' was listed as a #include but it does not exist."
                    ));
                }
                self.depth += 1;
                if self.depth > 10 {
                    return Err("includes nested too deep".into());
                }
                for f in files {
                    self.file(&f, false)?;
                }
                self.depth -= 1;
                continue;
            }
            if let Some(rest) = t.strip_prefix('[') {
                let Some(end) = rest.find(']') else {
                    if main {
                        return Err(format!("parse error: no closing ']' in {}", path.display()));
                    }
                    // The rest of an included file is dropped; the reload goes on.
                    return Ok(());
                };
                let name = rest[..end].to_owned();
                if name != "general" && name != "globals" {
                    self.plan.entry(name.clone()).or_default();
                    self.program.entry(name.clone()).or_default();
                }
                self.context = Some(name);
                self.last_exten = None;
                continue;
            }
            let Some((key, value)) = t.split_once('=') else {
                continue; // "No '=' (equal sign)": skipped
            };
            let key = key.trim();
            let value = value.trim_start_matches('>').trim();
            let Some(ctx) = self
                .context
                .clone()
                .filter(|c| c != "general" && c != "globals")
            else {
                continue;
            };
            match key {
                "include" => {
                    self.program
                        .entry(ctx)
                        .or_default()
                        .includes
                        .push(value.to_owned());
                }
                "exten" => {
                    let mut parts = value.splitn(3, ',');
                    let (Some(pat), Some(prio), Some(app)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    if !valid_priority(prio.trim()) {
                        continue; // "Invalid priority/label"
                    }
                    let pat = pat.trim().to_owned();
                    self.add_priority(&ctx, &pat, prio.trim(), app);
                    self.last_exten = Some(pat);
                }
                "same" => {
                    let Some((prio, app)) = value.split_once(',') else {
                        continue;
                    };
                    if !valid_priority(prio.trim()) {
                        continue;
                    }
                    if let Some(pat) = self.last_exten.clone() {
                        self.add_priority(&ctx, &pat, prio.trim(), app);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Loader<'_> {
    /// One priority of `ctx`/`pat`: counted for `dialplan show`, kept for the executor.
    fn add_priority(&mut self, ctx: &str, pat: &str, prio: &str, app: &str) {
        *self
            .plan
            .entry(ctx.to_owned())
            .or_default()
            .entry(pat.to_owned())
            .or_default() += 1;
        let c: &mut ContextDef = self.program.entry(ctx.to_owned()).or_default();
        let p = parse_priority(prio, app);
        match c.extensions.iter_mut().find(|(x, _)| x == pat) {
            Some((_, v)) => v.push(p),
            None => c.extensions.push((pat.to_owned(), vec![p])),
        }
    }
}

fn load(etc: &Path) -> Result<(Dialplan, Program), String> {
    let mut l = Loader {
        etc,
        plan: Dialplan::new(),
        program: Program::new(),
        context: None,
        last_exten: None,
        depth: 0,
    };
    l.file(&etc.join("extensions.conf"), true)?;
    Ok((l.plan, l.program))
}

/// Loads `extensions.conf` from `etc` as pbx_config would.
pub fn load_dialplan(etc: &Path) -> Result<Dialplan, String> {
    load(etc).map(|(plan, _)| plan)
}

/// The same load with every priority kept, for [`super::dialplan::Executor`].
pub fn load_program(etc: &Path) -> Result<Program, String> {
    load(etc).map(|(_, program)| program)
}

/// PJSIP objects of the config files (pjsip.conf and what it includes), by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileObjects {
    pub endpoints: Vec<String>,
    /// name, server_uri, client_uri.
    pub registrations: Vec<(String, String, String)>,
    /// name, endpoint, match.
    pub identifies: Vec<(String, String, String)>,
    /// name, protocol, bind.
    pub transports: Vec<(String, String, String)>,
}

/// The lines of a config file and of what it `#include`s / `#tryinclude`s (globs, nested up
/// to 10 deep), comments removed and trimmed, in the order Asterisk reads them (an include is
/// textual). A missing file has no lines.
fn config_lines(etc: &Path, name: &str) -> Vec<String> {
    fn file(etc: &Path, path: &Path, out: &mut Vec<String>, depth: usize) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let mut in_block = false;
        for raw in text.lines() {
            let line = strip_comment(raw, &mut in_block);
            let t = line.trim();
            if let Some(rest) = t
                .strip_prefix("#include")
                .or_else(|| t.strip_prefix("#tryinclude"))
            {
                if depth < 10 {
                    for f in glob(etc, rest.trim().trim_matches('"')) {
                        file(etc, &f, out, depth + 1);
                    }
                }
            } else if !t.is_empty() {
                out.push(t.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    file(etc, &etc.join(name), &mut out, 0);
    out
}

/// Reads pjsip.conf and what it includes as res_pjsip's config wizard does: each `[name]`
/// section with its `type =`. A missing pjsip.conf has no objects.
pub fn load_pjsip_files(etc: &Path) -> FileObjects {
    let mut sections: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for t in config_lines(etc, "pjsip.conf") {
        if let Some(rest) = t.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                sections.push((rest[..end].to_owned(), BTreeMap::new()));
            }
        } else if let Some((k, v)) = t.split_once('=') {
            if let Some((_, kv)) = sections.last_mut() {
                kv.insert(
                    k.trim().to_owned(),
                    v.trim_start_matches('>').trim().to_owned(),
                );
            }
        }
    }
    let mut out = FileObjects::default();
    for (name, kv) in sections {
        let get = |k: &str| kv.get(k).cloned().unwrap_or_default();
        match kv.get("type").map(String::as_str) {
            Some("endpoint") => out.endpoints.push(name),
            Some("registration") => {
                out.registrations
                    .push((name, get("server_uri"), get("client_uri")))
            }
            Some("identify") => out.identifies.push((name, get("endpoint"), get("match"))),
            Some("transport") => out.transports.push((name, get("protocol"), get("bind"))),
            _ => {}
        }
    }
    out
}

/// The mailboxes app_voicemail loads from voicemail.conf and what it includes, as (context,
/// mailbox, full name, e-mail): `NNN => pin,name,email,…` lines outside `[general]` and
/// `[zonemessages]`.
pub fn load_voicemail(etc: &Path) -> Vec<(String, String, String, String)> {
    let mut ctx = String::new();
    let mut out = Vec::new();
    for t in config_lines(etc, "voicemail.conf") {
        if let Some(rest) = t.strip_prefix('[') {
            if let Some(end) = rest.find(']') {
                ctx = rest[..end].to_owned();
            }
        } else if let Some((k, v)) = t.split_once("=>") {
            if ctx.is_empty() || ctx == "general" || ctx == "zonemessages" {
                continue;
            }
            let f: Vec<&str> = v.split(',').map(str::trim).collect();
            out.push((
                ctx.clone(),
                k.trim().to_owned(),
                f.get(1).copied().unwrap_or("").to_owned(),
                f.get(2).copied().unwrap_or("").to_owned(),
            ));
        }
    }
    out
}

/// `pjsip show transports` as cli/pjsip_show_transports.txt prints it.
fn transports_cli(transports: &[(String, String, String)]) -> Vec<String> {
    let mut out = vec![
        String::new(),
        "Transport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress....................>".to_owned(),
        "==========================================================================================".to_owned(),
        String::new(),
    ];
    for (name, proto, bind) in transports {
        out.push(format!(
            "Transport:  {name:<25} {proto:<8} 0      0  {bind}"
        ));
    }
    out.push(String::new());
    out.push(format!("Objects found: {}", transports.len()));
    out
}

/// Whether sorcery.conf lets `object` of `section` come from pjsip.conf: no line for it (the
/// default), or a `config,pjsip.conf` wizard among its lines (fixtures
/// `config/etc-asterisk/sorcery.conf`, realtime only: trunk files ignored, and
/// `config/sorcery.conf.trunks`: loaded).
pub fn sorcery_loads_files(sorcery: Option<&str>, section: &str, object: &str) -> bool {
    let Some(text) = sorcery else {
        return true;
    };
    let mut current = String::new();
    let mut wizards = Vec::new();
    for raw in text.lines() {
        let line = raw.split(';').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix('[') {
            current = rest.split(']').next().unwrap_or("").trim().to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            if current == section && k.trim() == object {
                wizards.push(v.trim_start_matches('>').trim().to_owned());
            }
        }
    }
    wizards.is_empty()
        || wizards.iter().any(|w| {
            let mut p = w.split(',').map(str::trim);
            p.next() == Some("config") && p.next() == Some("pjsip.conf")
        })
}

/// `dialplan show CONTEXT` as Asterisk prints it (the per-priority lines are abbreviated to one
/// line per extension; the summary line is exact).
pub fn dialplan_show(plan: &Dialplan, context: &str) -> (bool, Vec<String>) {
    let Some(exts) = plan.get(context) else {
        return (
            false,
            vec![
                format!("There is no existence of '{context}' context"),
                format!("Command 'dialplan show {context}' failed."),
            ],
        );
    };
    let mut out = vec![format!("[ Context '{context}' created by 'pbx_config' ]")];
    for (pat, n) in exts {
        out.push(format!("  '{pat}' =>          {n} priorities"));
    }
    out.push(String::new());
    let e = exts.len();
    let p: u32 = exts.values().sum();
    out.push(format!(
        "-= {e} {} ({p} {}) in 1 context. =-",
        if e == 1 { "extension" } else { "extensions" },
        if p == 1 { "priority" } else { "priorities" }
    ));
    (true, out)
}

/// A running double: its AMI address, what it has loaded, and every action it was sent
/// (`Reload:pbx_config`, `Command:dialplan show x`, `CLI:module reload pbx_config.so`, …).
pub struct AsteriskDouble {
    pub addr: String,
    /// The stand-in for Asterisk's control socket, which `asterisk -rx` talks to (see
    /// [`AsteriskDouble::install_cli`]).
    pub cli_addr: String,
    pub dialplan: Arc<Mutex<Dialplan>>,
    pub seen: Arc<Mutex<Vec<String>>>,
    pub etc: PathBuf,
    /// While set, `Reload` actions are not answered (a reload that hangs).
    pub hold_reloads: Arc<AtomicBool>,
    /// A context the next dialplan load drops, as a parse error in an included file does
    /// while the reload still answers Success (s4).
    pub drop_next: Arc<Mutex<Option<String>>>,
    /// The user and group Asterisk runs as (CoreSettings `CoreRunUser`/`CoreRunGroup`; empty,
    /// as captured in s11, when it runs as root).
    pub run_as: Arc<Mutex<(String, String)>>,
    state: Arc<State>,
}

struct State {
    etc: PathBuf,
    dialplan: Arc<Mutex<Dialplan>>,
    seen: Arc<Mutex<Vec<String>>>,
    hold: Arc<AtomicBool>,
    drop_next: Arc<Mutex<Option<String>>>,
    /// The realtime database PJSIP reads endpoints from, once given.
    realtime: Mutex<Option<sqlx::MySqlPool>>,
    /// Endpoints res_pjsip knew at its last load or reload. One inserted later is visible at
    /// once but reports DeviceState Unavailable until res_pjsip is reloaded
    /// (`pjsip_show_endpoints_after_insert_no_reload.txt`,
    /// `pjsip_show_endpoints_101_registered_inserted_after_reload.txt`).
    pjsip_loaded: Mutex<BTreeSet<String>>,
    run_as: Arc<Mutex<(String, String)>>,
    /// sorcery.conf as it was when the double started: Asterisk reads it at start only.
    sorcery: Option<String>,
    /// The config files' objects sorcery lets in, as of the last res_pjsip load.
    files: Mutex<FileObjects>,
    /// The mailboxes app_voicemail loaded (at start and at its reload).
    voicemail: Mutex<Vec<(String, String, String, String)>>,
    /// The dialplan with every priority, as of the last load, for calls run through it.
    program: Mutex<Program>,
    /// Bumped to close every AMI connection at once (a PBX restart, a cut link).
    kick: tokio::sync::watch::Sender<u64>,
    /// Whether the AMI user has `read = user` (the feature codes' events); on by default.
    read_user: AtomicBool,
    /// AstDB: `family/key` -> value.
    astdb: Arc<Mutex<BTreeMap<String, String>>>,
    /// Events for the connections logged in with events on.
    events: tokio::sync::broadcast::Sender<Vec<u8>>,
    /// The phones registered now, by endpoint (the double has no SIP stack: a test registers
    /// them with `AsteriskDouble::register`).
    contacts: Mutex<BTreeMap<String, PhoneContact>>,
}

/// A registered phone's contact, as `PJSIPShowContacts` lists it (s10_pjsip_registered_02).
#[derive(Debug, Clone)]
struct PhoneContact {
    uri: String,
    port: u16,
    user_agent: String,
    status: &'static str,
    rtt_us: Option<u64>,
}

impl State {
    /// The file objects sorcery lets PJSIP load now (read at start and at a res_pjsip reload).
    fn load_files(&self) {
        let all = load_pjsip_files(&self.etc);
        let s = self.sorcery.as_deref();
        let loaded = FileObjects {
            endpoints: if sorcery_loads_files(s, "res_pjsip", "endpoint") {
                all.endpoints
            } else {
                Vec::new()
            },
            registrations: if sorcery_loads_files(
                s,
                "res_pjsip_outbound_registration",
                "registration",
            ) {
                all.registrations
            } else {
                Vec::new()
            },
            identifies: if sorcery_loads_files(s, "res_pjsip_endpoint_identifier_ip", "identify") {
                all.identifies
            } else {
                Vec::new()
            },
            // Transports always come from pjsip.conf.
            transports: all.transports,
        };
        *self.files.lock().unwrap() = loaded;
    }

    async fn endpoint_ids(&self) -> Vec<String> {
        let pool = self.realtime.lock().unwrap().clone();
        match pool {
            Some(p) => sqlx::query_scalar::<_, String>("SELECT id FROM ps_endpoints ORDER BY id")
                .fetch_all(&p)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// `module reload <module>`: true when the module reloaded.
    /// A module reloaded; when it succeeds, every connection with events on gets the
    /// `Reload` event (s6_events_on: `Privilege: system,all`, `Module`, `Status: 0`).
    async fn reload(&self, module: &str) -> bool {
        let ok = self.reload_module_files(module).await;
        if ok {
            let ev = format!(
                "Event: Reload\r\nPrivilege: system,all\r\nModule: {module}\r\nStatus: 0\r\n\r\n"
            );
            let _ = self.events.send(ev.into_bytes());
        }
        ok
    }

    async fn reload_module_files(&self, module: &str) -> bool {
        match module {
            "pbx_config" => match load(&self.etc) {
                Ok((mut p, mut program)) => {
                    if let Some(ctx) = self.drop_next.lock().unwrap().take() {
                        p.remove(&ctx);
                        program.remove(&ctx);
                    }
                    *self.dialplan.lock().unwrap() = p;
                    *self.program.lock().unwrap() = program;
                    true
                }
                // s5_reload_broken_main_03: the old dialplan stays.
                Err(_) => false,
            },
            "res_pjsip" => {
                let ids = self.endpoint_ids().await;
                *self.pjsip_loaded.lock().unwrap() = ids.into_iter().collect();
                self.load_files();
                true
            }
            "app_voicemail" => {
                *self.voicemail.lock().unwrap() = load_voicemail(&self.etc);
                true
            }
            _ => true,
        }
    }
}

fn reply(id: &str, success: bool, message: &str, outputs: &[String]) -> Vec<u8> {
    let mut s = format!(
        "Response: {}\r\nActionID: {id}\r\nMessage: {message}\r\n",
        if success { "Success" } else { "Error" }
    );
    for o in outputs {
        s.push_str(&format!("Output: {o}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// `PJSIPShowEndpoints` as s7_pjsip_02 answers it, one `EndpointList` event per endpoint: the
/// file endpoints sorcery lets in (s17_trunks_03 mixes the file trunk with realtime phones),
/// then the realtime ones.
async fn endpoint_list(state: &State, id: &str) -> Vec<u8> {
    let files = state.files.lock().unwrap().endpoints.clone();
    let mut ids = state.endpoint_ids().await;
    ids.retain(|e| !files.contains(e));
    let mut loaded = state.pjsip_loaded.lock().unwrap().clone();
    loaded.extend(files.iter().cloned());
    let ids: Vec<String> = files.into_iter().chain(ids).collect();
    let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: A listing of Endpoints follows, presented as EndpointList events\r\n\r\n");
    for e in &ids {
        let st = if loaded.contains(e) {
            "Not in use"
        } else {
            "Unavailable"
        };
        s.push_str(&format!("Event: EndpointList\r\nActionID: {id}\r\nObjectType: endpoint\r\nObjectName: {e}\r\nTransport: transport-udp\r\nAor: {e}\r\nAuths: {e}\r\nOutboundAuths: \r\nContacts: \r\nDeviceState: {st}\r\nActiveChannels: 0\r\n\r\n"));
    }
    s.push_str(&format!(
        "Event: EndpointListComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\n\r\n",
        ids.len()
    ));
    s.into_bytes()
}

/// `PJSIPShowEndpoint NAME`: EndpointDetail, an IdentifyDetail per identify of it (s17_trunks_04),
/// EndpointDetailComplete; an unknown endpoint is `Unable to retrieve endpoint NAME`
/// (s7_pjsip_08).
async fn endpoint_detail(state: &State, id: &str, name: &str) -> Vec<u8> {
    let files = state.files.lock().unwrap().clone();
    let known = files.endpoints.iter().any(|e| e == name)
        || state.endpoint_ids().await.iter().any(|e| e == name);
    if !known {
        return reply(
            id,
            false,
            &format!("Unable to retrieve endpoint {name}"),
            &[],
        );
    }
    let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Following are Events for each object associated with the Endpoint\r\n\r\nEvent: EndpointDetail\r\nActionID: {id}\r\nObjectType: endpoint\r\nObjectName: {name}\r\n\r\n");
    let mut n = 1;
    for (ident, ep, m) in files.identifies.iter().filter(|(_, ep, _)| ep == name) {
        n += 1;
        s.push_str(&format!("Event: IdentifyDetail\r\nActionID: {id}\r\nObjectType: identify\r\nObjectName: {ident}\r\nMatch: {m}\r\nEndpoint: {ep}\r\nEndpointName: {ep}\r\n\r\n"));
    }
    s.push_str(&format!("Event: EndpointDetailComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {n}\r\n\r\n"));
    s.into_bytes()
}

/// `PJSIPShowRegistrationsOutbound` as s17_trunks_02 answers it: per registration an
/// `OutboundRegistrationDetail` (ObjectName, ServerUri, ClientUri, Status) and the `AuthDetail`
/// of its outbound_auth, which carries the password in clear as Asterisk does (so a client
/// that logs or keeps it is caught); then the Complete event with the counts. The double has no
/// SIP stack: a registration it loaded is reported `Unregistered`.
async fn registrations_outbound(state: &State, id: &str) -> Vec<u8> {
    let regs = state.files.lock().unwrap().registrations.clone();
    let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Following are Events for each Outbound registration\r\n\r\n");
    for (name, server, client) in &regs {
        s.push_str(&format!("Event: OutboundRegistrationDetail\r\nActionID: {id}\r\nObjectType: registration\r\nObjectName: {name}\r\nClientUri: {client}\r\nServerUri: {server}\r\nOutboundAuth: {name}\r\nStatus: Unregistered\r\nNextReg: 0\r\n\r\n"));
        s.push_str(&format!("Event: AuthDetail\r\nActionID: {id}\r\nObjectType: auth\r\nObjectName: {name}\r\nUsername: double-user\r\nAuthType: userpass\r\nPassword: double-registration-secret\r\n\r\n"));
    }
    s.push_str(&format!("Event: OutboundRegistrationDetailComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\nRegistered: 0\r\nNotRegistered: {}\r\n\r\n", regs.len(), regs.len()));
    s.into_bytes()
}

/// `PJSIPShowContacts` as s10_pjsip_registered_02 answers it: a `ContactList` event per contact.
fn contact_list(state: &State, id: &str) -> Vec<u8> {
    let contacts = state.contacts.lock().unwrap().clone();
    let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: A listing of Contacts follows, presented as ContactList events\r\n\r\n");
    for (endpoint, c) in &contacts {
        let rtt = c.rtt_us.map_or_else(|| "N/A".to_owned(), |r| r.to_string());
        s.push_str(&format!(
            "Event: ContactList\r\nActionID: {id}\r\nObjectType: contact\r\nObjectName: {endpoint};@0123456789abcdef\r\nViaAddr: 127.0.0.1\r\nQualifyTimeout: 3.000000\r\nQualify2xxOnly: false\r\nCallId: 1-1@127.0.0.1\r\nRegServer: \r\nPruneOnBoot: no\r\nPath: \r\nEndpoint: {endpoint}\r\nViaPort: {}\r\nAuthenticateQualify: no\r\nUri: {}\r\nQualifyFrequency: 30\r\nUserAgent: {}\r\nExpirationTime: 1796158239\r\nOutboundProxy: \r\nStatus: {}\r\nRoundtripUsec: {rtt}\r\n\r\n",
            c.port, c.uri, c.user_agent, c.status
        ));
    }
    s.push_str(&format!("Event: ContactListComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\n\r\n", contacts.len()));
    s.into_bytes()
}

/// The events of s9_events_phone_lifecycle for one contact change.
fn contact_event(endpoint: &str, uri: &str, status: &str, rtt_us: u64) -> String {
    format!("Event: ContactStatus\r\nPrivilege: system,all\r\nURI: {uri}\r\nContactStatus: {status}\r\nAOR: {endpoint}\r\nEndpointName: {endpoint}\r\nRoundtripUsec: {rtt_us}\r\n\r\n")
}

fn device_event(endpoint: &str, state: &str) -> String {
    format!("Event: DeviceStateChange\r\nPrivilege: call,all\r\nDevice: PJSIP/{endpoint}\r\nState: {state}\r\n\r\n")
}

/// The AstDB actions, answered in the shapes of s14_astdb_selfservice and s1_07..11.
fn astdb_action(
    db: &Mutex<BTreeMap<String, String>>,
    action: &str,
    req: &crate::ami::Message,
    id: &str,
) -> Vec<u8> {
    let fam = req.get("Family").unwrap_or("").to_owned();
    let key = req.get("Key").unwrap_or("").to_owned();
    let path = format!("{fam}/{key}");
    let mut db = db.lock().unwrap();
    let gone = || reply(id, false, "Database entry not found", &[]);
    match action {
        "DBPut" => {
            db.insert(path, req.get("Val").unwrap_or("").to_owned());
            reply(id, true, "Updated database successfully", &[])
        }
        "DBGet" => match db.get(&path) {
            None => gone(),
            Some(v) => format!(
                "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Result will follow\r\n\r\n\
                 Event: DBGetResponse\r\nFamily: {fam}\r\nKey: {key}\r\nVal: {v}\r\nActionID: {id}\r\n\r\n\
                 Event: DBGetComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
            )
            .into_bytes(),
        },
        "DBGetTree" => {
            let prefix = format!("{fam}/");
            let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Result will follow\r\n\r\n");
            let mut n = 0;
            for (k, v) in db.iter().filter(|(k, _)| fam.is_empty() || k.starts_with(&prefix)) {
                n += 1;
                s.push_str(&format!("Event: DBGetTreeResponse\r\nKey: /{k}\r\nVal: {v}\r\nActionID: {id}\r\n\r\n"));
            }
            s.push_str(&format!("Event: DBGetTreeComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {n}\r\n\r\n"));
            s.into_bytes()
        }
        "DBDel" => match db.remove(&path) {
            None => gone(),
            Some(_) => reply(id, true, "Key deleted successfully", &[]),
        },
        _ => {
            let prefix = format!("{fam}/");
            let before = db.len();
            db.retain(|k, _| !k.starts_with(&prefix));
            if db.len() == before {
                gone()
            } else {
                reply(id, true, "Key tree deleted successfully", &[])
            }
        }
    }
}

impl AsteriskDouble {
    /// AstDB as the double holds it now (`family/key` -> value).
    pub fn astdb(&self) -> BTreeMap<String, String> {
        self.state.astdb.lock().unwrap().clone()
    }

    /// Closes every AMI connection, as a restarting Asterisk or a cut link does; new ones are
    /// taken at once.
    pub fn drop_connections(&self) {
        self.state.kick.send_modify(|n| *n += 1);
    }

    /// Gives or takes the AMI user's `read = user`: without it, no user-class event (a
    /// feature code's, a `UserEvent` action's) reaches any connection.
    pub fn set_read_user(&self, on: bool) {
        self.state.read_user.store(on, Ordering::SeqCst);
    }

    /// Empties AstDB, as a rebuilt PBX has it.
    pub fn wipe_astdb(&self) {
        self.state.astdb.lock().unwrap().clear();
    }

    /// A phone dials `dialled`: the call runs through the loaded dialplan from the endpoint's
    /// realtime context with its `set_var`, reading and writing AstDB; each `UserEvent` it
    /// sends goes to the connections with events on, as Asterisk sends it (class `user`).
    pub async fn dial(
        &self,
        device: &str,
        dialled: &str,
    ) -> Result<super::dialplan::Outcome, String> {
        let pool = self
            .state
            .realtime
            .lock()
            .unwrap()
            .clone()
            .ok_or("no realtime database")?;
        let (context, set_var): (String, Option<String>) =
            sqlx::query_as("SELECT context, set_var FROM ps_endpoints WHERE id = ?")
                .bind(device)
                .fetch_one(&pool)
                .await
                .map_err(|e| format!("endpoint {device}: {e}"))?;
        let vars: Vec<(String, String)> = set_var
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let program = self.state.program.lock().unwrap().clone();
        let mut x = super::dialplan::Executor::new(&program);
        x.db = self.state.astdb.lock().unwrap().clone();
        let out = x.call(&context, dialled, &vars)?;
        *self.state.astdb.lock().unwrap() = x.db;
        for args in &out.user_events {
            let mut s = format!(
                "Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/{device}-00000001\r\nContext: {context}\r\nExten: {dialled}\r\nUserEvent: {}\r\n",
                args.first().map(String::as_str).unwrap_or("")
            );
            for a in args.iter().skip(1) {
                if let Some((k, v)) = a.split_once(':') {
                    s.push_str(&format!("{}: {}\r\n", k.trim(), v.trim()));
                }
            }
            s.push_str("\r\n");
            let _ = self.state.events.send(s.into_bytes());
        }
        Ok(out)
    }

    /// A phone registers as `endpoint` from 127.0.0.1:`port` and answers its first qualify,
    /// with the events s9_events_phone_lifecycle shows (NonQualified, Reachable, NOT_INUSE).
    pub fn register(&self, endpoint: &str, port: u16, user_agent: &str) {
        let uri = format!("sip:{endpoint}@127.0.0.1:{port}");
        self.state.contacts.lock().unwrap().insert(
            endpoint.to_owned(),
            PhoneContact {
                uri: uri.clone(),
                port,
                user_agent: user_agent.to_owned(),
                status: "Reachable",
                rtt_us: Some(824),
            },
        );
        let s = contact_event(endpoint, &uri, "NonQualified", 0)
            + &contact_event(endpoint, &uri, "Reachable", 824)
            + &device_event(endpoint, "NOT_INUSE");
        let _ = self.state.events.send(s.into_bytes());
    }

    /// The phone of `endpoint` stops answering its qualify (s9: Unreachable, UNAVAILABLE).
    pub fn silence(&self, endpoint: &str) {
        let uri = {
            let mut contacts = self.state.contacts.lock().unwrap();
            let Some(c) = contacts.get_mut(endpoint) else {
                return;
            };
            c.status = "Unreachable";
            c.rtt_us = None;
            c.uri.clone()
        };
        let s = contact_event(endpoint, &uri, "Unreachable", 0)
            + &device_event(endpoint, "UNAVAILABLE");
        let _ = self.state.events.send(s.into_bytes());
    }

    /// The phone of `endpoint` unregisters (s9: Removed, UNAVAILABLE).
    pub fn unregister(&self, endpoint: &str) {
        let Some(c) = self.state.contacts.lock().unwrap().remove(endpoint) else {
            return;
        };
        let s =
            contact_event(endpoint, &c.uri, "Removed", 0) + &device_event(endpoint, "UNAVAILABLE");
        let _ = self.state.events.send(s.into_bytes());
    }

    /// `module reload MODULE`, as a technician would run it on the PBX.
    pub async fn reload_module(&self, module: &str) -> bool {
        self.state.reload(module).await
    }

    /// The PJSIP file objects the double has loaded now (after sorcery's say).
    pub fn loaded_file_objects(&self) -> FileObjects {
        self.state.files.lock().unwrap().clone()
    }

    /// PJSIP reads its endpoints from this database (as res_sorcery_realtime does); the ones
    /// there now count as loaded, as at Asterisk's start.
    pub async fn use_realtime(&self, url: &str) {
        let pool = sqlx::MySqlPool::connect(url).await.unwrap();
        *self.state.realtime.lock().unwrap() = Some(pool);
        self.state.reload("res_pjsip").await;
    }

    /// Endpoints that report DeviceState Unavailable because they were inserted after the
    /// last res_pjsip reload.
    pub async fn unavailable_endpoints(&self) -> Vec<String> {
        let loaded = self.state.pjsip_loaded.lock().unwrap().clone();
        self.state
            .endpoint_ids()
            .await
            .into_iter()
            .filter(|e| !loaded.contains(e))
            .collect()
    }

    /// Writes `asterisk` into `bin` (a folder on the test sshd's PATH): like `asterisk -rx CMD`
    /// it hands CMD to this double's control port and prints the answer.
    pub fn install_cli(&self, bin: &Path) {
        std::fs::create_dir_all(bin).unwrap();
        let (host, port) = self.cli_addr.rsplit_once(':').unwrap();
        let script = format!(
            "#!/bin/bash\n# Test double of `asterisk -rx CMD`: forwards CMD to the Asterisk double.\n\
             [ \"$1\" = -rx ] || exit 2\nexec 3<>/dev/tcp/{host}/{port} || exit 1\n\
             printf '%s\\n' \"$2\" >&3\ncat <&3\n"
        );
        let path = bin.join("asterisk");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Starts the double on a loopback port, serving the dialplan under `etc` (loaded now, as at
/// Asterisk's start; a main-file error leaves it empty). AMI user secret: `pbx-secret-1`.
pub async fn start_asterisk(etc: PathBuf) -> AsteriskDouble {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cli = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cli_addr = cli.local_addr().unwrap().to_string();
    let dialplan = Arc::new(Mutex::new(load_dialplan(&etc).unwrap_or_default()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hold = Arc::new(AtomicBool::new(false));
    let drop_next = Arc::new(Mutex::new(None));
    let run_as = Arc::new(Mutex::new((String::new(), String::new())));
    let astdb = Arc::new(Mutex::new(BTreeMap::new()));
    let state = Arc::new(State {
        drop_next: drop_next.clone(),
        etc: etc.clone(),
        dialplan: dialplan.clone(),
        seen: seen.clone(),
        hold: hold.clone(),
        realtime: Mutex::new(None),
        pjsip_loaded: Mutex::new(BTreeSet::new()),
        sorcery: std::fs::read_to_string(etc.join("sorcery.conf")).ok(),
        run_as: run_as.clone(),
        files: Mutex::new(FileObjects::default()),
        voicemail: Mutex::new(load_voicemail(&etc)),
        program: Mutex::new(load_program(&etc).unwrap_or_default()),
        astdb: astdb.clone(),
        events: tokio::sync::broadcast::channel(1024).0,
        contacts: Mutex::new(BTreeMap::new()),
        kick: tokio::sync::watch::channel(0).0,
        read_user: AtomicBool::new(true),
    });
    state.load_files();
    // The control socket: one command line per connection, its output, then close.
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = cli.accept().await else {
                return;
            };
            let st = st.clone();
            tokio::spawn(async move {
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while let Ok(1) = sock.read(&mut b).await {
                    if b[0] == b'\n' || line.len() > 4096 {
                        break;
                    }
                    line.push(b[0]);
                }
                let cmd = String::from_utf8_lossy(&line).trim().to_owned();
                st.seen.lock().unwrap().push(format!("CLI:{cmd}"));
                let out = match cmd
                    .strip_prefix("module reload ")
                    .map(|m| m.trim_end_matches(".so").to_owned())
                {
                    Some(m) if st.reload(&m).await => {
                        format!("Module '{m}.so' reloaded successfully.\n")
                    }
                    Some(m) => format!("Module '{m}.so' failed to reload.\n"),
                    None => format!("No such command '{cmd}'\n"),
                };
                let _ = sock.write_all(out.as_bytes()).await;
            });
        }
    });
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let state = st.clone();
            tokio::spawn(async move {
                let (plan, seen) = (state.dialplan.clone(), state.seen.clone());
                // s1_00: the banner.
                if sock
                    .write_all(b"Asterisk Call Manager/11.0.0\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut parser = Parser::default();
                let mut buf = vec![0u8; 8192];
                // Subscribed at a login with events on.
                let mut events: Option<tokio::sync::broadcast::Receiver<Vec<u8>>> = None;
                let mut kick = state.kick.subscribe();
                loop {
                    let n = tokio::select! {
                        _ = kick.changed() => return,
                        r = sock.read(&mut buf) => match r {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        },
                        ev = async {
                            match events.as_mut() {
                                Some(rx) => rx.recv().await,
                                None => std::future::pending().await,
                            }
                        } => {
                            if let Ok(bytes) = ev {
                                // An AMI user without `read = user` gets no user-class event.
                                let user_class = bytes.windows(21).any(|w| w == b"Privilege: user,all\r\n");
                                if (!user_class || state.read_user.load(Ordering::SeqCst))
                                    && sock.write_all(&bytes).await.is_err()
                                {
                                    return;
                                }
                            }
                            continue;
                        }
                    };
                    parser.push(&buf[..n]);
                    while let Ok(Some(req)) = parser.next_message() {
                        let id = req.get("ActionID").unwrap_or("").to_owned();
                        let action = req.get("Action").unwrap_or("").to_owned();
                        let out = match action.as_str() {
                            "Login" => {
                                seen.lock().unwrap().push("Login".into());
                                if req.get("Secret") != Some("pbx-secret-1") {
                                    // s2_badlogin_01, then the socket closes.
                                    let _ = sock.write_all(&reply(&id, false, "Authentication failed", &[])).await;
                                    return;
                                }
                                if !req.get("Events").is_some_and(|e| e.eq_ignore_ascii_case("off")) {
                                    events = Some(state.events.subscribe());
                                }
                                reply(&id, true, "Authentication accepted", &[])
                            }
                            "Ping" => format!("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1764112345.000000\r\n\r\n").into_bytes(),
                            "Reload" => {
                                let module = req.get("Module").unwrap_or("").to_owned();
                                seen.lock().unwrap().push(format!("Reload:{module}"));
                                while state.hold.load(Ordering::SeqCst) {
                                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                                }
                                if state.reload(&module).await {
                                    reply(&id, true, "Module Reloaded", &[])
                                } else {
                                    reply(&id, false, "An unknown error occurred", &[])
                                }
                            }
                            "PJSIPShowEndpoints" => {
                                seen.lock().unwrap().push("PJSIPShowEndpoints".into());
                                endpoint_list(&state, &id).await
                            }
                            "CoreSettings" => {
                                seen.lock().unwrap().push("CoreSettings".into());
                                let (user, group) = state.run_as.lock().unwrap().clone();
                                // s11_core_idle_03.
                                format!("Response: Success\r\nActionID: {id}\r\nAMIversion: 11.0.0\r\nAsteriskVersion: 22.10.1\r\nSystemName: \r\nCoreMaxCalls: 0\r\nCoreMaxLoadAvg: 0.000000\r\nCoreRunUser: {user}\r\nCoreRunGroup: {group}\r\nCoreMaxFilehandles: 0\r\nCoreRealTimeEnabled: Yes\r\nCoreCDRenabled: Yes\r\nCoreHTTPenabled: No\r\nSoundsSearchCustomDir: No\r\n\r\n").into_bytes()
                            }
                            "VoicemailUsersList" => {
                                seen.lock().unwrap().push("VoicemailUsersList".into());
                                let boxes = state.voicemail.lock().unwrap().clone();
                                if boxes.is_empty() {
                                    reply(&id, true, "There are no voicemail users currently defined.", &[])
                                } else {
                                    let mut s = format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Voicemail user list will follow\r\n\r\n");
                                    for (c, b, n, e) in &boxes {
                                        s.push_str(&format!("Event: VoicemailUserEntry\r\nActionID: {id}\r\nVMContext: {c}\r\nVoiceMailbox: {b}\r\nFullname: {n}\r\nEmail: {e}\r\n\r\n"));
                                    }
                                    s.push_str(&format!("Event: VoicemailUserEntryComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {}\r\n\r\n", boxes.len()));
                                    s.into_bytes()
                                }
                            }
                            "PJSIPShowEndpoint" => {
                                let name = req.get("Endpoint").unwrap_or("").to_owned();
                                seen.lock().unwrap().push(format!("PJSIPShowEndpoint:{name}"));
                                endpoint_detail(&state, &id, &name).await
                            }
                            "PJSIPShowContacts" => {
                                seen.lock().unwrap().push("PJSIPShowContacts".into());
                                contact_list(&state, &id)
                            }
                            // s11_core_idle_02 and _04 (no call runs through the double).
                            "CoreStatus" => {
                                seen.lock().unwrap().push("CoreStatus".into());
                                format!("Response: Success\r\nActionID: {id}\r\nCoreStartupDate: 2026-12-01\r\nCoreStartupTime: 20:41:12\r\nCoreReloadDate: 2026-12-01\r\nCoreReloadTime: 20:43:48\r\nCoreCurrentCalls: 0\r\nCoreProcessedCalls: 0\r\n\r\n").into_bytes()
                            }
                            "CoreShowChannels" => {
                                seen.lock().unwrap().push("CoreShowChannels".into());
                                format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\nEvent: CoreShowChannelsComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 0\r\n\r\n").into_bytes()
                            }
                            "PJSIPShowRegistrationsOutbound" => {
                                seen.lock().unwrap().push("PJSIPShowRegistrationsOutbound".into());
                                registrations_outbound(&state, &id).await
                            }
                            "Command" => {
                                let cmd = req.get("Command").unwrap_or("").to_owned();
                                seen.lock().unwrap().push(format!("Command:{cmd}"));
                                if cmd == "pjsip show transports" {
                                    let t = state.files.lock().unwrap().transports.clone();
                                    reply(&id, true, "Command output follows", &transports_cli(&t))
                                } else if let Some(ctx) = cmd.strip_prefix("dialplan show ") {
                                    let (ok, lines) = dialplan_show(&plan.lock().unwrap(), ctx.trim());
                                    reply(&id, ok, "Command output follows", &lines)
                                } else if cmd == "core show uptime seconds" {
                                    // s18_health_02.
                                    reply(&id, true, "Command output follows", &["System uptime: 3725".to_owned(), "Last reload: 3569".to_owned()])
                                } else if cmd == "odbc show" {
                                    // s18_health_04: Asterisk's connection to the realtime
                                    // database, up while the double has one.
                                    let up = u32::from(state.realtime.lock().unwrap().is_some());
                                    let lines = ["", "ODBC DSN Settings", "-----------------", "", "  Name:   asterisk", "  DSN:    asterisk-rt", &format!("    Number of active connections: {up} (out of 5)"), "    Cache Type: stack (last release, first re-use)", "    Cache Usage: 1 cached out of 5", "    Logging: Disabled", ""];
                                    reply(&id, true, "Command output follows", &lines.map(str::to_owned))
                                } else if cmd == "dialplan reload" {
                                    if let Ok(p) = load_dialplan(&state.etc) {
                                        *plan.lock().unwrap() = p;
                                    }
                                    reply(&id, true, "Command output follows", &["Dialplan reloaded.".to_owned()])
                                } else {
                                    reply(&id, false, "Command output follows", &[format!("No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)")])
                                }
                            }
                            "DBPut" | "DBGet" | "DBGetTree" | "DBDel" | "DBDelTree" => {
                                seen.lock().unwrap().push(action.clone());
                                astdb_action(&state.astdb, &action, &req, &id)
                            }
                            "UserEvent" => {
                                // s6_events_on: "Event Sent", then the event to every
                                // connection with events on, its headers and ActionID kept.
                                seen.lock().unwrap().push("UserEvent".into());
                                let mut ev = String::from("Event: UserEvent\r\nPrivilege: user,all\r\n");
                                for (k, v) in req.headers() {
                                    if !k.eq_ignore_ascii_case("Action") {
                                        ev.push_str(&format!("{k}: {v}\r\n"));
                                    }
                                }
                                ev.push_str("\r\n");
                                let _ = state.events.send(ev.into_bytes());
                                reply(&id, true, "Event Sent", &[])
                            }
                            "Logoff" => {
                                let _ = sock.write_all(format!("Response: Goodbye\r\nActionID: {id}\r\nMessage: Thanks for all the fish.\r\n\r\n").as_bytes()).await;
                                return;
                            }
                            _ => reply(&id, false, "Invalid/unknown command", &[]),
                        };
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    AsteriskDouble {
        addr,
        cli_addr,
        dialplan,
        seen,
        etc,
        hold_reloads: hold,
        drop_next,
        run_as,
        state,
    }
}
