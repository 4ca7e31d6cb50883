//! The RBAC matrix over HTTP: every operation of the OpenAPI document, called by each role (an
//! msp_admin, a technician, the tenant_admin of acme-dental, an auditor, and an automation token
//! that is a tenant_admin of acme-dental), on acme-dental's things and on globex's. Each row
//! says what each caller gets: allowed, forbidden (403), or not there for it (404: a
//! tenant_admin learns nothing of another tenant). A route added without its row fails the
//! coverage check at the end.
//!
//! Each call gets a target of its own, made just before by the workspace's owner, so one
//! role's delete never decides another's answer.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use pbxdesk_core::domain::Role;
use pbxdesk_core::model::{
    NewApiToken, NewDid, NewPbx, NewPolicy, NewRingGroup, NewTrunk, NewUser,
};
use pbxdesk_core::service::{parse_rule, Clock, KeySource, Location, OpenOptions};
use pbxdesk_core::{Actor, Workspace};
use secrecy::SecretString;
use serde_json::Value;
use std::collections::BTreeSet;
use tower::ServiceExt;

/// The callers, in the order of a row's expectations.
const CALLERS: [&str; 6] = [
    "msp_admin",
    "technician",
    "tenant_admin",
    "auditor",
    "token",
    "end_user",
];

/// The end user (of acme-dental) is refused every operator operation: a row of five letters
/// gets `F` for it.
const END_USER: usize = 5;

/// What a row is about: a thing made for each call, whose id or name fills the path.
#[derive(Clone, Copy)]
enum Target {
    None,
    User(&'static str),
    Device(&'static str),
    Did(&'static str),
    RingGroup(&'static str),
    Policy(&'static str),
    Trunk,
    Pbx,
    Token,
    /// A user of the tenant with self-service (invited).
    Invited(&'static str),
}

struct Row {
    /// The operation as the document names it.
    method: Method,
    template: &'static str,
    /// The concrete path: `{id}`, `{name}`, `{n}` are the target's.
    path: &'static str,
    body: Option<&'static str>,
    target: Target,
    /// One letter per caller (five: the end user gets `F`): `O` allowed, `F` forbidden (403), `H` not there (404), `C` a
    /// conflict (409).
    expect: &'static str,
}

const fn row(
    method: Method,
    template: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    target: Target,
    expect: &'static str,
) -> Row {
    Row {
        method,
        template,
        path,
        body,
        target,
        expect,
    }
}

const ACME: &str = "acme-dental";
const GLOBEX: &str = "globex";

fn rows() -> Vec<Row> {
    use Method as M;
    use Target as T;
    vec![
        // auth
        row(
            M::POST,
            "/api/v1/auth/logout",
            "/api/v1/auth/logout",
            None,
            T::None,
            "OOOOC",
        ),
        row(
            M::POST,
            "/api/v1/tokens",
            "/api/v1/tokens",
            Some(r#"{"name": "t{n}", "role": "auditor"}"#),
            T::None,
            "OFFFF",
        ),
        row(
            M::GET,
            "/api/v1/tokens",
            "/api/v1/tokens",
            None,
            T::None,
            "OFFOF",
        ),
        row(
            M::DELETE,
            "/api/v1/tokens/{name}",
            "/api/v1/tokens/{name}",
            None,
            T::Token,
            "OFFFF",
        ),
        row(
            M::GET,
            "/api/v1/operators",
            "/api/v1/operators",
            None,
            T::None,
            "OFFOF",
        ),
        row(
            M::POST,
            "/api/v1/operators",
            "/api/v1/operators",
            Some(r#"{"username": "op{n}", "role": "auditor", "password": "op password {n}"}"#),
            T::None,
            "OFFFF",
        ),
        // tenants
        row(
            M::GET,
            "/api/v1/tenants",
            "/api/v1/tenants",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::POST,
            "/api/v1/tenants",
            "/api/v1/tenants",
            Some(
                r#"{"name": "Rbac {n}", "slug": "rbac-{n}", "pbx": "demo-pbx", "ext_range": "{n}00-{n}99"}"#,
            ),
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}",
            "/api/v1/tenants/acme-dental",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}",
            "/api/v1/tenants/globex",
            None,
            T::None,
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/tenants/{slug}",
            "/api/v1/tenants/acme-dental",
            Some(r#"{"name": "Acme Dental"}"#),
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/users",
            "/api/v1/tenants/acme-dental/users",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/users",
            "/api/v1/tenants/globex/users",
            None,
            T::None,
            "OOHOH",
        ),
        // users
        row(
            M::POST,
            "/api/v1/users",
            "/api/v1/users",
            Some(
                r#"{"tenant": "acme-dental", "name": "New {n}", "email": "new{n}@acme-dental.example"}"#,
            ),
            T::None,
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/users",
            "/api/v1/users",
            Some(r#"{"tenant": "globex", "name": "New {n}", "email": "new{n}@globex.example"}"#),
            T::None,
            "OOHFH",
        ),
        row(
            M::GET,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            None,
            T::User(ACME),
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            None,
            T::User(GLOBEX),
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            Some(r#"{"ring_seconds": 25}"#),
            T::User(ACME),
            "OOOFO",
        ),
        row(
            M::PATCH,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            Some(r#"{"ring_seconds": 25}"#),
            T::User(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            None,
            T::User(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/users/{id}",
            "/api/v1/users/{id}",
            None,
            T::User(GLOBEX),
            "OOHFH",
        ),
        // devices
        row(
            M::GET,
            "/api/v1/users/{id}/devices",
            "/api/v1/users/{id}/devices",
            None,
            T::User(ACME),
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/users/{id}/devices",
            "/api/v1/users/{id}/devices",
            None,
            T::User(GLOBEX),
            "OOHOH",
        ),
        row(
            M::POST,
            "/api/v1/users/{id}/devices",
            "/api/v1/users/{id}/devices",
            Some(r#"{"label": "desk {n}"}"#),
            T::User(ACME),
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/users/{id}/devices",
            "/api/v1/users/{id}/devices",
            Some(r#"{"label": "desk {n}"}"#),
            T::User(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/devices/{id}",
            "/api/v1/devices/{id}",
            None,
            T::Device(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/devices/{id}",
            "/api/v1/devices/{id}",
            None,
            T::Device(GLOBEX),
            "OOHFH",
        ),
        row(
            M::POST,
            "/api/v1/devices/{id}/reveal",
            "/api/v1/devices/{id}/reveal",
            None,
            T::Device(ACME),
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/devices/{id}/reveal",
            "/api/v1/devices/{id}/reveal",
            None,
            T::Device(GLOBEX),
            "OOHFH",
        ),
        // numbers
        row(
            M::GET,
            "/api/v1/tenants/{slug}/dids",
            "/api/v1/tenants/acme-dental/dids",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/dids",
            "/api/v1/tenants/globex/dids",
            None,
            T::None,
            "OOHOH",
        ),
        row(
            M::POST,
            "/api/v1/dids",
            "/api/v1/dids",
            Some(r#"{"tenant": "acme-dental", "number": "+4144666{n}", "destination": "hangup"}"#),
            T::None,
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/dids",
            "/api/v1/dids",
            Some(r#"{"tenant": "globex", "number": "+4930666{n}", "destination": "hangup"}"#),
            T::None,
            "OOHFH",
        ),
        row(
            M::PATCH,
            "/api/v1/dids/{number}",
            "/api/v1/dids/{name}",
            Some(r#"{"destination": "hangup"}"#),
            T::Did(ACME),
            "OOOFO",
        ),
        row(
            M::PATCH,
            "/api/v1/dids/{number}",
            "/api/v1/dids/{name}",
            Some(r#"{"destination": "hangup"}"#),
            T::Did(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/dids/{number}",
            "/api/v1/dids/{name}",
            None,
            T::Did(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/dids/{number}",
            "/api/v1/dids/{name}",
            None,
            T::Did(GLOBEX),
            "OOHFH",
        ),
        // ring groups
        row(
            M::GET,
            "/api/v1/tenants/{slug}/ring-groups",
            "/api/v1/tenants/acme-dental/ring-groups",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/ring-groups",
            "/api/v1/tenants/globex/ring-groups",
            None,
            T::None,
            "OOHOH",
        ),
        row(
            M::POST,
            "/api/v1/ring-groups",
            "/api/v1/ring-groups",
            Some(r#"{"tenant": "acme-dental", "name": "Group {n}", "members": [100]}"#),
            T::None,
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/ring-groups",
            "/api/v1/ring-groups",
            Some(r#"{"tenant": "globex", "name": "Group {n}", "members": [1000]}"#),
            T::None,
            "OOHFH",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/acme-dental/ring-groups/{name}",
            None,
            T::RingGroup(ACME),
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/globex/ring-groups/{name}",
            None,
            T::RingGroup(GLOBEX),
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/acme-dental/ring-groups/{name}",
            Some(r#"{"name": "Renamed {n}"}"#),
            T::RingGroup(ACME),
            "OOOFO",
        ),
        row(
            M::PATCH,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/globex/ring-groups/{name}",
            Some(r#"{"name": "Renamed {n}"}"#),
            T::RingGroup(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/acme-dental/ring-groups/{name}",
            None,
            T::RingGroup(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/ring-groups/{extension}",
            "/api/v1/tenants/globex/ring-groups/{name}",
            None,
            T::RingGroup(GLOBEX),
            "OOHFH",
        ),
        // trunks: the MSP's; a tenant_admin sees the ones its tenants may use
        row(
            M::GET,
            "/api/v1/trunks",
            "/api/v1/trunks",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::POST,
            "/api/v1/trunks",
            "/api/v1/trunks",
            Some(
                r#"{"pbx": "demo-pbx", "name": "t{n}", "host": "sip{n}.example.com", "register": false, "tenants": ["acme-dental"]}"#,
            ),
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/trunks",
            "/api/v1/pbxs/demo-pbx/trunks",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/trunks/{trunk}",
            "/api/v1/pbxs/demo-pbx/trunks/{name}",
            None,
            T::Trunk,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/trunks/{trunk}",
            "/api/v1/pbxs/demo-pbx/trunks/telekom",
            None,
            T::None,
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/pbxs/{name}/trunks/{trunk}",
            "/api/v1/pbxs/demo-pbx/trunks/{name}",
            Some(r#"{"port": 5080}"#),
            T::Trunk,
            "OOFFF",
        ),
        row(
            M::DELETE,
            "/api/v1/pbxs/{name}/trunks/{trunk}",
            "/api/v1/pbxs/demo-pbx/trunks/{name}",
            None,
            T::Trunk,
            "OOFFF",
        ),
        // outbound policies
        row(
            M::GET,
            "/api/v1/tenants/{slug}/policies",
            "/api/v1/tenants/acme-dental/policies",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/policies",
            "/api/v1/tenants/globex/policies",
            None,
            T::None,
            "OOHOH",
        ),
        row(
            M::POST,
            "/api/v1/policies",
            "/api/v1/policies",
            Some(
                r#"{"tenant": "acme-dental", "name": "p{n}", "rules": [], "make_default": false}"#,
            ),
            T::None,
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/policies",
            "/api/v1/policies",
            Some(r#"{"tenant": "globex", "name": "p{n}", "rules": [], "make_default": false}"#),
            T::None,
            "OOHFH",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/acme-dental/policies/{name}",
            None,
            T::Policy(ACME),
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/globex/policies/{name}",
            None,
            T::Policy(GLOBEX),
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/acme-dental/policies/{name}",
            Some(r#"{"rules": []}"#),
            T::Policy(ACME),
            "OOOFO",
        ),
        row(
            M::PATCH,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/globex/policies/{name}",
            Some(r#"{"rules": []}"#),
            T::Policy(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/acme-dental/policies/{name}",
            None,
            T::Policy(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/policies/{name}",
            "/api/v1/tenants/globex/policies/{name}",
            None,
            T::Policy(GLOBEX),
            "OOHFH",
        ),
        row(
            M::POST,
            "/api/v1/tenants/{slug}/policies/{name}/rules",
            "/api/v1/tenants/acme-dental/policies/{name}/rules",
            Some(
                r#"{"pattern": "_0900X.", "allow": false, "strip": 0, "prepend": "", "trunks": []}"#,
            ),
            T::Policy(ACME),
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/tenants/{slug}/policies/{name}/rules",
            "/api/v1/tenants/globex/policies/{name}/rules",
            Some(
                r#"{"pattern": "_0900X.", "allow": false, "strip": 0, "prepend": "", "trunks": []}"#,
            ),
            T::Policy(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/policies/{name}/rules/{position}",
            "/api/v1/tenants/acme-dental/policies/{name}/rules/1",
            None,
            T::Policy(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/tenants/{slug}/policies/{name}/rules/{position}",
            "/api/v1/tenants/globex/policies/{name}/rules/1",
            None,
            T::Policy(GLOBEX),
            "OOHFH",
        ),
        // PBXs: the MSP's; a tenant_admin sees the one its tenant is on
        row(
            M::GET,
            "/api/v1/pbxs",
            "/api/v1/pbxs",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::POST,
            "/api/v1/pbxs",
            "/api/v1/pbxs",
            Some(r#"{"name": "rbac-{n}", "profile": {"host": "pbx{n}.example.net"}}"#),
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}",
            "/api/v1/pbxs/demo-pbx",
            None,
            T::None,
            "OOOOO",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}",
            "/api/v1/pbxs/{name}",
            None,
            T::Pbx,
            "OOHOH",
        ),
        row(
            M::PATCH,
            "/api/v1/pbxs/{name}",
            "/api/v1/pbxs/{name}",
            Some(r#"{"ssh_port": 2222}"#),
            T::Pbx,
            "OOFFF",
        ),
        row(
            M::DELETE,
            "/api/v1/pbxs/{name}",
            "/api/v1/pbxs/{name}",
            None,
            T::Pbx,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/host-key",
            "/api/v1/pbxs/{name}/host-key",
            None,
            T::Pbx,
            "OOFFF",
        ),
        row(
            M::POST,
            "/api/v1/pbxs/{name}/trust",
            "/api/v1/pbxs/{name}/trust",
            Some(r#"{"fingerprint": "SHA256:AAAA"}"#),
            T::Pbx,
            "OOFFF",
        ),
        row(
            M::POST,
            "/api/v1/pbxs/{name}/check",
            "/api/v1/pbxs/{name}/check",
            None,
            T::Pbx,
            "OOFFF",
        ),
        // what is rendered holds every tenant of the PBX: not a tenant_admin's
        row(
            M::GET,
            "/api/v1/pending",
            "/api/v1/pending",
            None,
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/render",
            "/api/v1/pbxs/demo-pbx/render",
            None,
            T::None,
            "OOFOF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/render",
            "/api/v1/pbxs/demo-pbx/render?with_secrets=true",
            None,
            T::None,
            "OOFFF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/diff",
            "/api/v1/pbxs/demo-pbx/diff",
            None,
            T::None,
            "OOFOF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/trace",
            "/api/v1/pbxs/demo-pbx/trace?number=%2B41445551000",
            None,
            T::None,
            "OOFOF",
        ),
        row(
            M::GET,
            "/api/v1/pbxs/{name}/history",
            "/api/v1/pbxs/demo-pbx/history",
            None,
            T::None,
            "OOFOF",
        ),
        row(
            M::POST,
            "/api/v1/pbxs/{name}/apply",
            "/api/v1/pbxs/{name}/apply",
            Some(r#"{"dry_run": true}"#),
            T::Pbx,
            "OOFFF",
        ),
        // the live PBX: a tenant_admin watches only a PBX its tenants are on
        row(
            M::GET,
            "/api/v1/pbxs/{name}/status",
            "/api/v1/pbxs/{name}/status",
            None,
            T::Pbx,
            "OOHOH",
        ),
        // self-service: operators invite and remove; only the end user opens /me
        row(
            M::POST,
            "/api/v1/users/{id}/invite",
            "/api/v1/users/{id}/invite",
            None,
            T::User(ACME),
            "OOOFO",
        ),
        row(
            M::POST,
            "/api/v1/users/{id}/invite",
            "/api/v1/users/{id}/invite",
            None,
            T::User(GLOBEX),
            "OOHFH",
        ),
        row(
            M::DELETE,
            "/api/v1/users/{id}/self-service",
            "/api/v1/users/{id}/self-service",
            None,
            T::Invited(ACME),
            "OOOFO",
        ),
        row(
            M::DELETE,
            "/api/v1/users/{id}/self-service",
            "/api/v1/users/{id}/self-service",
            None,
            T::Invited(GLOBEX),
            "OOHFH",
        ),
        row(M::GET, "/api/v1/me", "/api/v1/me", None, T::None, "FFFFFO"),
        row(
            M::PATCH,
            "/api/v1/me",
            "/api/v1/me",
            Some(r#"{"dnd": true}"#),
            T::None,
            "FFFFFO",
        ),
        row(
            M::PUT,
            "/api/v1/me/voicemail-pin",
            "/api/v1/me/voicemail-pin",
            Some(r#"{"pin": "4711"}"#),
            T::None,
            "FFFFFO",
        ),
        row(
            M::PUT,
            "/api/v1/me/password",
            "/api/v1/me/password",
            Some(r#"{"current_password": "self password 1", "new_password": "self password 1"}"#),
            T::None,
            "FFFFFO",
        ),
        row(
            M::GET,
            "/api/v1/me/devices",
            "/api/v1/me/devices",
            None,
            T::None,
            "FFFFFO",
        ),
        row(
            M::POST,
            "/api/v1/me/logout",
            "/api/v1/me/logout",
            None,
            T::None,
            "FFFFFO",
        ),
        // the audit: a tenant_admin's holds its tenants' entries
        row(
            M::GET,
            "/api/v1/audit",
            "/api/v1/audit",
            None,
            T::None,
            "OOOOO",
        ),
    ]
}

/// Operations anyone may call, without a token.
const PUBLIC: [(&str, &str); 5] = [
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/me/login"),
    ("post", "/api/v1/me/accept"),
    ("get", "/api/v1/openapi.json"),
];

struct World {
    ws: Workspace,
    owner: Actor,
    router: axum::Router,
    tokens: Vec<String>,
    n: std::sync::atomic::AtomicU32,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = OpenOptions::new(
            Location::Sqlite(dir.path().join("ws.sqlite")),
            KeySource::File(dir.path().join("ws.key")),
        );
        opts.clock = Clock::fixed(1_790_000_000_000);
        let ws = Workspace::open(opts).await.unwrap();
        let owner = ws.local_owner().unwrap();
        pbxdesk_core::demo::seed(&ws, &owner).await.unwrap();
        let router = pbxdesk_api::router(ws.clone());
        let mut w = World {
            ws,
            owner,
            router,
            tokens: Vec::new(),
            n: std::sync::atomic::AtomicU32::new(300),
            _dir: dir,
        };
        for (name, role, tenants) in [
            ("msp", Role::MspAdmin, vec![]),
            ("tech", Role::Technician, vec![]),
            ("acme-admin", Role::TenantAdmin, vec![ACME.to_owned()]),
            ("auditor", Role::Auditor, vec![]),
        ] {
            let password = format!("{name} password 1");
            w.ws.operator_add(
                Some(&w.owner),
                name,
                role,
                &tenants,
                &SecretString::from(password.clone()),
            )
            .await
            .unwrap();
            let body = format!(r#"{{"username": "{name}", "password": "{password}"}}"#);
            let (s, v) = w
                .call(Method::POST, "/api/v1/auth/login", None, Some(body))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            w.tokens
                .push(v["access_token"].as_str().unwrap().to_owned());
        }
        let made =
            w.ws.api_token_create(
                &w.owner,
                &NewApiToken {
                    name: "psa".into(),
                    role: "tenant_admin".into(),
                    tenant: Some(ACME.into()),
                    expires_in_days: None,
                },
            )
            .await
            .unwrap();
        w.tokens.push(made.secret);
        let me = w.invited(ACME, 0).await;
        let session = w.accept(&me).await;
        w.tokens.push(session);
        w
    }

    /// A new user of `tenant` invited to self-service: its id and the invite.
    async fn invited(&self, tenant: &str, n: u32) -> (i64, String) {
        let u = self
            .ws
            .user_create(
                &self.owner,
                &NewUser {
                    tenant: tenant.into(),
                    name: format!("Self {n}"),
                    email: format!("self{n}@{tenant}.example"),
                    ..NewUser::default()
                },
            )
            .await
            .unwrap();
        let invite = self.ws.user_invite(&self.owner, u.id).await.unwrap();
        (u.id, invite.invite)
    }

    /// Takes the invite over HTTP: the end user's session token.
    async fn accept(&self, (_, invite): &(i64, String)) -> String {
        let body = format!(r#"{{"invite": "{invite}", "password": "self password 1"}}"#);
        let (s, v) = self
            .call(Method::POST, "/api/v1/me/accept", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    fn next(&self) -> u32 {
        self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Makes the row's target (as the owner) and gives what fills `{id}` / `{name}`.
    async fn prepare(&self, target: Target, n: u32) -> String {
        let ws = &self.ws;
        let o = &self.owner;
        let user = |tenant: &str| NewUser {
            tenant: tenant.into(),
            name: format!("Target {n}"),
            email: format!("target{n}@{tenant}.example"),
            ..NewUser::default()
        };
        match target {
            Target::None => String::new(),
            Target::User(t) => ws.user_create(o, &user(t)).await.unwrap().id.to_string(),
            Target::Device(t) => ws.user_create(o, &user(t)).await.unwrap().devices[0]
                .id
                .to_string(),
            Target::Did(t) => {
                let cc = if t == ACME { "+41445" } else { "+49301" };
                ws.did_add(
                    o,
                    &NewDid {
                        tenant: t.into(),
                        number: format!("{cc}77{n:04}"),
                        destination: "hangup".into(),
                        ..NewDid::default()
                    },
                )
                .await
                .unwrap()
                .number
            }
            Target::RingGroup(t) => ws
                .ring_group_create(
                    o,
                    &NewRingGroup {
                        tenant: t.into(),
                        name: format!("Target {n}"),
                        members: vec![if t == ACME { 100 } else { 1000 }],
                        ..NewRingGroup::default()
                    },
                )
                .await
                .unwrap()
                .extension
                .to_string(),
            Target::Policy(t) => {
                ws.policy_add(
                    o,
                    &NewPolicy {
                        tenant: t.into(),
                        name: format!("target-{n}"),
                        rules: vec![parse_rule("_0900X. deny").unwrap()],
                        make_default: false,
                    },
                )
                .await
                .unwrap()
                .name
            }
            Target::Trunk => {
                ws.trunk_add(
                    o,
                    &NewTrunk {
                        pbx: "demo-pbx".into(),
                        name: format!("target-{n}"),
                        host: format!("sip{n}.example.com"),
                        tenants: vec![ACME.into()],
                        ..NewTrunk::default()
                    },
                )
                .await
                .unwrap()
                .name
            }
            Target::Pbx => {
                // A PBX no tenant is on: the tenant_admin does not see it. Its SSH port is
                // closed, so what would reach it fails at once.
                let mut pbx = NewPbx::at(&format!("target-{n}"), "127.0.0.1");
                pbx.profile.ssh_port = Some(1);
                ws.pbx_add(o, &pbx).await.unwrap().name
            }
            Target::Invited(t) => self.invited(t, n).await.0.to_string(),
            Target::Token => {
                ws.api_token_create(
                    o,
                    &NewApiToken {
                        name: format!("target-{n}"),
                        role: "auditor".into(),
                        ..NewApiToken::default()
                    },
                )
                .await
                .unwrap()
                .token
                .name
            }
        }
    }
}

fn verdict(s: StatusCode) -> char {
    match s.as_u16() {
        403 => 'F',
        404 => 'H',
        409 => 'C',
        401 => 'U',
        s if s >= 500 && s != 502 => 'E',
        _ => 'O',
    }
}

#[tokio::test]
async fn every_operation_answers_each_role_as_the_matrix_says() {
    let w = World::new().await;
    let rows = rows();
    let mut wrong = Vec::new();
    for r in &rows {
        let expect = match r.expect.len() {
            5 => format!("{}F", r.expect),
            _ => r.expect.to_owned(),
        };
        assert_eq!(expect.len(), CALLERS.len(), "{} {}", r.method, r.path);
        for (i, want) in expect.chars().enumerate() {
            let n = w.next();
            let id = w.prepare(r.target, n).await;
            let path = r
                .path
                .replace("{id}", &id)
                .replace("{name}", &urlencode(&id))
                .replace("{n}", &n.to_string());
            let body = r.body.map(|b| b.replace("{n}", &n.to_string()));
            // The logout row ends the caller's session: it gets a fresh one after.
            let token = if r.path == "/api/v1/auth/logout" && i < 4 {
                w.fresh_token(i).await
            } else if r.path == "/api/v1/me/logout" && i == END_USER {
                w.fresh_end_user_session().await
            } else {
                w.tokens[i].clone()
            };
            let (s, v) = w.call(r.method.clone(), &path, Some(&token), body).await;
            let got = verdict(s);
            // Allowed is past the rights: a conflict (a host key not trusted yet) is the
            // operation's own answer.
            if got != want && !(want == 'O' && got == 'C') {
                wrong.push(format!(
                    "{} {path} as {}: wanted {want}, got {s} {v}",
                    r.method, CALLERS[i]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Every operation of the document has a row (or is public).
    let doc = serde_json::to_value(pbxdesk_api::openapi()).unwrap();
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.template.to_owned()))
        .chain(
            PUBLIC
                .iter()
                .map(|(m, p)| ((*m).to_owned(), (*p).to_owned())),
        )
        .collect();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !covered.contains(&(method.clone(), path.clone())) {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without an RBAC row: {missing:?}"
    );
}

impl World {
    /// A new session for the end user, for the row that ends one.
    async fn fresh_end_user_session(&self) -> String {
        let body = format!(
            r#"{{"tenant": "{ACME}", "email": "self0@{ACME}.example", "password": "self password 1"}}"#
        );
        let (s, v) = self
            .call(Method::POST, "/api/v1/me/login", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// A new session for caller `i` (an operator), for the rows that end one.
    async fn fresh_token(&self, i: usize) -> String {
        let name = ["msp", "tech", "acme-admin", "auditor"][i];
        let body = format!(r#"{{"username": "{name}", "password": "{name} password 1"}}"#);
        let (s, v) = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }
}

/// A path segment as sent: `+` of an E.164 number encoded.
fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
}
