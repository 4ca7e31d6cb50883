#![allow(clippy::unwrap_used, clippy::panic)]
//! The generated dialplan against what a real Asterisk 22.10.1 accepted and refused
//! (tests/fixtures/asterisk22, copied from the capture set). The checker below encodes the
//! line forms pbx_config read without a warning in `extensions.d_10-pbx-test.v1.conf`, and
//! the three errors it logged for the broken files; it is first tested against those
//! captures, then run over every file pbxdesk renders.

mod common;

use pbxdesk_render::render_pbx;
use pbxdesk_render::snapshot::Destination;
use proptest::prelude::*;
use std::path::Path;

/// Returns the first line Asterisk would warn about or fail on, with the reason.
fn check(text: &str) -> Result<usize, String> {
    let mut contexts = 0;
    let mut in_context = false;
    let mut last_exten = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_start();
        if t.is_empty() || (t.starts_with(';') && !t.starts_with(";--")) {
            continue;
        }
        if t.contains(';') {
            return Err(format!(
                "line {n}: ';' would start a comment inside the line"
            ));
        }
        if let Some(rest) = t.strip_prefix('[') {
            // "parse error: no closing ']'" (broken_unclosed_bracket, broken_midfile)
            let Some(name) = rest.strip_suffix(']') else {
                return Err(format!("line {n}: no closing ']'"));
            };
            if name.is_empty() || name.len() > 79 || name.contains(['[', ']', ' ']) {
                return Err(format!("line {n}: bad context name {name:?}"));
            }
            contexts += 1;
            in_context = true;
            last_exten = false;
            continue;
        }
        // "No '=' (equal sign)" (garbage_line)
        let Some((key, value)) = t.split_once("=>") else {
            return Err(format!("line {n}: no '=' (equal sign)"));
        };
        if !in_context {
            return Err(format!("line {n}: outside a context"));
        }
        let (key, value) = (key.trim(), value.trim());
        match key {
            "include" => {
                if value.is_empty() || value.contains([',', ' ', '(']) {
                    return Err(format!("line {n}: bad include {value:?}"));
                }
            }
            "exten" | "same" => {
                // exten => PATTERN,PRIORITY,App(args)   same => n,App(args)
                let rest = if key == "exten" {
                    let (pattern, rest) = value.split_once(',').unwrap_or((value, ""));
                    if pattern.is_empty() {
                        return Err(format!("line {n}: empty extension"));
                    }
                    rest
                } else if !last_exten {
                    return Err(format!("line {n}: 'same' with no extension before it"));
                } else {
                    value
                };
                // "Invalid priority/label 'NoOp'" (bad_priority)
                let (prio, app) = rest.split_once(',').unwrap_or((rest, ""));
                let (p, label) = match prio.split_once('(') {
                    Some((p, l)) if l.ends_with(')') => (p, Some(&l[..l.len() - 1])),
                    Some(_) => return Err(format!("line {n}: bad label in {prio:?}")),
                    None => (prio, None),
                };
                let ok_prio =
                    (key == "exten" && p.parse::<u32>().is_ok()) || (key == "same" && p == "n");
                if !ok_prio
                    || label.is_some_and(|l| {
                        l.is_empty()
                            || !l
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    })
                {
                    return Err(format!("line {n}: invalid priority/label {prio:?}"));
                }
                let Some(open) = app.find('(') else {
                    return Err(format!("line {n}: application without '(': {app:?}"));
                };
                if !app.ends_with(')')
                    || open == 0
                    || !app[..open].chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(format!("line {n}: bad application call {app:?}"));
                }
                let mut depth = 0i32;
                for c in app.chars() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth < 0 {
                        return Err(format!("line {n}: unbalanced parentheses"));
                    }
                }
                if depth != 0 {
                    return Err(format!("line {n}: unbalanced parentheses"));
                }
                last_exten = true;
            }
            _ => return Err(format!("line {n}: unknown key {key:?}")),
        }
    }
    Ok(contexts)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/asterisk22")
            .join(name),
    )
    .unwrap()
}

#[test]
fn checker_agrees_with_asterisk_on_the_captures() {
    assert_eq!(check(&fixture("extensions.d_10-pbx-test.v1.conf")), Ok(1));
    // What `dialplan show` printed confirms v1 was read whole: 2 extensions, 6 priorities.
    assert!(fixture("dialplan_show_pbx-test_after_reload.txt")
        .contains("-= 2 extensions (6 priorities) in 1 context. =-"));
    for (name, why) in [
        (
            "extensions.d_10-pbx-test.broken_unclosed_bracket.conf",
            "no closing ']'",
        ),
        (
            "extensions.d_10-pbx-test.broken_midfile.conf",
            "no closing ']'",
        ),
        (
            "extensions.d_10-pbx-test.garbage_line.conf",
            "no '=' (equal sign)",
        ),
        (
            "extensions.d_10-pbx-test.bad_priority.conf",
            "invalid priority/label",
        ),
    ] {
        let err = check(&fixture(name)).unwrap_err();
        assert!(err.contains(why), "{name}: {err}");
    }
}

#[test]
fn every_rendered_dialplan_file_passes() {
    let r = render_pbx(&common::golden_snapshot());
    let mut n = 0;
    for (path, text) in &r.files {
        if path.starts_with("extensions.d/") {
            let contexts = check(text).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(contexts > 0, "{path}");
            n += 1;
        }
    }
    assert_eq!(n, 4);
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[;,)(\\[\\]\"'\\\\&$ {}\\r\\n\\-|=<>]{0,60}",
        Just("${SHELL(rm -rf /)}".to_owned()),
        Just("x;-- block --;y".to_owned()),
        Just("$[1+1],Hangup()\nexten => 666,1,System(id)".to_owned()),
        Just("\r\n[evil]\r\nexten => _X.,1,System(reboot)".to_owned()),
        "\\PC{0,3000}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a person types as a name, label, tenant name or e-mail: the dialplan is
    /// byte-identical (none of it is written there), voicemail lines keep their three fields on
    /// one line, and a caller ID stays a quoted name and an extension within 40 characters.
    #[test]
    fn a_persons_text_cannot_break_out(name in hostile(), label in hostile(), email in hostile(), tname in hostile()) {
        let base = render_pbx(&common::golden_snapshot());
        let mut s = common::golden_snapshot();
        for t in &mut s.tenants {
            t.name = tname.clone();
            for u in &mut t.users {
                u.name = name.clone();
                u.email = email.clone();
            }
            for d in &mut t.dids {
                d.label = label.clone();
            }
        }
        let r = render_pbx(&s);
        for (path, text) in &r.files {
            if path.starts_with("extensions.d/") || path.starts_with("pjsip.d/") {
                prop_assert_eq!(text, &base.files[path]);
            } else {
                let base_lines = base.files[path].lines().count();
                prop_assert_eq!(text.lines().count(), base_lines, "{}", path);
                for line in text.lines().filter(|l| l.contains(" => ")) {
                    prop_assert!(!line.contains(';'), "{}", line);
                    prop_assert_eq!(line.matches(',').count(), 2, "{}", line);
                }
            }
        }
        for e in &r.realtime {
            prop_assert!(e.callerid.chars().count() <= 40);
            prop_assert!(e.callerid.starts_with('"'));
            let inner = &e.callerid[1..e.callerid.rfind('"').unwrap()];
            prop_assert!(!inner.contains(['"', '<', '>', '\\', '\r', '\n']), "{:?}", e.callerid);
        }
        prop_assert_eq!(r.realtime.len(), base.realtime.len());
    }
}

#[test]
fn a_value_that_cannot_be_written_is_refused_and_reported() {
    let mut s = common::golden_snapshot();
    s.trunks[0].password = Some("pw;--evil".into());
    s.trunks[1].host = "evil.example]\n[x".into();
    s.tenants[0].dids[0].destination = Destination::User(4242);
    s.tenants[0].dids[0].trunk = Some("nowhere".into());
    let r = render_pbx(&s);
    assert!(r.has_errors());
    assert!(
        !r.files.keys().any(|p| p.contains("trunk-twilio")),
        "the trunk file is not written"
    );
    assert!(!r.files.keys().any(|p| p.contains("trunk-sipcall")));
    let text = serde_json::to_string(&r.findings).unwrap();
    assert!(!text.contains("pw;--evil"), "a password is never echoed");
    assert!(text.contains("destination.dangling"), "{text}");
    assert!(text.contains("did.trunk_missing"), "{text}");
    for f in r.findings.iter().filter(|f| f.is_error()) {
        assert!(!f.entity.is_empty() && !f.fix.is_empty());
    }
}
