//! What an apply will do, decided without any I/O: from the last applied render, the new
//! render, what was read from the PBX and the options, the files to upload and to restore, the
//! include lines to add, the modules to reload, what to verify, or why the apply is refused.
//! Unit-tested here without a PBX; `run` carries the plan out against a session.

use super::ApplyOptions;
use crate::error::Refusal;
use pbxdesk_render::pbx::{
    rendered_mailboxes, rendered_transports, rendered_trunks, RenderedTrunk, DIALPLAN_DIR,
    PJSIP_DIR, VOICEMAIL_DIR,
};
use pbxdesk_render::{sorcery, Rendered};
use std::collections::{BTreeMap, BTreeSet};

/// Files by path relative to the config folder; `None`: absent (or to be removed).
pub(crate) type Files = BTreeMap<String, Option<String>>;

/// What was read from the PBX before the plan: pbxdesk's generated files, and the core files
/// the render needs to look at (`extensions.conf` and the others the include lines go into,
/// `sorcery.conf` when the render has trunk files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PbxFiles {
    pub generated: BTreeMap<String, String>,
    pub core: Files,
}

/// The core files a plan must read for `new` (see [`PbxFiles::core`]).
pub(crate) fn core_files_to_read(new: &Rendered) -> Vec<String> {
    let mut out: Vec<String> = new.includes.iter().map(|i| i.file.clone()).collect();
    if !sorcery::file_objects(new).is_empty() {
        out.push("sorcery.conf".into());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether the PBX runs `new` already (decided before the lock too, so that such an apply
/// touches nothing).
pub(crate) fn runs_already(
    last: Option<&Rendered>,
    new: &Rendered,
    generated: &BTreeMap<String, String>,
) -> bool {
    *generated == new.files && last.is_some_and(|l| l.realtime == new.realtime)
}

/// What Asterisk must show after the reload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verification {
    /// Context -> number of extensions.
    pub contexts: BTreeMap<String, usize>,
    pub endpoints: Vec<String>,
    pub mailboxes: Vec<(String, String)>,
    pub trunks: Vec<RenderedTrunk>,
    /// Transport -> the devices that use it (checked before any change).
    pub transports: BTreeMap<String, Vec<String>>,
}

/// A change to make.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// What to write (`None`: remove), generated files and core-file edits alike.
    pub upload: Files,
    /// What each of those held before (`None`: it did not exist): the backup.
    pub restore: Files,
    /// The core files that get pbxdesk's include lines.
    pub includes_added: Vec<String>,
    /// Generated files someone changed on the PBX, replaced with consent.
    pub drift_replaced: Vec<String>,
    /// Modules to reload, in order.
    pub modules: Vec<&'static str>,
    pub verify: Verification,
}

#[derive(Debug, Clone)]
pub(crate) enum Decision {
    NothingToDo,
    Change(Box<Plan>),
}

/// Decides the apply of `new` over a PBX that holds `pbx`, last applied `last`.
pub(crate) fn decide(
    last: Option<&Rendered>,
    new: &Rendered,
    pbx: &PbxFiles,
    opts: &ApplyOptions,
) -> Result<Decision, Refusal> {
    if runs_already(last, new, &pbx.generated) {
        return Ok(Decision::NothingToDo);
    }
    // Drift: the PBX must hold what was last applied (or nothing of pbxdesk's yet).
    let expected: BTreeMap<String, String> = last.map(|l| l.files.clone()).unwrap_or_default();
    let drifted: Vec<String> = pbx
        .generated
        .keys()
        .chain(expected.keys())
        .filter(|p| pbx.generated.get(*p) != expected.get(*p))
        .collect::<BTreeSet<&String>>()
        .into_iter()
        .cloned()
        .collect();
    if !drifted.is_empty() && !opts.overwrite_drift {
        return Err(Refusal::Drift { files: drifted });
    }
    let (edits, backup) = include_edits(new, pbx, opts)?;
    let objects = sorcery::file_objects(new);
    if !objects.is_empty() {
        let text = pbx.core.get("sorcery.conf").cloned().flatten();
        let gaps = sorcery::file_object_gaps(text.as_deref(), &objects);
        if !gaps.is_empty() {
            return Err(Refusal::SorceryUnmapped {
                types: gaps.iter().map(|g| g.object.clone()).collect(),
                fix: sorcery::gaps_fix(&gaps),
            });
        }
    }
    let mut upload = Files::new();
    let mut restore = Files::new();
    for (p, text) in &new.files {
        if pbx.generated.get(p) != Some(text) {
            upload.insert(p.clone(), Some(text.clone()));
            restore.insert(p.clone(), pbx.generated.get(p).cloned());
        }
    }
    for (p, text) in &pbx.generated {
        if !new.files.contains_key(p) {
            upload.insert(p.clone(), None);
            restore.insert(p.clone(), Some(text.clone()));
        }
    }
    let includes_added = edits.keys().cloned().collect();
    upload.extend(edits);
    restore.extend(backup);
    let modules = modules_to_reload(last, new, &upload);
    Ok(Decision::Change(Box::new(Plan {
        upload,
        restore,
        includes_added,
        drift_replaced: drifted,
        modules,
        verify: Verification {
            contexts: new.contexts.clone(),
            endpoints: new.realtime.iter().map(|e| e.id.clone()).collect(),
            mailboxes: rendered_mailboxes(new),
            trunks: rendered_trunks(new),
            transports: rendered_transports(new),
        },
    })))
}

/// The include lines the core files lack: added only with consent. Returns the edits and the
/// files as they were.
fn include_edits(
    new: &Rendered,
    pbx: &PbxFiles,
    opts: &ApplyOptions,
) -> Result<(Files, Files), Refusal> {
    let (mut edits, mut backup) = (Files::new(), Files::new());
    for inc in &new.includes {
        let Some(Some(text)) = pbx.core.get(&inc.file) else {
            if inc.file == "extensions.conf" {
                return Err(Refusal::NoDialplan {
                    file: inc.file.clone(),
                });
            }
            continue; // no pjsip.conf / voicemail.conf: those modules are not in use
        };
        if text.lines().any(|l| l.trim() == inc.line) {
            continue;
        }
        if !opts.add_includes {
            return Err(Refusal::MissingInclude {
                file: inc.file.clone(),
                line: inc.line.clone(),
            });
        }
        // Several include lines may go into one file: each edit builds on the previous one.
        let base = edits
            .get(&inc.file)
            .cloned()
            .flatten()
            .unwrap_or_else(|| text.clone());
        backup
            .entry(inc.file.clone())
            .or_insert_with(|| Some(text.clone()));
        edits.insert(
            inc.file.clone(),
            Some(format!(
                "{}\n; added by pbxdesk: its generated files\n{}\n",
                base.trim_end(),
                inc.line
            )),
        );
    }
    Ok((edits, backup))
}

/// The narrowest reloads that load `upload`. Newly inserted realtime endpoints report
/// DeviceState Unavailable until res_pjsip is reloaded (captured on Asterisk 22), so an apply
/// that adds devices reloads it too.
fn modules_to_reload(last: Option<&Rendered>, new: &Rendered, upload: &Files) -> Vec<&'static str> {
    let adds_rows = last.map_or(!new.realtime.is_empty(), |l| {
        let had: BTreeSet<&str> = l.realtime.iter().map(|e| e.id.as_str()).collect();
        new.realtime.iter().any(|e| !had.contains(e.id.as_str()))
    });
    let touches = |dir: &str, core: &str| upload.keys().any(|p| p.starts_with(dir) || p == core);
    let mut modules = Vec::new();
    if touches(DIALPLAN_DIR, "extensions.conf") {
        modules.push("pbx_config");
    }
    if adds_rows || touches(PJSIP_DIR, "pjsip.conf") {
        modules.push("res_pjsip");
    }
    if touches(VOICEMAIL_DIR, "voicemail.conf") {
        modules.push("app_voicemail");
    }
    modules
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pbxdesk_render::pbx::{Endpoint, Include};

    fn include(file: &str, line: &str) -> Include {
        Include {
            file: file.into(),
            line: line.into(),
        }
    }

    pub(crate) fn rendered(files: &[(&str, &str)], rows: &[&str]) -> Rendered {
        Rendered {
            files: files
                .iter()
                .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
                .collect(),
            realtime: rows
                .iter()
                .map(|id| Endpoint {
                    id: (*id).into(),
                    username: (*id).into(),
                    password: "secret".into(),
                    context: "acme_cos_default".into(),
                    transport: None,
                    allow: "ulaw".into(),
                    callerid: String::new(),
                    mailboxes: None,
                    set_var: String::new(),
                    nat: false,
                    max_contacts: 1,
                })
                .collect(),
            includes: vec![include(
                "extensions.conf",
                "#tryinclude extensions.d/pbxdesk/*.conf",
            )],
            contexts: BTreeMap::from([("acme_users".to_owned(), 3)]),
            findings: vec![],
        }
    }

    pub(crate) fn pbx(files: &[(&str, &str)], ext: Option<&str>) -> PbxFiles {
        PbxFiles {
            generated: files
                .iter()
                .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
                .collect(),
            core: Files::from([("extensions.conf".to_owned(), ext.map(str::to_owned))]),
        }
    }

    pub(crate) const INC: &str = "[general]\n#tryinclude extensions.d/pbxdesk/*.conf\n";
    pub(crate) const D1: &str = "extensions.d/pbxdesk/tenant-acme.conf";
    const D2: &str = "extensions.d/pbxdesk/tenant-globex.conf";

    fn change(d: Decision) -> Plan {
        match d {
            Decision::Change(p) => *p,
            Decision::NothingToDo => panic!("expected a change"),
        }
    }

    #[test]
    fn a_pbx_running_the_render_has_nothing_to_do() {
        let r = rendered(&[(D1, "a")], &["acme-100"]);
        let d = decide(
            Some(&r),
            &r,
            &pbx(&[(D1, "a")], Some(INC)),
            &ApplyOptions::default(),
        );
        assert!(matches!(d, Ok(Decision::NothingToDo)));
        // The same files but new rows: a change (rows only, no file to reload but res_pjsip).
        let more = rendered(&[(D1, "a")], &["acme-100", "acme-101"]);
        let p = change(
            decide(
                Some(&r),
                &more,
                &pbx(&[(D1, "a")], Some(INC)),
                &ApplyOptions::default(),
            )
            .unwrap(),
        );
        assert!(p.upload.is_empty());
        assert_eq!(p.modules, vec!["res_pjsip"]);
    }

    #[test]
    fn uploads_what_differs_restores_what_was_there_and_removes_what_went() {
        let last = rendered(&[(D1, "a"), (D2, "g")], &["acme-100"]);
        let new = rendered(&[(D1, "b")], &["acme-100"]);
        let p = change(
            decide(
                Some(&last),
                &new,
                &pbx(&[(D1, "a"), (D2, "g")], Some(INC)),
                &ApplyOptions::default(),
            )
            .unwrap(),
        );
        assert_eq!(
            p.upload,
            Files::from([(D1.into(), Some("b".into())), (D2.into(), None)])
        );
        assert_eq!(
            p.restore,
            Files::from([(D1.into(), Some("a".into())), (D2.into(), Some("g".into()))])
        );
        assert_eq!(p.modules, vec!["pbx_config"]);
        assert!(p.drift_replaced.is_empty());
        assert_eq!(p.verify.endpoints, vec!["acme-100".to_owned()]);
    }

    #[test]
    fn drift_is_refused_with_its_files_unless_overwritten() {
        let last = rendered(&[(D1, "a")], &[]);
        let new = rendered(&[(D1, "b")], &[]);
        let on_pbx = pbx(&[(D1, "edited by hand"), (D2, "new by hand")], Some(INC));
        let e = decide(Some(&last), &new, &on_pbx, &ApplyOptions::default()).unwrap_err();
        assert_eq!(
            e,
            Refusal::Drift {
                files: vec![D1.into(), D2.into()]
            }
        );
        let opts = ApplyOptions {
            overwrite_drift: true,
            ..Default::default()
        };
        let p = change(decide(Some(&last), &new, &on_pbx, &opts).unwrap());
        assert_eq!(p.drift_replaced, vec![D1.to_owned(), D2.to_owned()]);
        assert_eq!(p.restore.get(D1), Some(&Some("edited by hand".to_owned())));
        assert_eq!(p.upload.get(D2), Some(&None));
    }

    #[test]
    fn include_lines_need_consent_and_a_dialplan() {
        let new = rendered(&[(D1, "a")], &[]);
        let e = decide(
            None,
            &new,
            &pbx(&[], Some("[general]\n")),
            &ApplyOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Refusal::MissingInclude { file, .. } if file == "extensions.conf"),
            "{e:?}"
        );
        let e = decide(None, &new, &pbx(&[], None), &ApplyOptions::default()).unwrap_err();
        assert!(matches!(e, Refusal::NoDialplan { .. }));
        let opts = ApplyOptions {
            add_includes: true,
            ..Default::default()
        };
        let p = change(decide(None, &new, &pbx(&[], Some("[general]\n")), &opts).unwrap());
        let edited = p.upload["extensions.conf"].clone().unwrap();
        assert!(
            edited.starts_with("[general]\n")
                && edited.ends_with("#tryinclude extensions.d/pbxdesk/*.conf\n")
        );
        assert_eq!(p.restore["extensions.conf"].as_deref(), Some("[general]\n"));
        assert_eq!(p.includes_added, vec!["extensions.conf".to_owned()]);
        assert_eq!(p.modules, vec!["pbx_config"]);
        // A pjsip.conf that does not exist needs no line (the module is not in use).
        let mut with_pjsip = new.clone();
        with_pjsip
            .includes
            .push(include("pjsip.conf", "#tryinclude pjsip.d/pbxdesk/*.conf"));
        assert!(decide(
            None,
            &with_pjsip,
            &pbx(&[], Some(INC)),
            &ApplyOptions::default()
        )
        .is_ok());
    }

    #[test]
    fn trunk_files_need_a_sorcery_conf_that_lets_them_load() {
        let trunk = "pjsip.d/pbxdesk/trunk-carrier.conf";
        let new = rendered(
            &[(trunk, "[pbxdesk-trunk-carrier]\ntype = endpoint\n")],
            &[],
        );
        assert_eq!(
            core_files_to_read(&new),
            vec!["extensions.conf".to_owned(), "sorcery.conf".to_owned()]
        );
        let mut on_pbx = pbx(&[], Some(INC));
        on_pbx.core.insert(
            "sorcery.conf".into(),
            Some("[res_pjsip]\nendpoint=realtime,ps_endpoints\n".into()),
        );
        let e = decide(None, &new, &on_pbx, &ApplyOptions::default()).unwrap_err();
        assert!(
            matches!(&e, Refusal::SorceryUnmapped { types, .. } if types == &vec!["endpoint".to_owned()]),
            "{e:?}"
        );
        on_pbx.core.insert("sorcery.conf".into(), None);
        let p = change(decide(None, &new, &on_pbx, &ApplyOptions::default()).unwrap());
        assert_eq!(p.modules, vec!["res_pjsip"]);
        assert_eq!(p.verify.trunks.len(), 1);
    }
}
