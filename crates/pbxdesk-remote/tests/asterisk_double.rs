//! The stateful Asterisk double against the Asterisk 22.10.1 captures: for every captured
//! reload case it must load what Asterisk loaded, and answer as Asterisk answered. Then the
//! client's verification (`dialplan_context`) is shown to catch what a reload's own answer
//! hides: a broken included file reloads with "Success" and drops its contexts.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ami::{parse_dialplan_show, Client, ContextCount, Options, Parser};
use pbxdesk_remote::testkit::asterisk::{dialplan_show, load_dialplan, start_asterisk};
use secrecy::SecretString;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/asterisk22")
        .join(rel)
}

/// A config folder as it was live during the captures, with `10-pbx-test.conf` = `case`.
fn etc_with(case: Option<&str>, main: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("extensions.d")).unwrap();
    let main_src = main.map_or_else(
        || fixture("config/extensions.conf"),
        |m| fixture(&format!("config/extensions.conf.{m}")),
    );
    std::fs::copy(main_src, dir.path().join("extensions.conf")).unwrap();
    std::fs::copy(
        fixture("config/extensions.d/00-pbx-base.conf"),
        dir.path().join("extensions.d/00-pbx-base.conf"),
    )
    .unwrap();
    if let Some(c) = case {
        std::fs::copy(
            fixture(&format!("config/extensions.d_10-pbx-test.{c}.conf")),
            dir.path().join("extensions.d/10-pbx-test.conf"),
        )
        .unwrap();
    }
    dir
}

/// The summary of the first `dialplan show` in a captured CLI output (None: "no existence").
fn captured(rel: &str) -> Option<ContextCount> {
    let text = std::fs::read_to_string(fixture(rel)).unwrap();
    let mut first = Vec::new();
    for l in text.lines() {
        first.push(l.to_owned());
        if l.starts_with("-= ") || l.starts_with("Command '") {
            break;
        }
    }
    parse_dialplan_show(&first)
}

fn summary(plan: &pbxdesk_remote::testkit::asterisk::Dialplan, ctx: &str) -> Option<ContextCount> {
    parse_dialplan_show(&dialplan_show(plan, ctx).1)
}

#[test]
fn each_captured_reload_case_loads_what_asterisk_loaded() {
    let v1 = load_dialplan(etc_with(Some("v1"), None).path()).unwrap();
    assert_eq!(
        summary(&v1, "pbx-test"),
        captured("cli/dialplan_show_pbx-test_after_reload.txt")
    );
    assert_eq!(
        summary(&v1, "pbx-test"),
        Some(ContextCount {
            extensions: 2,
            priorities: 6
        })
    );
    assert_eq!(
        summary(&v1, "pbx-generated"),
        captured("cli/dialplan_show_pbx_generated.txt")
    );
    for case in [
        "broken_midfile",
        "garbage_line",
        "bad_priority",
        "broken_unclosed_bracket",
    ] {
        let plan = load_dialplan(etc_with(Some(case), None).path())
            .unwrap_or_else(|e| panic!("{case}: an included file never fails the reload: {e}"));
        let want = captured(&format!("cli/dialplan_show_pbx-test_after_{case}.txt"));
        assert_eq!(summary(&plan, "pbx-test"), want, "{case}");
        // The rest of a broken file is dropped (pbx-test2 comes after the error in midfile).
        assert!(!plan.contains_key("pbx-test2"), "{case}");
        // The other included file still loads.
        assert!(plan.contains_key("pbx-generated"), "{case}");
    }
    assert_eq!(
        captured("cli/dialplan_show_pbx-test_after_broken_unclosed_bracket.txt"),
        None
    );
}

#[test]
fn a_broken_main_file_or_a_missing_include_fails_the_whole_reload() {
    for main in ["main_file_unclosed_bracket", "main_file_missing_include"] {
        assert!(
            load_dialplan(etc_with(Some("v1"), Some(main)).path()).is_err(),
            "{main}"
        );
    }
    // `#include extensions.d/*.conf` with an empty folder fails; `#tryinclude` does not.
    let empty = etc_with(None, None);
    std::fs::remove_file(empty.path().join("extensions.d/00-pbx-base.conf")).unwrap();
    assert!(load_dialplan(empty.path()).is_err());
    let main = std::fs::read_to_string(empty.path().join("extensions.conf")).unwrap();
    std::fs::write(
        empty.path().join("extensions.conf"),
        main.replace("#include extensions.d", "#tryinclude extensions.d"),
    )
    .unwrap();
    let plan = load_dialplan(empty.path()).unwrap();
    // cli/dialplan_contexts_after_empty_tryinclude_glob.txt: from-internal and default.
    let names: Vec<&str> = plan.keys().map(String::as_str).collect();
    assert_eq!(names, ["default", "from-internal"]);
    let listed = std::fs::read_to_string(fixture(
        "cli/dialplan_contexts_after_empty_tryinclude_glob.txt",
    ))
    .unwrap();
    for n in names {
        assert!(listed.contains(&format!("[ Context '{n}' created by 'pbx_config' ]")));
    }
}

#[test]
fn the_summary_is_read_from_the_real_ami_bytes() {
    for (file, want) in [
        (
            "ami/s3_reload_ok_04_command.response.raw",
            Some(ContextCount {
                extensions: 2,
                priorities: 6,
            }),
        ),
        ("ami/s4_reload_broken_include_04_command.response.raw", None),
    ] {
        let mut p = Parser::default();
        p.push(&std::fs::read(fixture(file)).unwrap());
        let m = p.next_message().unwrap().unwrap();
        let lines: Vec<String> = m.all("Output").map(str::to_owned).collect();
        assert_eq!(parse_dialplan_show(&lines), want, "{file}");
    }
    assert_eq!(
        parse_dialplan_show(&["-= 1 extension (1 priority) in 1 context. =-".to_owned()]),
        Some(ContextCount {
            extensions: 1,
            priorities: 1
        })
    );
}

#[tokio::test]
async fn verification_catches_what_a_successful_reload_hides() {
    let etc = etc_with(Some("v1"), None);
    let ast = start_asterisk(etc.path().to_path_buf()).await;
    let c = Client::connect(
        &ast.addr,
        "pbx",
        &SecretString::from("pbx-secret-1"),
        false,
        Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        c.dialplan_context("pbx-test").await.unwrap(),
        Some(ContextCount {
            extensions: 2,
            priorities: 6
        })
    );

    // s4: a broken included file. Reload says Success, and the context is gone.
    std::fs::copy(
        fixture("config/extensions.d_10-pbx-test.broken_unclosed_bracket.conf"),
        etc.path().join("extensions.d/10-pbx-test.conf"),
    )
    .unwrap();
    c.reload("pbx_config").await.unwrap();
    assert_eq!(c.dialplan_context("pbx-test").await.unwrap(), None);

    // s5: a broken extensions.conf. Reload reports the error; the old dialplan stays.
    std::fs::copy(
        fixture("config/extensions.d_10-pbx-test.v1.conf"),
        etc.path().join("extensions.d/10-pbx-test.conf"),
    )
    .unwrap();
    c.reload("pbx_config").await.unwrap();
    std::fs::copy(
        fixture("config/extensions.conf.main_file_unclosed_bracket"),
        etc.path().join("extensions.conf"),
    )
    .unwrap();
    let e = c.reload("pbx_config").await.unwrap_err();
    assert!(e.to_string().contains("An unknown error occurred"), "{e}");
    assert_eq!(
        c.dialplan_context("pbx-test").await.unwrap(),
        Some(ContextCount {
            extensions: 2,
            priorities: 6
        })
    );

    // A context name never reaches the CLI line unchecked.
    assert!(c.dialplan_context("x\r\nAction: Originate").await.is_err());
    assert!(c.dialplan_context("a b").await.is_err());
    let seen = ast.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|a| *a == "Reload:pbx_config").count(), 3);
    assert!(!seen
        .iter()
        .any(|a| a.contains("Originate") || a.contains("a b")));
}
