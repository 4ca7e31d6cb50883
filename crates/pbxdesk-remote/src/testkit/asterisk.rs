//! A stateful Asterisk double: it loads the dialplan from a config folder (the test sshd's
//! "/etc/asterisk") by the rules the Asterisk 22.10.1 captures show, and answers the AMI
//! actions an apply uses (Login, Ping, Reload, Command `dialplan show`/`dialplan reload`,
//! Logoff) with the captured message shapes. `tests/asterisk_double.rs` checks every captured
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

use crate::ami::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
                "exten" => {
                    let mut parts = value.splitn(3, ',');
                    let (Some(pat), Some(prio), Some(_app)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    if !valid_priority(prio.trim()) {
                        continue; // "Invalid priority/label"
                    }
                    let pat = pat.trim().to_owned();
                    *self
                        .plan
                        .entry(ctx)
                        .or_default()
                        .entry(pat.clone())
                        .or_default() += 1;
                    self.last_exten = Some(pat);
                }
                "same" => {
                    let Some((prio, _app)) = value.split_once(',') else {
                        continue;
                    };
                    if !valid_priority(prio.trim()) {
                        continue;
                    }
                    if let Some(pat) = self.last_exten.clone() {
                        *self.plan.entry(ctx).or_default().entry(pat).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Loads `extensions.conf` from `etc` as pbx_config would.
pub fn load_dialplan(etc: &Path) -> Result<Dialplan, String> {
    let mut l = Loader {
        etc,
        plan: Dialplan::new(),
        context: None,
        last_exten: None,
        depth: 0,
    };
    l.file(&etc.join("extensions.conf"), true)?;
    Ok(l.plan)
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
/// (`Reload:pbx_config`, `Command:dialplan show x`, …).
pub struct AsteriskDouble {
    pub addr: String,
    pub dialplan: Arc<Mutex<Dialplan>>,
    pub seen: Arc<Mutex<Vec<String>>>,
    pub etc: PathBuf,
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

/// Starts the double on a loopback port, serving the dialplan under `etc` (loaded now, as at
/// Asterisk's start; a main-file error leaves it empty). AMI user secret: `pbx-secret-1`.
pub async fn start_asterisk(etc: PathBuf) -> AsteriskDouble {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dialplan = Arc::new(Mutex::new(load_dialplan(&etc).unwrap_or_default()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (plan2, seen2, etc2) = (dialplan.clone(), seen.clone(), etc.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (plan, seen, etc) = (plan2.clone(), seen2.clone(), etc2.clone());
            tokio::spawn(async move {
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
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
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
                                reply(&id, true, "Authentication accepted", &[])
                            }
                            "Ping" => format!("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1764112345.000000\r\n\r\n").into_bytes(),
                            "Reload" => {
                                let module = req.get("Module").unwrap_or("").to_owned();
                                seen.lock().unwrap().push(format!("Reload:{module}"));
                                if module == "pbx_config" {
                                    match load_dialplan(&etc) {
                                        Ok(p) => {
                                            *plan.lock().unwrap() = p;
                                            reply(&id, true, "Module Reloaded", &[])
                                        }
                                        // s5_reload_broken_main_03: the old dialplan stays.
                                        Err(_) => reply(&id, false, "An unknown error occurred", &[]),
                                    }
                                } else {
                                    reply(&id, true, "Module Reloaded", &[])
                                }
                            }
                            "Command" => {
                                let cmd = req.get("Command").unwrap_or("").to_owned();
                                seen.lock().unwrap().push(format!("Command:{cmd}"));
                                if let Some(ctx) = cmd.strip_prefix("dialplan show ") {
                                    let (ok, lines) = dialplan_show(&plan.lock().unwrap(), ctx.trim());
                                    reply(&id, ok, "Command output follows", &lines)
                                } else if cmd == "dialplan reload" {
                                    if let Ok(p) = load_dialplan(&etc) {
                                        *plan.lock().unwrap() = p;
                                    }
                                    reply(&id, true, "Command output follows", &["Dialplan reloaded.".to_owned()])
                                } else {
                                    reply(&id, false, "Command output follows", &[format!("No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)")])
                                }
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
        dialplan,
        seen,
        etc,
    }
}
