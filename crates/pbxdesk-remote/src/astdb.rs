//! A user's call features as the PBX keeps them: AstDB family `pbxdesk/SLUG/EXT`, keys `dnd`
//! (`1` = on), `cfu` (forward always), `cfb` (when busy), `cfna` (no answer). The rendered
//! dialplan reads them at call time and the phone's feature codes write them, so changing them
//! needs no apply. Asterisk sends no event for any AstDB change (s15_events_astdb), so pbxdesk's
//! feature-code dialplan sends a `UserEvent` ([`FEATURE_EVENT`]) after each write, and the tree
//! is read in full after every (re)connect.
//!
//! Shapes from s14_astdb_selfservice: `DBGetTree` lists `Key: /pbxdesk/acme/1000/cfu` (the full
//! path, a leading `/`) and `Val:` (empty allowed); a missing family is Success with no items;
//! `DBDel`/`DBDelTree` of what is not there is `Response: Error`, `Database entry not found`.

use crate::ami::{Action, AmiError, Client, Message};
use std::collections::BTreeMap;

/// The family every key of pbxdesk lives under.
pub const ROOT: &str = "pbxdesk";
/// `pbxdesk/synced`: written by the first full write of a workspace's state. A tree without it
/// was wiped or the PBX rebuilt, so what is missing there was lost, not switched off.
pub const MARKER: &str = "synced";
/// The `UserEvent` name the feature codes send (`Tenant`, `Extension`, `Key` headers).
pub const FEATURE_EVENT: &str = "PbxdeskFeature";
/// The longest forward target kept (what FILTER lets through is dialled as is).
pub const MAX_TARGET: usize = 32;
/// The rule a forward target in AstDB follows, whoever wrote it.
pub const TARGET_RULE: &str = "1 to 32 of 0-9 * # +";

/// One user's features on the PBX.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    pub dnd: bool,
    pub always: Option<String>,
    pub busy: Option<String>,
    pub no_answer: Option<String>,
}

/// The AstDB keys, in the order they are written.
const KEYS: [&str; 4] = ["dnd", "cfu", "cfb", "cfna"];

impl Features {
    fn value(&self, key: &str) -> Option<&str> {
        match key {
            "dnd" => self.dnd.then_some("1"),
            "cfu" => self.always.as_deref(),
            "cfb" => self.busy.as_deref(),
            "cfna" => self.no_answer.as_deref(),
            _ => None,
        }
    }

    /// Takes one key's value as read; `Err` (the value kept out) when it breaks the rule.
    fn set(&mut self, key: &str, value: &str) -> Result<(), ()> {
        let target = |v: &str| -> Result<Option<String>, ()> {
            match v {
                "" => Ok(None),
                v if dialable(v) => Ok(Some(v.to_owned())),
                _ => Err(()),
            }
        };
        match key {
            "dnd" => match value {
                "1" => self.dnd = true,
                "" | "0" => self.dnd = false,
                _ => return Err(()),
            },
            "cfu" => self.always = target(value)?,
            "cfb" => self.busy = target(value)?,
            "cfna" => self.no_answer = target(value)?,
            _ => {}
        }
        Ok(())
    }
}

/// A forward target as AstDB may hold it: what the dialplan's FILTER keeps, bounded.
pub fn dialable(s: &str) -> bool {
    (1..=MAX_TARGET).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit() || b"*#+".contains(&b))
}

/// `pbxdesk/SLUG/EXT`; the slug is checked so no `/` can reach another family.
pub fn family(slug: &str, ext: u32) -> Result<String, AmiError> {
    let ok = (1..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(AmiError::InvalidInput {
            what: "AstDB family",
            reason: format!("tenant {slug:?}: 1 to 63 of a-z 0-9 -"),
        });
    }
    Ok(format!("{ROOT}/{slug}/{ext}"))
}

/// What `DBGetTree pbxdesk` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// `pbxdesk/synced` is there.
    pub marked: bool,
    /// Per (tenant slug, extension).
    pub users: BTreeMap<(String, u32), Features>,
    /// Keys whose value broke the rule (the value is not kept: it is attacker-controlled).
    pub refused: Vec<String>,
}

/// Reads `DBGetTreeResponse` events (s14_astdb_selfservice_07). Keys outside pbxdesk's shape
/// are ignored.
pub fn parse_tree(events: &[Message]) -> Tree {
    let mut t = Tree::default();
    for e in events {
        let (Some(key), val) = (e.get("Key"), e.get("Val").unwrap_or("")) else {
            continue;
        };
        let parts: Vec<&str> = key.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [ROOT, MARKER] => t.marked = true,
            [ROOT, slug, ext, k] if KEYS.contains(k) => {
                let Ok(ext) = ext.parse::<u32>() else {
                    continue;
                };
                let f = t.users.entry(((*slug).to_owned(), ext)).or_default();
                if f.set(k, val).is_err() {
                    t.refused.push(key.to_owned());
                }
            }
            _ => {}
        }
    }
    t
}

/// The tree under `family` (`DBGetTree`): a missing family is an empty tree.
pub async fn read_tree(c: &Client, family: &str) -> Result<Tree, AmiError> {
    let reply = c
        .send(&Action::new("DBGetTree")?.header("Family", family)?)
        .await?;
    if reply.response.get("Response") != Some("Success") {
        return Err(AmiError::ActionFailed {
            action: "DBGetTree".into(),
            message: reply
                .response
                .get("Message")
                .unwrap_or("(no message)")
                .to_owned(),
        });
    }
    Ok(parse_tree(&reply.events))
}

/// One user's features as the PBX holds them now.
pub async fn read_user(
    c: &Client,
    slug: &str,
    ext: u32,
) -> Result<(Features, Vec<String>), AmiError> {
    let mut t = read_tree(c, &family(slug, ext)?).await?;
    let f = t.users.remove(&(slug.to_owned(), ext)).unwrap_or_default();
    Ok((f, t.refused))
}

fn not_found(e: &AmiError) -> bool {
    matches!(e, AmiError::ActionFailed { message, .. } if message == "Database entry not found")
}

/// Makes the PBX hold `to` for one user, writing only the keys that differ from `from` (what
/// it holds now; `None` writes every key). Every value is checked again here, whoever built it.
pub async fn write_user(
    c: &Client,
    slug: &str,
    ext: u32,
    from: Option<&Features>,
    to: &Features,
) -> Result<usize, AmiError> {
    let fam = family(slug, ext)?;
    let mut writes = 0;
    for key in KEYS {
        let new = to.value(key);
        if from.is_some_and(|f| f.value(key) == new) {
            continue;
        }
        match new {
            Some(v) => {
                if key != "dnd" && !dialable(v) {
                    return Err(AmiError::InvalidInput {
                        what: "forward target",
                        reason: format!("{v:?}: {TARGET_RULE}"),
                    });
                }
                c.db_put(&fam, key, v).await?;
            }
            None => match c.db_del(&fam, key).await {
                Err(e) if not_found(&e) => {}
                other => other?,
            },
        }
        writes += 1;
    }
    Ok(writes)
}

/// Writes the marker that says this PBX holds the workspace's state.
pub async fn mark(c: &Client) -> Result<(), AmiError> {
    c.db_put(ROOT, MARKER, "1").await
}

/// The family `probe_write` uses: outside pbxdesk's own tree, so a probe left behind (the
/// connection lost between its two actions) is never read as a user's state.
pub const PROBE_FAMILY: &str = "pbxdesk-check";

/// Proves the AMI user may write AstDB (DBPut and DBDel, class `system`): a key put and
/// deleted again.
pub async fn probe_write(c: &Client) -> Result<(), AmiError> {
    c.db_put(PROBE_FAMILY, "probe", "1").await?;
    c.db_del(PROBE_FAMILY, "probe").await
}

/// The `UserEvent` name of `probe_events`.
pub const PROBE_EVENT: &str = "PbxdeskCheck";

/// Why the feature codes' events would not reach pbxdesk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsProbe {
    /// The `UserEvent` action was refused (the AMI user lacks `write = user`), so nothing was
    /// proven either way.
    NotSent(String),
    /// Sent, and it did not come back within the wait: the AMI user lacks `read = user` (or
    /// logged in with events off).
    NotReceived,
}

/// Proves that a connection logged in with events on receives `user` class events, the class
/// of the feature codes' `UserEvent` (s6_events_on: `Privilege: user,all`): one is sent with a
/// random token and must come back within `wait`.
pub async fn probe_events(c: &Client, wait: std::time::Duration) -> Result<(), EventsProbe> {
    let mut events = c.events();
    let token = format!("{:016x}", rand::random::<u64>());
    let sent = async {
        c.expect_success(
            &Action::new("UserEvent")?
                .header("UserEvent", PROBE_EVENT)?
                .header("Probe", &token)?,
        )
        .await
    };
    sent.await
        .map_err(|e| EventsProbe::NotSent(e.to_string()))?;
    let came = async {
        loop {
            match events.recv().await {
                Ok(m)
                    if m.get("Event") == Some("UserEvent")
                        && m.get("UserEvent") == Some(PROBE_EVENT)
                        && m.get("Probe") == Some(token.as_str()) =>
                {
                    return true;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
            }
        }
    };
    match tokio::time::timeout(wait, came).await {
        Ok(true) => Ok(()),
        _ => Err(EventsProbe::NotReceived),
    }
}

/// A feature code's `UserEvent`: the user whose features the phone just changed.
pub fn feature_event(m: &Message) -> Option<(String, u32)> {
    if m.get("Event") != Some("UserEvent") || m.get("UserEvent") != Some(FEATURE_EVENT) {
        return None;
    }
    let slug = m.get("Tenant")?.trim();
    let ext = m.get("Extension")?.trim().parse().ok()?;
    family(slug, ext).ok()?;
    Some((slug.to_owned(), ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ami::Parser;

    fn messages(raw: &[u8]) -> Vec<Message> {
        let mut p = Parser::default();
        p.push(raw);
        let mut out = Vec::new();
        while let Ok(Some(m)) = p.next_message() {
            out.push(m);
        }
        out
    }

    #[test]
    fn the_captured_tree_reads_as_features() {
        let raw =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "tests/fixtures/asterisk22/ami/s14_astdb_selfservice_07_dbgettree.response.raw",
            ))
            .unwrap();
        let t = parse_tree(&messages(&raw));
        assert!(!t.marked);
        assert_eq!(
            t.users[&("acme".to_owned(), 1000)],
            Features {
                dnd: true,
                always: Some("+15551230000".into()),
                ..Features::default()
            }
        );
        // `dnd=0` and an empty `cfu` (s14_04/05) read as off.
        assert_eq!(t.users[&("acme".to_owned(), 1001)], Features::default());
        assert!(t.refused.is_empty());
    }

    #[test]
    fn values_breaking_the_rule_are_refused_not_kept() {
        let raw = b"Event: DBGetTreeResponse\r\nKey: /pbxdesk/acme/1000/cfu\r\nVal: 91&PJSIP/globex-2000\r\n\r\n\
                    Event: DBGetTreeResponse\r\nKey: /pbxdesk/acme/1000/dnd\r\nVal: yes\r\n\r\n\
                    Event: DBGetTreeResponse\r\nKey: /pbxdesk/synced\r\nVal: 1\r\n\r\n\
                    Event: DBGetTreeResponse\r\nKey: /pbxdesk/acme/x/dnd\r\nVal: 1\r\n\r\n";
        let t = parse_tree(&messages(raw));
        assert!(t.marked);
        assert_eq!(t.users[&("acme".to_owned(), 1000)], Features::default());
        assert_eq!(t.refused.len(), 2);
        assert!(!dialable(&"1".repeat(33)));
        assert!(dialable("*72+41#"));
        assert!(family("acme/../globex", 1).is_err());
        assert!(family("Acme", 1).is_err());
    }

    #[test]
    fn the_feature_event_names_its_user() {
        let m = messages(b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: PbxdeskFeature\r\nTenant: acme\r\nExtension: 1000\r\nKey: dnd\r\n\r\n");
        assert_eq!(feature_event(&m[0]), Some(("acme".into(), 1000)));
        let other = messages(b"Event: UserEvent\r\nUserEvent: PbxTest\r\nHeader1: hello\r\n\r\n");
        assert_eq!(feature_event(&other[0]), None);
        let bad = messages(
            b"Event: UserEvent\r\nUserEvent: PbxdeskFeature\r\nTenant: a/b\r\nExtension: 1\r\n\r\n",
        );
        assert_eq!(feature_event(&bad[0]), None);
    }
}
