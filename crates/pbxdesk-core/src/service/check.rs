//! Talking to a PBX from its profile: the host key probe and "check this PBX".
//! The remote calls are blocking (libssh2) and run on tokio's blocking pool.

use super::{Actor, Workspace};
use crate::domain::{SshAuth, Via};
use crate::error::{Error, Result};
use crate::model::{CheckLine, Pbx};
use pbxdesk_remote::ami;
use pbxdesk_remote::astdb::EventsProbe;
use pbxdesk_remote::realtime::Realtime;
use pbxdesk_remote::ssh::{self, Auth, Connection, Target};
use pbxdesk_remote::tunnel::Tunnel;
use pbxdesk_render::sorcery;
use secrecy::SecretString;
use std::time::Duration;

/// How long the check waits for its test `UserEvent` to come back.
const EVENTS_WAIT: Duration = Duration::from_secs(2);
/// Below this much free space on the config folder's filesystem, an apply could fail midway.
const MIN_FREE_KIB: u64 = 50 * 1024;

fn line(item: &str, ok: bool, detail: impl Into<String>, fix: Option<&str>) -> CheckLine {
    CheckLine {
        item: item.into(),
        ok,
        detail: detail.into(),
        fix: if ok { None } else { fix.map(str::to_owned) },
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store(format!("background task failed: {e}")))
}

/// A text file on the PBX (lossy UTF-8), None when it does not exist; SSH errors as they are.
pub(super) async fn read_text(
    conn: &std::sync::Arc<Connection>,
    path: &str,
) -> Result<std::result::Result<Option<String>, ssh::SshError>> {
    let (c, p) = (conn.clone(), path.to_owned());
    blocking(move || {
        c.read_file(&p)
            .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
    })
    .await
}

pub(super) fn target(pbx: &Pbx, ssh_secret: Option<SecretString>) -> Target {
    let auth = match pbx.ssh_auth {
        SshAuth::Key => Auth::KeyFile {
            path: pbx.ssh_key_path.clone().unwrap_or_default().into(),
            passphrase: ssh_secret,
        },
        SshAuth::Agent => Auth::Agent,
        SshAuth::Password => {
            Auth::Password(ssh_secret.unwrap_or_else(|| SecretString::from(String::new())))
        }
    };
    Target {
        host: pbx.host.clone(),
        port: pbx.ssh_port,
        user: pbx.ssh_user.clone(),
        auth,
        connect_timeout: Duration::from_millis(u64::from(pbx.connect_timeout_ms)),
        op_timeout: Duration::from_millis(u64::from(pbx.command_timeout_ms)),
        keepalive: Duration::from_secs(15),
    }
}

impl Workspace {
    /// The host key the PBX offers now (to show the technician before pinning it).
    pub async fn pbx_probe_host_key(&self, actor: &Actor, name: &str) -> Result<String> {
        actor.require_msp("check a PBX (it uses the MSP's SSH, AMI and database credentials)")?;
        let pbx = self.pbx_show(actor, name).await?;
        let timeout = Duration::from_millis(u64::from(pbx.connect_timeout_ms));
        blocking(move || ssh::probe_host_key(&pbx.host, pbx.ssh_port, timeout))
            .await?
            .map(|k| k.fingerprint)
            .map_err(|e| match e {
                ssh::SshError::Connect { .. } => Error::Unreachable(e.to_string()),
                _ => Error::Conflict(e.to_string()),
            })
    }

    /// Checks that everything an apply needs answers, one line per item, each with a fix.
    /// It runs with the MSP's SSH, AMI and database credentials, so only the MSP's own roles
    /// (msp_admin, technician) may run it.
    pub async fn pbx_check(&self, actor: &Actor, name: &str) -> Result<Vec<CheckLine>> {
        actor.require_msp("check a PBX (it uses the MSP's SSH, AMI and database credentials)")?;
        let pbx = self.pbx_show(actor, name).await?;
        let [ssh_secret, ami_secret, db_password] = self.pbx_secrets(pbx.id).await?;
        let mut out = Vec::new();
        let Some(pinned) = pbx.host_key.clone() else {
            // Reach the host first: a host that does not resolve or answer is the problem to
            // fix, not its key (trusting would fail on the same thing).
            let (host, port) = (pbx.host.clone(), pbx.ssh_port);
            let timeout = Duration::from_millis(u64::from(pbx.connect_timeout_ms));
            match blocking(move || ssh::probe_host_key(&host, port, timeout)).await? {
                Ok(key) => out.push(line(
                    "SSH host key",
                    false,
                    format!(
                        "not trusted yet; the host offers {} (compare it with the PBX's own)",
                        key.fingerprint
                    ),
                    Some(&format!("pbxdesk pbx trust {name}")),
                )),
                Err(e) => out.push(line(
                    "SSH",
                    false,
                    e.to_string(),
                    Some("check the PBX's host name or address and SSH port (pbxdesk pbx update), and that its SSH server runs"),
                )),
            }
            return Ok(out);
        };
        let t = target(&pbx, ssh_secret.clone());
        let conn = match blocking({
            let pinned = pinned.clone();
            move || Connection::open(&t, Some(&pinned))
        })
        .await?
        {
            Ok(c) => {
                out.push(line(
                    "SSH",
                    true,
                    format!(
                        "{}@{}:{} logged in; host key as pinned ({pinned})",
                        pbx.ssh_user, pbx.host, pbx.ssh_port
                    ),
                    None,
                ));
                c
            }
            Err(e) => {
                let fix = match e {
                    ssh::SshError::HostKeyChanged { .. } => "find out why the key changed before trusting the new one (pbxdesk pbx trust)",
                    ssh::SshError::Auth { .. } => "check the SSH user and key or password (pbxdesk pbx update)",
                    _ => "check the host, the port and that the PBX is reachable from here",
                };
                out.push(line("SSH", false, e.to_string(), Some(fix)));
                return Ok(out);
            }
        };
        let conn = std::sync::Arc::new(conn);
        let dir = pbx.config_dir.clone();
        let files = blocking({
            let (c, d) = (conn.clone(), dir.clone());
            move || c.list_dir(&d)
        })
        .await?;
        match files {
            Ok(names) if names.iter().any(|n| n == "extensions.conf") => {
                out.push(line(
                    "config folder",
                    true,
                    format!("{dir} holds {} entries", names.len()),
                    None,
                ));
            }
            Ok(_) => out.push(line(
                "config folder",
                false,
                format!("{dir} has no extensions.conf"),
                Some("set the right folder with pbxdesk pbx update --config-dir"),
            )),
            Err(e) => out.push(line(
                "config folder",
                false,
                e.to_string(),
                Some("check the folder and the SSH user's rights"),
            )),
        }
        for (file, folder) in [
            ("extensions.conf", "extensions.d/pbxdesk"),
            ("pjsip.conf", "pjsip.d/pbxdesk"),
        ] {
            let path = format!("{dir}/{file}");
            let text = read_text(&conn, &path).await?;
            let want = format!("#tryinclude {folder}/*.conf");
            match text {
                Ok(Some(text)) => {
                    let found = text.lines().any(|l| {
                        let l = l.trim();
                        (l.starts_with("#include") || l.starts_with("#tryinclude"))
                            && l.contains(folder)
                    });
                    out.push(line(&format!("include in {file}"), found, if found { format!("{file} includes {folder}") } else { format!("{file} does not include {folder}") }, Some(&format!("add the line `{want}` to {path} (pbxdesk asks before doing it at the first apply)"))));
                }
                Ok(None) => out.push(line(
                    &format!("include in {file}"),
                    false,
                    format!("{path} does not exist"),
                    Some("is this the Asterisk config folder?"),
                )),
                Err(e) => out.push(line(
                    &format!("include in {file}"),
                    false,
                    e.to_string(),
                    None,
                )),
            }
        }
        // sorcery.conf decides whether the trunk files load at all (read at start only).
        let path = format!("{dir}/sorcery.conf");
        match read_text(&conn, &path).await? {
            Ok(text) => {
                let gaps = sorcery::file_object_gaps(text.as_deref(), &sorcery::FILE_OBJECTS);
                if gaps.is_empty() {
                    out.push(line(
                        "sorcery.conf",
                        true,
                        if text.is_some() {
                            "trunk files (endpoint, aor, auth, identify, registration) load from pjsip.conf".to_owned()
                        } else {
                            format!("{path} does not exist: every PJSIP object comes from pjsip.conf")
                        },
                        None,
                    ));
                } else {
                    let types: Vec<&str> = gaps.iter().map(|g| g.object.as_str()).collect();
                    out.push(line(
                        "sorcery.conf",
                        false,
                        format!(
                            "{} mapped to realtime only: Asterisk ignores pbxdesk's trunk files",
                            types.join(", ")
                        ),
                        Some(&sorcery::gaps_fix(&gaps)),
                    ));
                }
            }
            Err(e) => out.push(line("sorcery.conf", false, e.to_string(), None)),
        }
        let free = blocking({
            let (c, d) = (conn.clone(), dir.clone());
            move || c.disk_free_kib(&d)
        })
        .await?;
        match free {
            Ok(kib) => out.push(line(
                "free disk",
                kib >= MIN_FREE_KIB,
                format!("{} MiB free on the config folder's filesystem", kib / 1024),
                Some("free some space on the PBX before applying"),
            )),
            Err(e) => out.push(line("free disk", false, e.to_string(), None)),
        }

        // AMI and the realtime database, through the SSH connection or directly.
        let endpoint = |via: Via, port: u16| -> Result<(Option<Tunnel>, String)> {
            match via {
                Via::Direct => Ok((None, format!("{}:{port}", pbx.host))),
                Via::Tunnel => {
                    let tunnel = Tunnel::open(
                        &target(&pbx, ssh_secret.clone()),
                        Some(&pinned),
                        "127.0.0.1",
                        port,
                    )
                    .map_err(|e| Error::Conflict(e.to_string()))?;
                    let addr = tunnel.local_addr();
                    Ok((Some(tunnel), addr))
                }
            }
        };
        // The group Asterisk runs as: Some(None) when it runs as root, None when unknown.
        let mut run_group: Option<Option<String>> = None;
        let mut transports = None;
        match (&pbx.ami_user, ami_secret) {
            (Some(user), Some(secret)) => match endpoint(pbx.ami_via, pbx.ami_port) {
                Ok((_tunnel, addr)) => {
                    let opts = ami::Options {
                        connect_timeout: Duration::from_millis(u64::from(pbx.connect_timeout_ms)),
                        action_timeout: Duration::from_millis(u64::from(pbx.command_timeout_ms)),
                    };
                    // Events on: the feature codes' events are probed below.
                    match ami::Client::connect(&addr, user, &secret, true, opts).await {
                        Ok(client) => {
                            // CoreSettings needs only system/reporting; `core show version` (the
                            // command class) is the fallback for a user allowed that instead.
                            let settings = client.core_settings().await.ok();
                            run_group = settings.as_ref().map(|m| {
                                m.get("CoreRunGroup")
                                    .map(str::trim)
                                    .filter(|g| !g.is_empty())
                                    .map(str::to_owned)
                            });
                            let version =
                                match settings.as_ref().and_then(|m| m.get("AsteriskVersion")) {
                                    Some(v) => Some(format!("Asterisk {v}")),
                                    None => client
                                        .command("core show version")
                                        .await
                                        .ok()
                                        .filter(|o| o.ok)
                                        .and_then(|o| o.lines.into_iter().next()),
                                };
                            transports = Some(client.pjsip_transports().await);
                            // DND and forwards live in AstDB: DBGetTree/DBPut need the
                            // `system` write class (manager_show_command_DBPut.txt).
                            let astdb = match pbxdesk_remote::astdb::read_tree(
                                &client,
                                pbxdesk_remote::astdb::ROOT,
                            )
                            .await
                            {
                                Ok(t) => pbxdesk_remote::astdb::probe_write(&client)
                                    .await
                                    .map(|()| t)
                                    .map_err(|e| format!("readable, not writable: {e}")),
                                Err(e) => Err(e.to_string()),
                            };
                            // A phone's change is seen at once only if the feature codes'
                            // `UserEvent` (class user) reaches pbxdesk's connection.
                            let events = match astdb {
                                Ok(_) => Some(
                                    pbxdesk_remote::astdb::probe_events(&client, EVENTS_WAIT).await,
                                ),
                                Err(_) => None,
                            };
                            let _ = client.logoff().await;
                            out.push(line(
                                "AMI",
                                true,
                                format!(
                                    "logged in as {user}; {}",
                                    version.unwrap_or_else(|| "version unknown".into())
                                ),
                                None,
                            ));
                            out.push(match (astdb, events) {
                                (Ok(t), Some(Err(EventsProbe::NotReceived))) => line(
                                    "AstDB (DND and forwards)",
                                    false,
                                    format!(
                                        "readable and writable ({} user(s) with features set), but the feature codes' events do not reach pbxdesk: a test UserEvent did not come back within {} s, so a change made on a phone is seen only at the next connection",
                                        t.users.len(),
                                        EVENTS_WAIT.as_secs()
                                    ),
                                    Some("give the AMI user `read = user` in manager.conf (the feature codes' UserEvent is of class user)"),
                                ),
                                (Ok(t), Some(Err(EventsProbe::NotSent(e)))) => line(
                                    "AstDB (DND and forwards)",
                                    true,
                                    format!(
                                        "readable and writable; {} user(s) with features set; whether the feature codes' events arrive (`read = user`) is not proven: the test UserEvent was refused ({e}; sending it needs `write = user`)",
                                        t.users.len()
                                    ),
                                    None,
                                ),
                                (Ok(t), _) => line(
                                    "AstDB (DND and forwards)",
                                    true,
                                    format!(
                                        "readable and writable; {} user(s) with features set; the feature codes' events reach pbxdesk (`read = user`)",
                                        t.users.len()
                                    ),
                                    None,
                                ),
                                (Err(e), _) => line(
                                    "AstDB (DND and forwards)",
                                    false,
                                    e,
                                    Some("give the AMI user `write = system` in manager.conf (DBGetTree and DBPut need it) and `read = user` for the feature codes' events; until then DND and forwards wait for the PBX"),
                                ),
                            });
                        }
                        Err(e) => out.push(line(
                            "AMI",
                            false,
                            e.to_string(),
                            Some("check the AMI user and secret in manager.conf and the profile"),
                        )),
                    }
                }
                Err(e) => out.push(line(
                    "AMI",
                    false,
                    e.to_string(),
                    Some("check that SSH port forwarding is allowed on the PBX"),
                )),
            },
            _ => out.push(line(
                "AMI",
                false,
                "no AMI user or secret in the profile",
                Some(&format!(
                    "pbxdesk pbx update {name} --ami-user NAME --ami-secret-stdin"
                )),
            )),
        }
        out.push(file_access_line(&conn, &dir, run_group).await?);
        // The transports the workspace's devices and trunks name must exist on the PBX.
        if let Some(have) = transports {
            let needed = self
                .pbx_render(actor, name, false)
                .await
                .map(|r| pbxdesk_render::pbx::rendered_transports(&r))
                .unwrap_or_default();
            out.push(match have {
                Err(e) => line(
                    "transports",
                    false,
                    format!("cannot list them (`pjsip show transports`): {e}"),
                    Some("give the AMI user the command class (write = command)"),
                ),
                Ok(have) => {
                    let listed: Vec<String> =
                        have.iter().map(|(n, p)| format!("{n} ({p})")).collect();
                    let missing: Vec<String> = needed
                        .iter()
                        .filter(|(n, _)| !have.iter().any(|(h, _)| h == *n))
                        .map(|(n, users)| format!("{n}, used by {}", users.iter().take(3).cloned().collect::<Vec<_>>().join(", ")))
                        .collect();
                    let detail = format!(
                        "the PBX has {}",
                        if listed.is_empty() { "no transport".to_owned() } else { listed.join(", ") }
                    );
                    if missing.is_empty() {
                        line("transports", true, detail, None)
                    } else {
                        line(
                            "transports",
                            false,
                            format!("{detail}; missing: {}", missing.join("; ")),
                            Some("add the transport to pjsip.conf (type = transport, protocol = tcp or tls), or set those devices and trunks to a transport the PBX has"),
                        )
                    }
                }
            });
        }
        match &pbx.db_user {
            Some(user) => {
                match endpoint(pbx.db_via, pbx.db_port) {
                    Ok((_tunnel, addr)) => {
                        let url = format!("mysql://{user}@{addr}/{}", pbx.db_name);
                        match Realtime::connect(&url, db_password.as_ref(), "check").await {
                            Ok(rt) => {
                                let v = rt.schema_version().await;
                                rt.close().await;
                                match v {
                                Ok(v) => out.push(line("realtime database", true, format!("{} reachable, PJSIP tables present (schema {})", pbx.db_name, v.unwrap_or_else(|| "unversioned".into())), None)),
                                Err(e) => out.push(line("realtime database", false, e.to_string(), Some("create Asterisk's realtime tables (its alembic scripts)"))),
                            }
                            }
                            Err(e) => out.push(line(
                                "realtime database",
                                false,
                                e.to_string(),
                                Some("check the database name, user and password"),
                            )),
                        }
                    }
                    Err(e) => out.push(line(
                        "realtime database",
                        false,
                        e.to_string(),
                        Some("check that SSH port forwarding is allowed on the PBX"),
                    )),
                }
            }
            None => out.push(line(
                "realtime database",
                false,
                "no database user in the profile",
                Some(&format!(
                    "pbxdesk pbx update {name} --db-user NAME --db-password-stdin"
                )),
            )),
        }
        Ok(out)
    }
}

/// Whether the generated folders and files are readable by their owner and Asterisk's group
/// only (they hold trunk passwords and voicemail PINs; an apply sets 0750 / 0640).
async fn file_access_line(
    conn: &std::sync::Arc<Connection>,
    dir: &str,
    run_group: Option<Option<String>>,
) -> Result<CheckLine> {
    use pbxdesk_render::pbx::{DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR};
    const ITEM: &str = "file access";
    let Some(group) = run_group else {
        return Ok(line(
            ITEM,
            false,
            "unknown: AMI did not say which group Asterisk runs as (CoreSettings)",
            Some("fix the AMI line above"),
        ));
    };
    let (c, d, g) = (conn.clone(), dir.to_owned(), group.clone());
    let found = blocking(
        move || -> std::result::Result<(Option<u32>, Vec<String>, usize), String> {
            let gid = match &g {
                Some(name) => match c.group_id(name).map_err(|e| e.to_string())? {
                    Some(gid) => Some(gid),
                    None => {
                        return Err(format!(
                            "Asterisk runs as group {name}, which the PBX does not know"
                        ))
                    }
                },
                None => None,
            };
            let mut wrong = Vec::new();
            let mut seen = 0;
            for sub in [DIALPLAN_DIR, PJSIP_DIR, VOICEMAIL_DIR] {
                let folder = format!("{d}/{sub}");
                let Some((mode, fgid)) = c.stat_mode(&folder).map_err(|e| e.to_string())? else {
                    continue;
                };
                seen += 1;
                if mode & 0o007 != 0 || mode & 0o050 != 0o050 || (gid.is_some() && fgid != gid) {
                    wrong.push(format!("{sub} ({mode:o})"));
                }
                for name in c.list_dir(&folder).map_err(|e| e.to_string())? {
                    if !name.ends_with(".conf") {
                        continue;
                    }
                    let p = format!("{folder}/{name}");
                    if let Some((mode, fgid)) = c.stat_mode(&p).map_err(|e| e.to_string())? {
                        seen += 1;
                        if mode & 0o007 != 0 || (gid.is_some() && fgid != gid) {
                            wrong.push(format!("{sub}/{name} ({mode:o})"));
                        }
                    }
                }
            }
            Ok((gid, wrong, seen))
        },
    )
    .await?;
    let who = match &group {
        Some(g) => format!("group {g} (Asterisk's)"),
        None => "Asterisk (it runs as root)".to_owned(),
    };
    Ok(match found {
        Err(e) => line(ITEM, false, e, Some("check `runuser`/`rungroup` in asterisk.conf")),
        Ok((_, _, 0)) => line(
            ITEM,
            true,
            format!("no generated files yet; an apply creates them readable by their owner and {who} only (0750 / 0640)"),
            None,
        ),
        Ok((_, wrong, n)) if wrong.is_empty() => line(
            ITEM,
            true,
            format!("{n} generated folder(s) and file(s), readable by their owner and {who} only"),
            None,
        ),
        Ok((_, wrong, _)) => line(
            ITEM,
            false,
            format!("readable by others, or not by {who}: {}", wrong.join(", ")),
            Some("the next apply sets folders 0750 and files 0640 with Asterisk's group"),
        ),
    })
}
