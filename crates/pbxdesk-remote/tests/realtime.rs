//! PJSIP Realtime sync against this machine's real MariaDB (127.0.0.1:3306, root; override
//! with PBXDESK_TEST_MARIADB_URL), in a fresh database per test with the tables created exactly
//! as Asterisk 22 creates them. An unreachable MariaDB fails the test.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::realtime::{
    md5_cred, Credential, Device, Realtime, RealtimeError, ASTERISK22_SCHEMA,
};
use secrecy::SecretString;
use sqlx::mysql::MySqlPool;
use sqlx::{Executor, Row};
use std::path::PathBuf;

fn admin_url() -> String {
    std::env::var("PBXDESK_TEST_MARIADB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

struct Db {
    name: String,
    pool: MySqlPool,
    rt: Realtime,
}

async fn fresh() -> Db {
    let admin = MySqlPool::connect(&format!("{}/mysql", admin_url()))
        .await
        .expect("MariaDB on 127.0.0.1:3306 is required");
    let name = format!("pbxdesk_rt_{:08x}", rand_u32());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("{}/{name}", admin_url());
    let pool = MySqlPool::connect(&url).await.unwrap();
    sqlx::raw_sql(ASTERISK22_SCHEMA)
        .execute(&pool)
        .await
        .unwrap();
    let rt = Realtime::connect(&url, None, "test-laptop").await.unwrap();
    Db { name, pool, rt }
}

impl Db {
    async fn drop_db(self) {
        self.rt.close().await;
        self.pool
            .execute(format!("DROP DATABASE {}", self.name).as_str())
            .await
            .unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id().rotate_left(16)
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/asterisk22/sql")
}

fn device(id: &str, md5: bool) -> Device {
    let password = SecretString::from(format!("pw-{id}-secret"));
    Device {
        id: id.into(),
        username: id.into(),
        credential: if md5 {
            Credential::Md5 {
                realm: "asterisk".into(),
                password,
            }
        } else {
            Credential::UserPass(password)
        },
        context: "acme-internal".into(),
        transport: Some("transport-udp".into()),
        allow: "opus,g722,ulaw".into(),
        callerid: format!("\"User {id}\" <{id}>"),
        mailboxes: Some(format!("{id}@acme")),
        nat: true,
        max_contacts: 1,
        set_var: None,
    }
}

#[tokio::test]
async fn realtime_schema_matches_asterisk_22() {
    let db = fresh().await;
    for table in [
        "alembic_version",
        "ps_aors",
        "ps_auths",
        "ps_contacts",
        "ps_domain_aliases",
        "ps_endpoint_id_ips",
        "ps_endpoints",
    ] {
        let row = sqlx::query(&format!("SHOW CREATE TABLE {table}"))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let ddl: String = row.try_get(1).unwrap();
        let captured =
            std::fs::read_to_string(fixtures().join(format!("show_create_table_{table}.txt")))
                .unwrap();
        let captured = &captured[captured.find("CREATE TABLE").unwrap()..];
        assert_eq!(ddl.trim(), captured.trim(), "{table}");
    }
    assert_eq!(
        db.rt.schema_version().await.unwrap(),
        None,
        "no alembic row in a hand-made schema"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn sync_adds_changes_removes_and_does_nothing_when_nothing_changed() {
    let db = fresh().await;
    let mut wanted = vec![
        device("acme-100", false),
        device("acme-101", true),
        device("acme-102", false),
    ];
    let plan = db.rt.sync(&wanted, 1).await.unwrap();
    assert_eq!(plan.add, vec!["acme-100", "acme-101", "acme-102"]);
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_endpoints").await, 3);
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_auths").await, 3);
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_aors").await, 3);
    // md5 auth keeps no password in the PBX's database.
    let (kind, cred, pw): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT CAST(auth_type AS CHAR), md5_cred, password FROM ps_auths WHERE id = 'acme-101'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(kind, "md5");
    assert_eq!(
        cred.unwrap(),
        md5_cred("acme-101", "asterisk", "pw-acme-101-secret")
    );
    assert_eq!(pw, None);

    let again = db.rt.sync(&wanted, 2).await.unwrap();
    assert!(again.is_empty() && again.unchanged == 3, "{again:?}");

    // A registration of 102, as Asterisk writes it (select_ps_contacts_after_register.txt).
    db.pool
        .execute("INSERT INTO ps_contacts (id, uri, expiration_time, endpoint) VALUES ('acme-102^3B@64d5a8ed', 'sip:acme-102@127.0.0.1:5070', 1795648932, 'acme-102')")
        .await
        .unwrap();
    wanted[0].allow = "ulaw".into();
    wanted.remove(2);
    let plan = db.rt.sync(&wanted, 3).await.unwrap();
    assert_eq!(plan.change, vec!["acme-100"]);
    assert_eq!(plan.remove, vec!["acme-102"]);
    let allow: String = sqlx::query_scalar("SELECT allow FROM ps_endpoints WHERE id = 'acme-100'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(allow, "ulaw");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM ps_endpoints WHERE id = 'acme-102'")
            .await,
        0
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM ps_contacts WHERE endpoint = 'acme-102'")
            .await,
        0,
        "its registration is gone too"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn hand_made_endpoints_are_never_touched() {
    let db = fresh().await;
    // Endpoint 100 made by hand, exactly as in the captures (insert_endpoint_100.sql).
    let sql = std::fs::read_to_string(fixtures().join("insert_endpoint_100.sql")).unwrap();
    sqlx::raw_sql(&sql).execute(&db.pool).await.unwrap();
    db.rt.sync(&[device("acme-100", false)], 1).await.unwrap();
    // Removing all of ours leaves the hand-made one.
    db.rt.sync(&[], 2).await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_endpoints").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM ps_endpoints WHERE id = '100'")
            .await,
        1
    );
    // Wanting an id that a hand-made endpoint holds stops the sync before any write.
    let err = db
        .rt
        .sync(&[device("acme-200", false), device("100", false)], 3)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RealtimeError::NotOwned(ref id) if id == "100"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM ps_endpoints WHERE id = 'acme-200'")
            .await,
        0,
        "nothing half-written"
    );
    let pw: String = sqlx::query_scalar("SELECT password FROM ps_auths WHERE id = '100'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(pw, "pw-100-secret");
    db.drop_db().await;
}

#[tokio::test]
async fn a_failing_write_rolls_the_whole_sync_back() {
    let db = fresh().await;
    db.rt.sync(&[device("acme-100", false)], 1).await.unwrap();
    let mut bad = device("acme-101", false);
    bad.allow = "x".repeat(500); // longer than ps_endpoints.allow (varchar(200)): MariaDB refuses it
    let mut changed = device("acme-100", false);
    changed.allow = "alaw".into();
    assert!(db.rt.sync(&[changed, bad], 2).await.is_err());
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_endpoints").await, 1);
    let allow: String = sqlx::query_scalar("SELECT allow FROM ps_endpoints WHERE id = 'acme-100'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        allow, "opus,g722,ulaw",
        "the change before the failure was rolled back"
    );
    // Unsafe ids never reach SQL at all.
    let mut evil = device("acme-1", false);
    evil.id = "x'; DROP TABLE ps_endpoints; --".into();
    assert!(matches!(
        db.rt.sync(&[evil], 3).await,
        Err(RealtimeError::Invalid { .. })
    ));
    db.drop_db().await;
}

/// Every owned row as text, for whole-table comparisons.
async fn dump(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "ps_endpoints",
        "ps_auths",
        "ps_aors",
        "pbxdesk_owned_endpoints",
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY id"))
            .fetch_all(&db.pool)
            .await
            .unwrap();
        for r in rows {
            let mut line = format!("{table}:");
            for i in 0..r.len() {
                let v: Option<String> = r
                    .try_get::<Option<String>, _>(i)
                    .or_else(|_| {
                        r.try_get::<Option<i64>, _>(i)
                            .map(|o| o.map(|n| n.to_string()))
                    })
                    .or_else(|_| {
                        r.try_get::<Option<i32>, _>(i)
                            .map(|o| o.map(|n| n.to_string()))
                    })
                    .unwrap_or_else(|_| Some("?".into()));
                line.push_str(&format!("|{v:?}"));
            }
            out.push(line);
        }
    }
    out
}

#[tokio::test]
async fn the_undo_script_restores_exactly_the_rows_before_a_sync() {
    let db = fresh().await;
    let mut before = vec![device("acme-100", false), device("acme-101", true)];
    // Hostile text survives the round trip as data.
    before[0].callerid = "\"O'Brien;-- ${X} ü\\\" <100>".into();
    db.rt.sync(&before, 7).await.unwrap();
    let old = dump(&db).await;
    assert!(!old.is_empty());

    let mut after = vec![device("acme-100", false), device("acme-102", false)];
    after[0].allow = "ulaw".into();
    let script = db.rt.undo_script(&after).await.unwrap();
    assert!(
        !script.contains("O'Brien") && !script.contains("pw-acme"),
        "values travel as hex only"
    );
    db.rt.sync(&after, 8).await.unwrap();
    assert_ne!(dump(&db).await, old);
    db.rt.undo(&script).await.unwrap();
    assert_eq!(dump(&db).await, old, "undone through sqlx");

    // The PBX's path: the same script through the mysql client, in one transaction.
    db.rt.sync(&after, 9).await.unwrap();
    let wrapped = format!("START TRANSACTION;\n{script}COMMIT;\n");
    let mut child = std::process::Command::new("mysql")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", &db.name])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the mysql client (mariadb-client) is required");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(wrapped.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(dump(&db).await, old, "undone through the mysql client");

    // Nothing to undo when nothing changes.
    assert_eq!(db.rt.undo_script(&before).await.unwrap(), "");
    db.drop_db().await;
}

/// A writer for a tracing subscriber that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The undo script holds the old SIP passwords (hex): nothing of a password reaches the logs,
/// even with every target at TRACE (sqlx logs statement text at DEBUG, slow ones at WARN).
#[tokio::test]
async fn no_secret_reaches_the_logs_at_trace() {
    let logs = Captured::default();
    let w = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    // Global, not per thread: tracing caches each call site's interest process-wide, and with
    // the other tests of this binary running beside it a thread-local subscriber missed events.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let canary = "Canary-Secret-7f3a";
    let db = fresh().await;
    let mut before = vec![device("acme-100", false), device("acme-101", true)];
    for d in &mut before {
        let md5 = matches!(d.credential, Credential::Md5 { .. });
        let password = SecretString::from(format!("{canary}-{}", d.id));
        d.credential = if md5 {
            Credential::Md5 {
                realm: "asterisk".into(),
                password,
            }
        } else {
            Credential::UserPass(password)
        };
    }
    db.rt.sync(&before, 1).await.unwrap();
    let after = vec![device("acme-100", false)];
    let script = db.rt.undo_script(&after).await.unwrap();
    db.rt.sync(&after, 2).await.unwrap();
    db.rt.undo(&script).await.unwrap();
    // A pool with sqlx's default logging, for contrast: its statement text is captured, so
    // the same statements through it would have been caught.
    sqlx::query("SELECT 'probe-statement-0c1d'")
        .execute(&db.pool)
        .await
        .unwrap();
    db.drop_db().await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("probe-statement-0c1d"),
        "sqlx's statement log was not captured: {text}"
    );
    let hex_canary = hex::encode(canary.as_bytes()).to_uppercase();
    for needle in [
        canary.to_owned(),
        hex_canary.clone(),
        hex_canary.to_lowercase(),
    ] {
        assert!(!text.contains(&needle), "{needle} in the logs:\n{text}");
    }
}

/// An owned device whose row is missing from one table (deleted by hand on the PBX): the undo
/// script is still valid SQL and takes the rows back to exactly what they were (the missing row
/// stays missing). It used to emit `INSERT INTO ps_auths (id, ) VALUES …`.
#[tokio::test]
async fn the_undo_script_handles_an_owned_id_missing_from_a_table() {
    let db = fresh().await;
    let before = vec![device("acme-100", false), device("acme-101", true)];
    db.rt.sync(&before, 7).await.unwrap();
    sqlx::query("DELETE FROM ps_auths WHERE id = 'acme-100'")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ps_aors")
        .execute(&db.pool)
        .await
        .unwrap();
    let old = dump(&db).await;
    let mut after = vec![device("acme-100", false), device("acme-102", false)];
    after[0].allow = "ulaw".into();
    let script = db.rt.undo_script(&after).await.unwrap();
    assert!(!script.contains("(id, )"), "{script}");
    db.rt.sync(&after, 8).await.unwrap();
    db.rt.undo(&script).await.unwrap();
    assert_eq!(
        dump(&db).await,
        old,
        "exactly the rows before, the missing ones still missing"
    );
    db.drop_db().await;
}

/// A first apply of a 100 × 999 PBX touches 99,900 ids: more than one statement may hold
/// placeholders (65,535). The undo script of such a sync is still made (it stopped the apply,
/// found by the scale bench), and takes the rows back.
#[tokio::test]
async fn the_undo_script_of_a_sync_of_seventy_thousand_devices() {
    let db = fresh().await;
    let few = vec![device("big-1", false)];
    db.rt.sync(&few, 1).await.unwrap();
    let many: Vec<Device> = (0..70_000)
        .map(|i| device(&format!("big-{i}"), false))
        .collect();
    let script = db.rt.undo_script(&many).await.unwrap();
    db.rt.sync(&many, 2).await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_endpoints").await, 70_000);
    db.rt.undo(&script).await.unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM ps_endpoints").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pbxdesk_owned_endpoints")
            .await,
        1
    );
    db.drop_db().await;
}
