//! The API over HTTP requests (the router in process, as a server runs it): login and tokens,
//! the roles and the tenant scope, the same validation errors as the other front ends, the
//! OpenAPI document checked in.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use pbxdesk_core::domain::Role;
use pbxdesk_core::service::{Clock, KeySource, Location, OpenOptions};
use pbxdesk_core::Workspace;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Api {
    ws: Workspace,
    /// One router for the whole test, as a server has (its login throttle lives in it).
    router: axum::Router,
    _dir: tempfile::TempDir,
}

/// The demo workspace (two tenants on one PBX) with an operator of each role.
async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = OpenOptions::new(
        Location::Sqlite(dir.path().join("ws.sqlite")),
        KeySource::File(dir.path().join("ws.key")),
    );
    opts.clock = Clock::fixed(1_790_000_000_000);
    let ws = Workspace::open(opts).await.unwrap();
    let owner = ws.local_owner().unwrap();
    pbxdesk_core::demo::seed(&ws, &owner).await.unwrap();
    for (name, role, tenants) in [
        ("msp", Role::MspAdmin, vec![]),
        (
            "acme-admin",
            Role::TenantAdmin,
            vec!["acme-dental".to_owned()],
        ),
        ("auditor", Role::Auditor, vec![]),
    ] {
        ws.operator_add(
            Some(&owner),
            name,
            role,
            &tenants,
            &SecretString::from(format!("{name} password 1")),
        )
        .await
        .unwrap();
    }
    let router = pbxdesk_api::router(ws.clone());
    Api {
        ws,
        router,
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, header::HeaderMap) {
        self.call_from(None, method, path, token, body).await
    }

    /// A request from `source`, as `pbxdesk serve` sees its peer.
    async fn call_from(
        &self,
        source: Option<&str>,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, header::HeaderMap) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(addr) = source {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            req = req.extension(axum::extract::ConnectInfo(addr));
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, v, headers)
    }

    async fn login(&self, name: &str) -> Value {
        let (s, v, _) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": name, "password": format!("{name} password 1")})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn token(&self, name: &str) -> String {
        self.login(name).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn login_gives_tokens_that_refresh_once_and_end_at_logout() {
    let a = api().await;
    let (s, v, h) = a
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "msp", "password": "wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["code"], "unauthenticated");
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    // The same answer for a name that does not exist: names cannot be probed.
    let (s2, v2, _) = a
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "wrong"})),
        )
        .await;
    assert_eq!((s2, &v2["message"]), (s, &v["message"]));

    let t = a.login("msp").await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    let access = t["access_token"].as_str().unwrap();
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/tenants", Some(access), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);

    // The scheme's name in any case (RFC 9110).
    let req = Request::builder()
        .uri("/api/v1/tenants")
        .header(header::AUTHORIZATION, format!("bearer {access}"))
        .body(Body::empty())
        .unwrap();
    let res = a.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // No token, a malformed header, a made-up token.
    let (s, v, _) = a.call(Method::GET, "/api/v1/tenants", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/tenants", Some("pbxd_00"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A refresh gives a new pair, once.
    let body = json!({"refresh_token": t["refresh_token"]});
    let (s, again, _) = a
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_ne!(again["access_token"], t["access_token"]);
    let (s, _, _) = a
        .call(Method::POST, "/api/v1/auth/refresh", None, Some(body))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a refresh token is used once");

    // Logout ends the access token.
    let (s, _, _) = a
        .call(Method::POST, "/api/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/tenants", Some(access), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An access token runs out after 15 minutes.
    let fresh = again["access_token"].as_str().unwrap();
    a.ws.clock()
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/tenants", Some(fresh), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn roles_and_tenant_scope_hold_over_http() {
    let a = api().await;
    let (msp, acme, auditor) = (
        a.token("msp").await,
        a.token("acme-admin").await,
        a.token("auditor").await,
    );
    // A tenant_admin sees its tenant only; another tenant does not exist for it.
    let (_, v, _) = a
        .call(Method::GET, "/api/v1/tenants", Some(&acme), None)
        .await;
    let slugs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme-dental"]);
    let (s, v, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/globex/users",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (_, missing, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/no-such/users",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(
        v["message"].as_str().unwrap().replace("globex", "X"),
        missing["message"].as_str().unwrap().replace("no-such", "X"),
        "the same words as a tenant that does not exist"
    );
    let (_, globex_users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/globex/users",
            Some(&msp),
            None,
        )
        .await;
    let hank = globex_users[0]["id"].as_i64().unwrap();
    let (s, _, _) = a
        .call(
            Method::GET,
            &format!("/api/v1/users/{hank}"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{hank}"),
            Some(&acme),
            Some(json!({"dnd": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nor can it change one");

    // An auditor reads, and changes nothing.
    let (s, _, _) = a
        .call(
            Method::GET,
            &format!("/api/v1/users/{hank}"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new =
        json!({"tenant": "acme-dental", "name": "Nina Neu", "email": "nina@acme-dental.example"});
    let (s, v, _) = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&auditor),
            Some(new.clone()),
        )
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden"))
    );

    // The tenant_admin creates in its own tenant; the answer is the user with its extension.
    let (s, v, _) = a
        .call(Method::POST, "/api/v1/users", Some(&acme), Some(new))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["extension"], 108);
    assert_eq!(v["devices"][0]["sip_username"], "acme-dental-108");
    assert!(
        v["devices"][0].get("password").is_none(),
        "no secret in the answer"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_its_field_and_nothing_written() {
    let a = api().await;
    let msp = a.token("msp").await;
    for (body, field) in [
        (
            json!({"tenant": "acme-dental", "name": "Eve", "email": "not-an-address"}),
            "email",
        ),
        (
            json!({"tenant": "acme-dental", "name": "Eve\u{7}\n${SHELL(id)}", "email": "eve@acme-dental.example"}),
            "name",
        ),
        (
            json!({"tenant": "acme-dental", "name": "Eve", "email": "eve@acme-dental.example", "extension": "100;1"}),
            "extension",
        ),
    ] {
        let (s, v, _) = a
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&msp),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {v}");
        assert_eq!(
            (&v["code"], &v["field"]),
            (&json!("validation"), &json!(field)),
            "{v}"
        );
    }
    // A forward to a place no phone may dial.
    let (_, users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(&msp),
            None,
        )
        .await;
    assert_eq!(users.as_array().unwrap().len(), 8, "nothing was created");
    let ada = users[0]["id"].as_i64().unwrap();
    let (s, v, _) = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{ada}"),
            Some(&msp),
            Some(json!({"forward_always": "91&PJSIP/x"})),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("forward_always")),
        "{v}"
    );
    // JSON that is not a user patch at all, a path that is not an id: refused in the API's
    // error shape, never a 500 or a page of text.
    assert_eq!(v_code(&a, &msp, ada).await, json!("validation"));
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/users/abc", Some(&msp), None)
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation")),
        "{v}"
    );
    let (s, v, _) = a.call(Method::GET, "/api/v1/nope", Some(&msp), None).await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

#[tokio::test]
async fn devices_and_numbers_over_http_with_the_reveal_audited_and_never_cached() {
    let a = api().await;
    let (msp, acme, auditor) = (
        a.token("msp").await,
        a.token("acme-admin").await,
        a.token("auditor").await,
    );
    let (_, users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(&acme),
            None,
        )
        .await;
    let ada = users[0]["id"].as_i64().unwrap();
    let (s, d, _) = a
        .call(
            Method::POST,
            &format!("/api/v1/users/{ada}/devices"),
            Some(&acme),
            Some(json!({"label": "Desk phone", "codecs": "opus,ulaw"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_i64().unwrap();
    let (_, list, _) = a
        .call(
            Method::GET,
            &format!("/api/v1/users/{ada}/devices"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The auditor may not see a password; the tenant's admin may, once, audited, no-store.
    let (s, _, _) = a
        .call(
            Method::POST,
            &format!("/api/v1/devices/{id}/reveal"),
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, r, h) = a
        .call(
            Method::POST,
            &format!("/api/v1/devices/{id}/reveal"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["sip_password"].as_str().unwrap().len(), 24);
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let audit =
        a.ws.audit_list(
            &a.ws.local_owner().unwrap(),
            &pbxdesk_core::model::AuditQuery {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "device.reveal" && e.actor == "acme-admin"),
        "{audit:?}"
    );
    let (s, _, _) = a
        .call(
            Method::DELETE,
            &format!("/api/v1/devices/{id}"),
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // A number routed to Ada, typed nationally; listed; changed; removed.
    let (s, did, _) = a
        .call(
            Method::POST,
            "/api/v1/dids",
            Some(&acme),
            Some(json!({"tenant": "acme-dental", "number": "044 555 12 99", "country": "CH", "destination": "user:100"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{did}");
    assert_eq!(did["number"], "+41445551299");
    let (s, v, _) = a
        .call(
            Method::PATCH,
            "/api/v1/dids/+41445551299",
            Some(&acme),
            Some(json!({"destination": "user:999"})),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("destination")),
        "{v}"
    );
    let (_, dids, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/dids",
            Some(&acme),
            None,
        )
        .await;
    assert!(dids
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["number"] == "+41445551299"));
    let (s, _, _) = a
        .call(
            Method::DELETE,
            "/api/v1/dids/+41445551299",
            Some(&acme),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Tenants are the MSP's to make.
    let t = json!({"name": "Initech", "pbx": "demo-pbx", "ext_range": "2000-2999"});
    let (s, _, _) = a
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(&acme),
            Some(t.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v, _) = a
        .call(Method::POST, "/api/v1/tenants", Some(&msp), Some(t))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/tenants/initech", Some(&acme), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

/// The audit over HTTP: a tenant_admin sees its tenant's entries only; a filter of the wrong
/// type is answered in the error shape. PBXs are read with no secret in them.
#[tokio::test]
async fn the_audit_and_the_pbxs_over_http() {
    let a = api().await;
    let (acme, auditor) = (a.token("acme-admin").await, a.token("auditor").await);
    let (s, all, _) = a
        .call(
            Method::GET,
            "/api/v1/audit?limit=1000",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let mentions = |v: &Value, what: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entity_id"].as_str().unwrap_or("").contains(what))
            .count()
    };
    assert!(mentions(&all, "globex") > 0, "the demo made globex's users");
    let (s, mine, _) = a
        .call(Method::GET, "/api/v1/audit?limit=1000", Some(&acme), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    assert!(mentions(&mine, "acme-dental") > 0);
    assert_eq!(mentions(&mine, "globex"), 0, "nothing of another tenant");
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/audit?limit=many", Some(&acme), None)
        .await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("validation")),
        "{v}"
    );
    // A change over the API is recorded with where it came from.
    let (_, users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(&acme),
            None,
        )
        .await;
    let ada = users[0]["id"].as_i64().unwrap();
    let (s, _, _) = a
        .call_from(
            Some("192.0.2.7:5555"),
            Method::PATCH,
            &format!("/api/v1/users/{ada}"),
            Some(&acme),
            Some(json!({"name": "Ada From The API"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, newest, _) = a
        .call(Method::GET, "/api/v1/audit?limit=1", Some(&acme), None)
        .await;
    assert_eq!(newest[0]["action"], "user.update", "{newest}");
    assert_eq!(newest[0]["actor"], "acme-admin");
    assert_eq!(newest[0]["via"], "api 192.0.2.7");
    let (s, pbx, _) = a
        .call(Method::GET, "/api/v1/pbxs/demo-pbx", Some(&auditor), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{pbx}");
    assert_eq!(pbx["ami_secret_set"], false);
    assert!(pbx.get("ami_secret").is_none());
}

/// Failed logins are counted per operator name and per source address: over the limit, that
/// name or address waits out the window (429, Retry-After), even with the right password, and
/// nobody else is slowed; logins that succeed never count.
#[tokio::test]
async fn failed_logins_are_throttled_per_name_and_per_address() {
    let a = api().await;
    let login = |name: &str, password: &str, from: &'static str| {
        let body = json!({"username": name, "password": password});
        let a = &a;
        async move {
            a.call_from(
                Some(from),
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(body),
            )
            .await
        }
    };
    // Successes do not count.
    for _ in 0..15 {
        let (s, _, _) = login("msp", "msp password 1", "10.0.0.1:1000").await;
        assert_eq!(s, StatusCode::OK);
    }
    for i in 0..pbxdesk_api::LOGIN_FAILURES {
        // Each from its own address: only the name's count grows.
        let from: &'static str = Box::leak(format!("10.1.0.{i}:1000").into_boxed_str());
        let (s, _, _) = login("msp", "guess", from).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, v, h) = login("msp", "msp password 1", "10.0.0.1:1000").await;
    assert_eq!(
        (s, &v["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("busy")),
        "{v}"
    );
    let wait: i64 = h[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // Another operator from the same address is not slowed.
    let (s, _, _) = login("acme-admin", "acme-admin password 1", "10.0.0.1:1000").await;
    assert_eq!(s, StatusCode::OK);

    // An address guessing many names is stopped, whatever name it tries next.
    for i in 0..pbxdesk_api::LOGIN_FAILURES {
        let name = format!("nobody{i}");
        let (s, _, _) = login(&name, "guess", "10.9.9.9:4000").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = login("auditor", "auditor password 1", "10.9.9.9:4001").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, _, _) = login("auditor", "auditor password 1", "10.9.9.10:4001").await;
    assert_eq!(s, StatusCode::OK);

    // The window ends.
    let window = u64::try_from(pbxdesk_api::LOGIN_WINDOW_MS).unwrap();
    a.ws.clock()
        .advance(std::time::Duration::from_millis(window));
    let (s, _, _) = login("msp", "msp password 1", "10.0.0.1:1000").await;
    assert_eq!(s, StatusCode::OK);
}

/// The checked-in document is what the code generates. Run with UPDATE_OPENAPI=1 to rewrite
/// `crates/pbxdesk-api/openapi.json` after changing a route or a type.
#[tokio::test]
async fn the_checked_in_openapi_document_is_current_and_served() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let fresh = pbxdesk_api::openapi_text();
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "crates/pbxdesk-api/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p pbxdesk-api --test api` and commit it"
    );
    let a = api().await;
    let (s, v, _) = a
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    assert!(v["paths"]["/api/v1/users/{id}"]["patch"].is_object());
}

/// The code of the answer to a patch that is not JSON of a user patch (a 422).
async fn v_code(a: &Api, token: &str, id: i64) -> Value {
    let (s, v, _) = a
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(token),
            Some(json!({"dnd": "yes please"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("dnd"), "{v}");
    v["code"].clone()
}

#[tokio::test]
async fn automation_tokens_act_in_their_role_and_scope_until_revoked() {
    let a = api().await;
    let msp = a.token("msp").await;
    let make = |body: Value| {
        let msp = msp.clone();
        let a = &a;
        async move {
            a.call(Method::POST, "/api/v1/tokens", Some(&msp), Some(body))
                .await
        }
    };

    // Refused: an msp_admin token, a tenant_admin one without its tenant, a scope on another
    // role, a bad name, a lifetime out of range; nothing is made by any of them.
    for (body, field) in [
        (json!({"name": "psa", "role": "msp_admin"}), "role"),
        (json!({"name": "psa", "role": "tenant_admin"}), "tenant"),
        (
            json!({"name": "psa", "role": "technician", "tenant": "acme-dental"}),
            "tenant",
        ),
        (json!({"name": "PSA; DROP", "role": "auditor"}), "name"),
        (
            json!({"name": "psa", "role": "auditor", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (json!({"name": "psa", "role": "root"}), "role"),
    ] {
        let (s, v, _) = make(body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    let (_, list, _) = a
        .call(Method::GET, "/api/v1/tokens", Some(&msp), None)
        .await;
    assert_eq!(list, json!([]));

    // A tenant_admin token for acme-dental: shown once, never cached.
    let (s, made, h) =
        make(json!({"name": "psa-acme", "role": "tenant_admin", "tenant": "acme-dental"})).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("pbxt_") && secret.len() == 69,
        "{secret}"
    );
    let (s, v, _) = make(json!({"name": "psa-acme", "role": "auditor"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "a live name is taken: {v}");

    // It acts as a tenant_admin of acme-dental, and nothing more.
    let (s, users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(&secret),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{users}");
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/globex/users",
            Some(&secret),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant is not there for it"
    );
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/tokens", Some(&secret), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = a
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&secret),
            Some(json!({"name": "more", "role": "auditor"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a token mints no tokens");
    let (s, _, _) = a
        .call(Method::POST, "/api/v1/auth/logout", Some(&secret), None)
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a token is revoked, not logged out"
    );

    // What it does is audited under its name and the address it came from.
    let (s, user, _) = a
        .call_from(
            Some("192.0.2.44:50000"),
            Method::POST,
            "/api/v1/users",
            Some(&secret),
            Some(json!({"tenant": "acme-dental", "name": "Onboarded By PSA", "email": "psa@acme.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    let (_, audit, _) = a
        .call(Method::GET, "/api/v1/audit?limit=1", Some(&msp), None)
        .await;
    assert_eq!(audit[0]["action"], "user.create", "{audit}");
    assert_eq!(audit[0]["actor"], "token:psa-acme");
    assert_eq!(audit[0]["via"], "api 192.0.2.44");

    // Listed with its last use, never with its secret.
    let (_, list, _) = a
        .call(Method::GET, "/api/v1/tokens", Some(&msp), None)
        .await;
    assert_eq!(list[0]["name"], "psa-acme");
    assert_eq!(list[0]["tenant"], "acme-dental");
    assert_eq!(list[0]["created_by"], "msp");
    assert!(list[0]["last_used_at"].is_i64(), "{list}");
    assert!(!list.to_string().contains(&secret[5..]));
    assert!(!workspace_holds(&a, &secret[5..]), "only a hash is kept");

    // An auditor reads the list but revokes nothing; the msp_admin revokes, and it is over.
    let auditor = a.token("auditor").await;
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/tokens", Some(&auditor), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = a
        .call(
            Method::DELETE,
            "/api/v1/tokens/psa-acme",
            Some(&auditor),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, gone, _) = a
        .call(Method::DELETE, "/api/v1/tokens/psa-acme", Some(&msp), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{gone}");
    assert!(gone["revoked_at"].is_i64());
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(&secret),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked: refused at once");
    let (s, _, _) = a
        .call(Method::DELETE, "/api/v1/tokens/psa-acme", Some(&msp), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no live token of that name");
    // The name may be used again; the list keeps the revoked one.
    let (s, _, _) =
        make(json!({"name": "psa-acme", "role": "auditor", "expires_in_days": 30})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, list, _) = a
        .call(Method::GET, "/api/v1/tokens", Some(&msp), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        list[0]["expires_at"].as_i64().unwrap() - list[0]["created_at"].as_i64().unwrap(),
        30 * 24 * 3600 * 1000
    );
}

/// Whether any file of the test's workspace (the database, its WAL) holds `text`.
fn workspace_holds(a: &Api, text: &str) -> bool {
    std::fs::read_dir(a._dir.path()).unwrap().any(|f| {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        bytes.windows(text.len()).any(|w| w == text.as_bytes())
    })
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let a = api().await;
    let off = "0.0.0.0:0".parse().unwrap();
    let e = pbxdesk_api::bind(a.ws.clone(), off, &pbxdesk_api::Tls::Off)
        .err()
        .expect("plain HTTP on every address is refused");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("loopback"), "{e}");
    let local = "127.0.0.1:0".parse().unwrap();
    let bound = pbxdesk_api::bind(a.ws.clone(), local, &pbxdesk_api::Tls::Off).unwrap();
    assert!(
        bound.url().starts_with("http://127.0.0.1:"),
        "{}",
        bound.url()
    );
    assert!(bound.fingerprint().is_none());
}

/// User `i` of acme-dental (in extension order), invited by its tenant_admin: (id, invite).
async fn invite_acme_user(a: &Api, i: usize) -> (i64, Value) {
    let admin = a.login("acme-admin").await;
    let admin = admin["access_token"].as_str().unwrap();
    let (_, users, _) = a
        .call(
            Method::GET,
            "/api/v1/tenants/acme-dental/users",
            Some(admin),
            None,
        )
        .await;
    let id = users[i]["id"].as_i64().unwrap();
    let (s, invite, h) = a
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/invite"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{invite}");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    (id, invite)
}

#[tokio::test]
async fn an_end_user_sees_and_changes_only_their_own_settings() {
    let a = api().await;
    let (id, invite) = invite_acme_user(&a, 0).await;
    let secret = invite["invite"].as_str().unwrap();
    assert!(secret.starts_with("pbxi_"));
    assert!(!workspace_holds(&a, secret), "the invite is kept hashed");
    let accept = |password: &str| json!({"invite": secret, "password": password});
    // A short password is refused, and the invite still works after.
    let (s, v, _) = a
        .call(
            Method::POST,
            "/api/v1/me/accept",
            None,
            Some(accept("short")),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password")),
        "{v}"
    );
    let (s, session, _) = a
        .call(
            Method::POST,
            "/api/v1/me/accept",
            None,
            Some(accept("my own passphrase 1")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let me_token = session["token"].as_str().unwrap().to_owned();
    let me_token = me_token.as_str();
    // Used once.
    let (s, _, _) = a
        .call(
            Method::POST,
            "/api/v1/me/accept",
            None,
            Some(accept("another passphrase 2")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Their own settings, and nothing of a colleague: no other name appears in any answer.
    let (s, me, _) = a
        .call(Method::GET, "/api/v1/me", Some(me_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["tenant"], "acme-dental");
    let owner = a.ws.local_owner().unwrap();
    let colleagues = a.ws.user_list(&owner, "acme-dental").await.unwrap();
    assert_eq!(me["display_name"], colleagues[0].display_name.as_str());
    let (_, devices, _) = a
        .call(Method::GET, "/api/v1/me/devices", Some(me_token), None)
        .await;
    // The demo PBX's host key is not trusted: no live status, said so, not an error.
    assert_eq!(devices[0]["status"], "unknown", "{devices}");
    for answer in [&me, &devices] {
        for c in &colleagues[1..] {
            assert!(!answer.to_string().contains(&c.display_name), "{answer}");
        }
    }

    // DND and a forward to a colleague's extension; the audit names the user and the address.
    let to = colleagues[1].extension.to_string();
    let (s, v, _) = a
        .call_from(
            Some("192.0.2.44:5000"),
            Method::PATCH,
            "/api/v1/me",
            Some(me_token),
            Some(json!({"dnd": true, "forward_busy": to, "expected_version": me["version"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["dnd"].as_bool(), v["forward_busy"].as_str()),
        (Some(true), Some(to.as_str()))
    );
    let user = a.ws.user_show(&owner, id).await.unwrap();
    assert!(user.dnd);
    let audit = a.ws.audit_list(&owner, &Default::default()).await.unwrap();
    let last = audit.iter().find(|e| e.action == "user.update").unwrap();
    assert_eq!(last.actor, format!("user:acme-dental/{}", user.extension));
    assert_eq!(last.via.as_deref(), Some("api 192.0.2.44"));

    // What a user may not change, or may not set so, is refused with its field; nothing written.
    for (body, field) in [
        (json!({"name": "Mallory"}), None),
        (json!({"role": "admin"}), None),
        (
            json!({"forward_always": "${SHELL(id)}"}),
            Some("forward_always"),
        ),
        (
            json!({"forward_always": "100;hangup"}),
            Some("forward_always"),
        ),
        (json!({"forward_always": "1\n2"}), Some("forward_always")),
        (
            json!({"forward_always": "9".repeat(10_000)}),
            Some("forward_always"),
        ),
        (
            json!({"forward_always": user.extension.to_string()}),
            Some("forward_always"),
        ),
        (json!({"dnd": false, "expected_version": 1}), None),
    ] {
        let (s, v, _) = a
            .call(
                Method::PATCH,
                "/api/v1/me",
                Some(me_token),
                Some(body.clone()),
            )
            .await;
        assert!(s.is_client_error(), "{body} → {s} {v}");
        if field.is_some() {
            assert_eq!(v["field"].as_str(), field, "{body} → {v}");
        }
    }
    assert_eq!(
        a.ws.user_show(&owner, id).await.unwrap(),
        user,
        "nothing changed"
    );
    for pin in ["12", "12a4", "1234567890123", "١٢٣٤"] {
        let (s, v, _) = a
            .call(
                Method::PUT,
                "/api/v1/me/voicemail-pin",
                Some(me_token),
                Some(json!({"pin": pin})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{pin}: {v}");
        assert_eq!(v["field"], "pin", "the request's own field: {v}");
        assert!(!v.to_string().contains(pin), "a PIN is never echoed: {v}");
    }
    let (s, v, _) = a
        .call(
            Method::PUT,
            "/api/v1/me/voicemail-pin",
            Some(me_token),
            Some(json!({"pin": "4711"})),
        )
        .await;
    assert_eq!(
        (s, v["voicemail_pin_set"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );

    // An end user's token opens no operator route, and an operator's opens no /me.
    let colleague = colleagues[1].id;
    for path in [
        format!("/api/v1/users/{colleague}"),
        format!("/api/v1/users/{id}"),
        "/api/v1/tenants/acme-dental/users".to_owned(),
        "/api/v1/audit".to_owned(),
    ] {
        let (s, v, _) = a.call(Method::GET, &path, Some(me_token), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    let msp = a.login("msp").await;
    let (s, _, _) = a
        .call(
            Method::GET,
            "/api/v1/me",
            msp["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Login with the password set; a wrong one, another tenant, or no such e-mail all read alike.
    let login = |tenant: &str, email: &str, password: &str| json!({"tenant": tenant, "email": email, "password": password});
    let email = user.email.as_str();
    for body in [
        login("acme-dental", email, "wrong passphrase 1"),
        login("globex", email, "my own passphrase 1"),
        login("acme-dental", "nobody@acme.example", "my own passphrase 1"),
        login("ACME; DROP", email, "my own passphrase 1"),
    ] {
        let (s, v, _) = a
            .call(Method::POST, "/api/v1/me/login", None, Some(body))
            .await;
        assert_eq!(
            (s, v["message"].as_str()),
            (
                StatusCode::UNAUTHORIZED,
                Some("unknown user or wrong password")
            )
        );
    }
    let (s, v, _) = a
        .call(
            Method::POST,
            "/api/v1/me/login",
            None,
            Some(login("acme-dental", email, "my own passphrase 1")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let second = v["token"].as_str().unwrap().to_owned();

    // A password change ends the user's other sessions and keeps this one; the wrong current
    // password changes nothing.
    let (s, v, _) = a
        .call(
            Method::PUT,
            "/api/v1/me/password",
            Some(&second),
            Some(json!({"current_password": "not it at all!", "new_password": "a newer passphrase 2"})),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("current_password")),
        "{v}"
    );
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/me", Some(me_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "a refused change ends nothing");
    let (s, v, _) = a
        .call(
            Method::PUT,
            "/api/v1/me/password",
            Some(&second),
            Some(json!({"current_password": "my own passphrase 1", "new_password": "a newer passphrase 2"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, _, _) = a
        .call(Method::GET, "/api/v1/me", Some(me_token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the other session ended");
    let (s, _, _) = a.call(Method::GET, "/api/v1/me", Some(&second), None).await;
    assert_eq!(s, StatusCode::OK, "this one goes on");
    let (s, _, _) = a
        .call(
            Method::POST,
            "/api/v1/me/login",
            None,
            Some(login("acme-dental", email, "my own passphrase 1")),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old password is gone");

    // Removing self-service ends every session at once.
    let admin = a.login("acme-admin").await;
    let (s, _, _) = a
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{id}/self-service"),
            admin["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = a.call(Method::GET, "/api/v1/me", Some(&second), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deleted_or_suspended_user_loses_self_service_at_once() {
    let a = api().await;
    // The last user: no number routes to them, so they can be deleted.
    let (id, invite) = invite_acme_user(&a, 4).await;
    let (s, session, _) = a
        .call(
            Method::POST,
            "/api/v1/me/accept",
            None,
            Some(json!({"invite": invite["invite"], "password": "my own passphrase 1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let token = session["token"].as_str().unwrap();
    let owner = a.ws.local_owner().unwrap();
    a.ws.user_set_status(&owner, id, pbxdesk_core::domain::UserStatus::Suspended)
        .await
        .unwrap();
    let (s, _, _) = a.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "suspended");
    a.ws.user_set_status(&owner, id, pbxdesk_core::domain::UserStatus::Active)
        .await
        .unwrap();
    let (s, _, _) = a.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "resumed");
    // A suspended user cannot be invited; an invite to a deleted one cannot be taken.
    let (_, again, _) = {
        let admin = a.login("acme-admin").await;
        a.call(
            Method::POST,
            &format!("/api/v1/users/{id}/invite"),
            admin["access_token"].as_str(),
            None,
        )
        .await
    };
    a.ws.user_delete(&owner, id).await.unwrap();
    let (s, _, _) = a.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "deleted");
    let (s, _, _) = a
        .call(
            Method::POST,
            "/api/v1/me/accept",
            None,
            Some(json!({"invite": again["invite"], "password": "my own passphrase 2"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A browser's preflight from `origin`: the `Access-Control-Allow-Origin` answered, if any.
async fn preflight(router: &axum::Router, origin: &str) -> Option<String> {
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/tenants")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    res.headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn no_cors_unless_origins_are_named_and_then_only_for_them() {
    let a = api().await;
    assert_eq!(
        preflight(&a.router, "https://psa.example.com").await,
        None,
        "none by default"
    );
    let with =
        pbxdesk_api::router_with_origins(a.ws.clone(), &["https://PSA.example.com:8443".into()])
            .unwrap();
    assert_eq!(
        preflight(&with, "https://psa.example.com:8443")
            .await
            .as_deref(),
        Some("https://psa.example.com:8443")
    );
    assert_eq!(preflight(&with, "https://evil.example").await, None);
    assert_eq!(
        preflight(&with, "https://psa.example.com").await,
        None,
        "another port is another origin"
    );
    for bad in [
        "*",
        "https://x.example/path",
        "ftp://x.example",
        "https://a b",
        "https://",
        "https://x.example\n",
    ] {
        let e = pbxdesk_api::parse_origin(bad).unwrap_err();
        assert_eq!(e.field, "cors_origin", "{bad:?}");
    }
}
