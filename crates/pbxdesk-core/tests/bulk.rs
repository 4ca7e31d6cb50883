//! Bulk import and export (CSV) of users and numbers, each story on SQLite and PostgreSQL:
//! messy and hostile files, all or nothing, idempotence, the round trip, secrets.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

mod harness;

use harness::Harness;
use pbxdesk_core::domain::Role;
use pbxdesk_core::model::{
    AuditFilter, AuditQuery, ImportAction, ImportKey, ImportProgress, ImportReport, NewPbx,
    NewTenant, NewUser,
};
use pbxdesk_core::{Actor, ErrorCode, Workspace};
use secrecy::SecretString;
use std::sync::atomic::{AtomicU32, Ordering};

async fn admin(ws: &Workspace) -> Actor {
    if let Ok(a) = ws.local_owner() {
        return a;
    }
    let pw = SecretString::from("admin password 123");
    ws.operator_add(None, "admin", Role::MspAdmin, &[], &pw)
        .await
        .unwrap();
    ws.login("admin", &pw).await.unwrap()
}

async fn setup(ws: &Workspace) -> Actor {
    let me = admin(ws).await;
    ws.pbx_add(&me, &NewPbx::at("pbx1", "10.0.0.5"))
        .await
        .unwrap();
    for (slug, range) in [("acme", "100-199"), ("globex", "200-299")] {
        ws.tenant_create(
            &me,
            &NewTenant {
                name: format!("Tenant {slug}"),
                slug: Some(slug.into()),
                pbx: "pbx1".into(),
                ext_range: range.into(),
                country: None,
            },
        )
        .await
        .unwrap();
    }
    me
}

fn quiet(_: ImportProgress) {}

async fn import(ws: &Workspace, me: &Actor, csv: &str, dry: bool) -> ImportReport {
    ws.users_import(me, "acme", csv.as_bytes(), ImportKey::Email, dry, &quiet)
        .await
        .unwrap()
}

fn actions(r: &ImportReport) -> Vec<ImportAction> {
    r.rows.iter().map(|r| r.action).collect()
}

/// A spreadsheet's file: BOM, `;`, CRLF, a quoted name with `;`, a quote and a newline, the
/// columns in another order and spelled as people do, accents, an empty trailing line.
async fn messy_csv_is_read_as_people_write_it(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let csv = "\u{feff}Name;E-Mail;Extension;Voicemail;Ring seconds;Device 1 transport\r\n\
               \"Doe; \"\"Jo\"\" Jr.\";jo@acme.example;;yes;30;tcp\r\n\
               \"Two\nLines\";two@acme.example;;;;\r\n\
               José Álvarez;JOSE@acme.example;150;no;;\r\n\r\n";
    // "E-Mail" normalizes to e_mail, which is not a column: the header is refused whole.
    let r = import(ws, &me, csv, true).await;
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(
        (r.errors[0].line, r.errors[0].column.as_str()),
        (1, "E-Mail")
    );
    assert!(r.errors[0].rule.contains("email"), "{}", r.errors[0].rule);

    let csv = csv.replace("E-Mail", "Email");
    let dry = import(ws, &me, &csv, true).await;
    // A name with a newline is refused at its cell, the newline shown escaped.
    assert_eq!(dry.errors.len(), 1, "{:?}", dry.errors);
    assert_eq!(
        (dry.errors[0].line, dry.errors[0].column.as_str()),
        (3, "Name")
    );
    assert_eq!(dry.errors[0].value, "Two\\nLines");
    assert_eq!(
        actions(&dry),
        [
            ImportAction::Create,
            ImportAction::Error,
            ImportAction::Create
        ]
    );
    // The quoted newline makes that row two lines long.
    assert_eq!(dry.rows[2].line, 5);
    let csv = csv.replace("\"Two\nLines\"", "Two Lines");
    let dry = import(ws, &me, &csv, true).await;
    assert!(dry.errors.is_empty(), "{:?}", dry.errors);
    assert!(!dry.written);
    // Automatic extensions are the lowest free ones; the explicit one is kept.
    let exts: Vec<_> = dry.rows.iter().map(|r| r.extension).collect();
    assert_eq!(exts, [Some(100), Some(101), Some(150)]);
    assert!(
        ws.user_list(&me, "acme").await.unwrap().is_empty(),
        "a dry run writes nothing"
    );

    let done = import(ws, &me, &csv, false).await;
    assert!(done.written && done.created == 3, "{done:?}");
    let users = ws.user_list(&me, "acme").await.unwrap();
    assert_eq!(users.len(), 3);
    let jo = ws.user_show(&me, users[0].id).await.unwrap();
    assert_eq!(jo.display_name, "Doe; \"Jo\" Jr.");
    assert_eq!(jo.ring_seconds, 30);
    assert_eq!(jo.devices.len(), 1);
    assert_eq!(jo.devices[0].sip_username, "acme-100");
    assert_eq!(jo.devices[0].transport.as_str(), "tcp");
    let jose = ws.user_show(&me, users[2].id).await.unwrap();
    assert_eq!(jose.email, "jose@acme.example");
    assert_eq!(jose.display_name, "José Álvarez");
    assert!(!jose.voicemail_enabled);

    // The same file again: nothing is created twice.
    let again = import(ws, &me, &csv, false).await;
    assert_eq!(again.unchanged, 3, "{again:?}");
    assert_eq!(ws.user_list(&me, "acme").await.unwrap().len(), 3);
}

/// Every bad row is reported at once, with line, column, value and rule; nothing is written.
async fn every_problem_at_once_and_nothing_written(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    ws.user_create(
        &me,
        &NewUser {
            tenant: "acme".into(),
            name: "Ann".into(),
            email: "ann@acme.example".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let csv = "email,name,extension,ring_seconds,forward_always,tenant,policy,dnd\n\
               ok@acme.example,Fine Person,,,,,,\n\
               dup@acme.example,First,,,,,,\n\
               dup@acme.example,Second,,,,,,\n\
               far@acme.example,Out Of Range,250,,,,,\n\
               ring@acme.example,Long Ring,,999,,,,\n\
               self@acme.example,Self Forward,120,,120,,,\n\
               other@acme.example,Other Tenant,,,,globex,,\n\
               bad-email,Bad Mail,,,,,,\n\
               inj@acme.example,\"x\u{7}${EXEC(rm)};\",,,,,,\n\
               pol@acme.example,No Policy,,,,,nightly,\n\
               dnd@acme.example,Bad Dnd,,,,,,maybe\n\
               ext@acme.example,Taken,100,,,,,\n\
               ,No Mail,,,,,,\n\
               emerg@acme.example,Emergency,112,,,,,\n";
    let r = import(ws, &me, csv, false).await;
    assert!(!r.written);
    let by_line = |l: u32| r.errors.iter().filter(|e| e.line == l).collect::<Vec<_>>();
    assert!(by_line(2).is_empty(), "{:?}", r.errors);
    let dup = by_line(4);
    assert_eq!(dup.len(), 1);
    assert!(dup[0].rule.contains("line 3"), "{}", dup[0].rule);
    assert_eq!(by_line(5)[0].column, "extension");
    assert!(
        by_line(5)[0].rule.contains("100-199"),
        "{}",
        by_line(5)[0].rule
    );
    assert_eq!(by_line(6)[0].column, "ring_seconds");
    assert_eq!(by_line(6)[0].value, "999");
    assert!(by_line(6)[0].rule.contains("5 to 300"));
    assert_eq!(by_line(7)[0].column, "forward_always");
    assert_eq!(by_line(8)[0].column, "tenant");
    assert_eq!(by_line(9)[0].column, "email");
    // Control characters come back escaped, never raw.
    let inj = by_line(10);
    assert_eq!(inj[0].column, "name");
    assert!(!inj[0].value.contains('\u{7}'), "{:?}", inj[0].value);
    assert_eq!(by_line(11)[0].column, "policy");
    assert_eq!(by_line(12)[0].column, "dnd");
    assert!(
        by_line(13)[0].rule.contains("in use by Ann"),
        "{:?}",
        by_line(13)
    );
    assert_eq!(by_line(14)[0].column, "email");
    assert!(
        by_line(15)[0].rule.contains("emergency"),
        "{:?}",
        by_line(15)
    );
    assert_eq!(
        r.rows[0].action,
        ImportAction::Create,
        "a good row is still planned"
    );
    assert_eq!(r.created, 2, "line 2 and the first dup@ row");
    // All or nothing: the good rows were not written either.
    assert_eq!(ws.user_list(&me, "acme").await.unwrap().len(), 1);
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: Some("acme".into()),
                limit: Some(50),
            },
        )
        .await
        .unwrap();
    assert!(!audit.iter().any(|e| e.action == "users.import"));
}

/// Export, import the export: nothing changes. Edit the file: only that row updates.
async fn round_trip_changes_nothing(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let csv = "email,name,extension,role,outbound_caller_id,dnd,forward_busy,ring_seconds,\
               device_1_label,device_1_codecs,device_2_label,device_2_transport,device_2_nat\n\
               a@acme.example,=HYPERLINK(\"x\"),,admin,+41445551234,yes,+41445550000,40,\
               Desk,\"g722,ulaw\",Softphone,tls,no\n\
               b@acme.example,Bea,,,,,,,,,,,\n";
    let r = import(ws, &me, csv, false).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let users = ws.user_list(&me, "acme").await.unwrap();
    let a = ws.user_show(&me, users[0].id).await.unwrap();
    assert_eq!(a.devices.len(), 2);
    assert_eq!(a.devices[1].sip_username, "acme-100-2");
    assert!(a.dnd && a.features_pending);
    let out = ws.users_export(&me, "acme", false).await.unwrap();
    assert!(out.starts_with("email,name,extension,"), "{out}");
    // A formula is written as text, so a spreadsheet does not run it.
    assert!(out.contains("'=HYPERLINK"), "{out}");
    assert!(!out.contains("pin") && !out.contains("password"), "{out}");
    let again = import(ws, &me, &out, false).await;
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!(again.unchanged, 2, "{again:?}");
    assert_eq!(ws.users_export(&me, "acme", false).await.unwrap(), out);

    let edited = out.replace(",Bea,", ",Bea Changed,");
    let r = import(ws, &me, &edited, false).await;
    assert_eq!(actions(&r), [ImportAction::Unchanged, ImportAction::Update]);
    assert_eq!(r.rows[1].changes, ["name"]);
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: Some("acme".into()),
                limit: Some(100),
            },
        )
        .await
        .unwrap();
    let imports = audit.iter().filter(|e| e.action == "users.import").count();
    assert_eq!(imports, 3, "one summary per written import");
    assert!(audit
        .iter()
        .any(|e| e.action == "user.update" && e.entity_id == "acme/101"));

    // Another tenant's admin cannot import or export into acme, and learns nothing of it.
    let pw = SecretString::from("globex admin pw 1");
    ws.operator_add(
        Some(&me),
        "gadmin",
        Role::TenantAdmin,
        &["globex".into()],
        &pw,
    )
    .await
    .unwrap();
    let g = ws.login("gadmin", &pw).await.unwrap();
    let e = ws.users_export(&g, "acme", false).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    let e = ws
        .users_import(&g, "acme", out.as_bytes(), ImportKey::Email, true, &quiet)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
}

/// Secrets leave only with the flag and the right, audited; a PIN is imported once.
async fn secrets_only_with_the_flag_and_the_right(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let r = import(
        ws,
        &me,
        "email,name,voicemail_pin\np@acme.example,Pat,4821\n",
        false,
    )
    .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let with = ws.users_export(&me, "acme", true).await.unwrap();
    assert!(with.contains(",4821,"), "{with}");
    assert!(with.contains("device_1_sip_password"));
    // The export with secrets is imported back unchanged (the password is this device's).
    let again = import(ws, &me, &with, false).await;
    assert_eq!(
        actions(&again),
        [ImportAction::Unchanged],
        "{:?}",
        again.errors
    );
    // A password that is not the device's is refused, and never echoed.
    let users = ws.user_list(&me, "acme").await.unwrap();
    let device = ws.user_show(&me, users[0].id).await.unwrap().devices[0].id;
    let real = ws.device_reveal(&me, device).await.unwrap().sip_password;
    assert!(with.contains(&real));
    let bad = with.replace(&real, "not-the-password");
    let r = import(ws, &me, &bad, false).await;
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].column, "device_1_sip_password");
    assert!(r.errors[0].value.is_empty());
    // A bad PIN names its rule, not its value.
    let r = import(ws, &me, "email,voicemail_pin\np@acme.example,12\n", true).await;
    assert_eq!(r.errors[0].column, "voicemail_pin");
    assert!(r.errors[0].value.is_empty(), "{:?}", r.errors);
    let audit = ws
        .audit_list(
            &me,
            &AuditQuery {
                tenant: Some("acme".into()),
                limit: Some(50),
            },
        )
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "users.export_with_secrets"));
    for e in &audit {
        let text = format!("{:?}{:?}", e.before, e.after);
        assert!(!text.contains("4821"), "a PIN in the audit: {text}");
    }
    // An auditor may export, but not with secrets.
    let pw = SecretString::from("auditor password 1");
    ws.operator_add(Some(&me), "aud", Role::Auditor, &[], &pw)
        .await
        .unwrap();
    let aud = ws.login("aud", &pw).await.unwrap();
    assert!(ws.users_export(&aud, "acme", false).await.is_ok());
    let e = ws.users_export(&aud, "acme", true).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    let e = ws
        .users_import(
            &aud,
            "acme",
            b"email\nx@acme.example\n",
            ImportKey::Email,
            true,
            &quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
}

/// Matching on the extension lets a file change e-mails; new extensions fill the gaps.
async fn match_on_extension_and_fill_gaps(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let r = import(
        ws,
        &me,
        "email,name,extension\na@acme.example,A,101\nb@acme.example,B,\n",
        false,
    )
    .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // The automatic one takes 100, below the explicit 101.
    assert_eq!(r.rows[1].extension, Some(100));
    let r = ws
        .users_import(
            &me,
            "acme",
            b"extension,email\n101,a.new@acme.example\n",
            ImportKey::Extension,
            false,
            &quiet,
        )
        .await
        .unwrap();
    assert_eq!(actions(&r), [ImportAction::Update]);
    assert_eq!(r.rows[0].changes, ["email"]);
    let users = ws.user_list(&me, "acme").await.unwrap();
    assert!(users.iter().any(|u| u.email == "a.new@acme.example"));
    // Moving a user to another extension is not an import's job.
    let r = import(ws, &me, "email,extension\nb@acme.example,150\n", true).await;
    assert_eq!(r.errors[0].column, "extension");
}

/// Many rows, a progress report while writing, and a second import running at the same time:
/// both are whole, and no extension is given twice.
async fn progress_and_concurrent_imports(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let mut a = String::from("email,name\n");
    let mut b = String::from("email,name\n");
    for i in 0..40 {
        a.push_str(&format!("a{i}@acme.example,A {i}\n"));
        b.push_str(&format!("b{i}@acme.example,B {i}\n"));
    }
    let seen = AtomicU32::new(0);
    let report = |p: ImportProgress| {
        assert!(p.done <= p.total);
        seen.store(p.total, Ordering::SeqCst);
    };
    let (ra, rb) = tokio::join!(
        ws.users_import(&me, "acme", a.as_bytes(), ImportKey::Email, false, &report),
        ws.users_import(&me, "acme", b.as_bytes(), ImportKey::Email, false, &quiet),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.written && rb.written, "{:?} {:?}", ra.errors, rb.errors);
    assert_eq!(seen.load(Ordering::SeqCst), 40);
    let users = ws.user_list(&me, "acme").await.unwrap();
    assert_eq!(users.len(), 80);
    let mut exts: Vec<u32> = users.iter().map(|u| u.extension).collect();
    exts.dedup();
    assert_eq!(exts.len(), 80);
    // The lowest free ones, the country's emergency numbers (CH: 112, 117, 118, 143, 144,
    // 147) never among them.
    let emergency = [112, 117, 118, 143, 144, 147];
    let expected: Vec<u32> = (100..200)
        .filter(|e| !emergency.contains(e))
        .take(80)
        .collect();
    assert_eq!(exts, expected);
}

/// Numbers: national forms with the tenant's country, destinations that must exist, trunks
/// the tenant may use, idempotent, round trip.
async fn dids_import_and_export(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    import(ws, &me, "email,name\na@acme.example,A\n", false).await;
    let csv = "Number;Label;Destination\r\n044 555 12 34;Reception;user:100\r\n\
               +41 44 555 12 35;Fax;hangup\r\n";
    let r = ws
        .dids_import(&me, "acme", csv.as_bytes(), false, &quiet)
        .await
        .unwrap();
    assert!(r.errors.is_empty() && r.created == 2, "{r:?}");
    assert_eq!(r.rows[0].key, "+41445551234");
    let out = ws.dids_export(&me, "acme").await.unwrap();
    assert_eq!(
        out,
        "number,label,destination,trunk\n+41445551234,Reception,user:100,\n+41445551235,Fax,hangup,\n"
    );
    let again = ws
        .dids_import(&me, "acme", out.as_bytes(), false, &quiet)
        .await
        .unwrap();
    assert_eq!(again.unchanged, 2, "{again:?}");
    let bad = "number,destination,trunk\n+41445551236,user:199,\n+41445551237,voicemail:100,nope\n\
               +41445551234,hangup,\n+41445551234,hangup,\nnot a number,hangup,\n";
    let r = ws
        .dids_import(&me, "acme", bad.as_bytes(), false, &quiet)
        .await
        .unwrap();
    assert!(!r.written);
    let cols: Vec<(u32, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            (2, "destination"),
            (3, "trunk"),
            (5, "number"),
            (6, "number")
        ],
        "{:?}",
        r.errors
    );
    assert_eq!(r.rows[2].action, ImportAction::Update);
    // Another tenant cannot take a number routed on the PBX.
    let r = ws
        .dids_import(
            &me,
            "globex",
            b"number,destination\n+41445551234,hangup\n",
            false,
            &quiet,
        )
        .await
        .unwrap();
    assert!(
        r.errors[0].rule.contains("already routed"),
        "{:?}",
        r.errors
    );
    assert_eq!(
        ws.did_list(&me, "acme").await.unwrap()[0].destination,
        "user:100"
    );
}

/// Bytes that are not a CSV of users: refused as a whole, never a crash.
async fn hostile_files_are_refused_whole(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    for (bytes, rule) in [
        (&b""[..], "empty"),
        (&b"\xff\xfe\x00e\x00m"[..], "UTF-8"),
        (&b"email,email\n"[..], "twice"),
        (&b"name,password\n"[..], "not a known column"),
    ] {
        let r = ws
            .users_import(&me, "acme", bytes, ImportKey::Email, false, &quiet)
            .await
            .unwrap();
        assert!(!r.written && r.rows.is_empty());
        assert!(
            r.errors.iter().any(|e| e.rule.contains(rule)),
            "{rule}: {:?}",
            r.errors
        );
    }
    // A field with a separator that was not quoted is named, and the other rows still checked.
    let r = import(
        ws,
        &me,
        "email,name\na@acme.example,Doe, Jo\nb@acme.example,B\n",
        false,
    )
    .await;
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].rule.contains("3 fields"), "{:?}", r.errors);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(ws.user_list(&me, "acme").await.unwrap().len(), 0);
}

/// The audit screen: pages newest first, filters, the fields that changed, isolation, CSV.
async fn audit_pages_filters_and_exports(h: &Harness) {
    let ws = &h.ws;
    let me = setup(ws).await;
    let mut csv = String::from("email,name\n");
    for i in 0..30 {
        csv.push_str(&format!("u{i}@acme.example,User {i}\n"));
    }
    import(ws, &me, &csv, false).await;
    import(ws, &me, &csv.replace("User 7\n", "User Seven\n"), false).await;
    let f = |kind: Option<&str>, before: Option<i64>, limit: u32| AuditFilter {
        tenant: Some("acme".into()),
        entity_type: kind.map(str::to_owned),
        before,
        limit: Some(limit),
        ..Default::default()
    };
    // Newest first: the second import's summary, then its one update.
    let p1 = ws.audit_page(&me, &f(None, None, 2)).await.unwrap();
    assert_eq!(p1.entries[0].action, "users.import");
    assert_eq!(p1.entries[1].action, "user.update");
    let name = &p1.entries[1].changes;
    assert_eq!(name.len(), 1, "{name:?}");
    assert_eq!(
        (
            name[0].field.as_str(),
            name[0].before.as_deref(),
            name[0].after.as_deref()
        ),
        ("display_name", Some("User 7"), Some("User Seven"))
    );
    assert_eq!(p1.entries[1].tenant.as_deref(), Some("acme"));
    // Pages follow one another without a gap or a repeat, to the end.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let p = ws
            .audit_page(&me, &f(Some("user"), before, 7))
            .await
            .unwrap();
        seen.extend(p.entries.iter().map(|e| e.id));
        assert!(p.entries.iter().all(|e| e.action.starts_with("user.")));
        match p.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen.len(), 31, "30 creates and 1 update");
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let only_creates = AuditFilter {
        action: Some("user.create".into()),
        ..Default::default()
    };
    let creates = ws.audit_page(&me, &only_creates).await.unwrap();
    assert_eq!(creates.entries.len(), 30);
    // A new user's entry lists what it has; no secret is in it.
    let c = &creates.entries[0].changes;
    assert!(c.iter().any(|x| x.field == "email"), "{c:?}");
    let by_actor = AuditFilter {
        actor: Some("nobody".into()),
        ..Default::default()
    };
    assert!(ws
        .audit_page(&me, &by_actor)
        .await
        .unwrap()
        .entries
        .is_empty());
    let window = AuditFilter {
        from: Some(harness::T0 + 1),
        ..Default::default()
    };
    assert!(
        ws.audit_page(&me, &window)
            .await
            .unwrap()
            .entries
            .is_empty(),
        "the clock is fixed at T0"
    );
    // CSV of the same filter.
    let out = ws
        .audit_export(&me, &f(Some("user"), None, 50))
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 32, "a header and 31 entries");
    assert!(out.starts_with("time,actor,via,action,"));
    assert!(out.contains("display_name: User 7 → User Seven"), "{out}");
    // A tenant_admin of globex sees none of acme's entries, and acme is "not found".
    let pw = SecretString::from("globex admin pw 1");
    ws.operator_add(
        Some(&me),
        "gadmin",
        Role::TenantAdmin,
        &["globex".into()],
        &pw,
    )
    .await
    .unwrap();
    let g = ws.login("gadmin", &pw).await.unwrap();
    let all = ws.audit_page(&g, &AuditFilter::default()).await.unwrap();
    assert!(
        all.entries
            .iter()
            .all(|e| e.tenant.as_deref() == Some("globex")),
        "{:?}",
        all.entries
    );
    let e = ws.audit_page(&g, &f(None, None, 10)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
}

on_both_stores!(
    audit_pages_filters_and_exports,
    messy_csv_is_read_as_people_write_it,
    every_problem_at_once_and_nothing_written,
    round_trip_changes_nothing,
    secrets_only_with_the_flag_and_the_right,
    match_on_extension_and_fill_gaps,
    progress_and_concurrent_imports,
    dids_import_and_export,
    hostile_files_are_refused_whole,
);
