//! A tenant's users as CSV: one row a user, its devices in `device_N_…` columns.

use super::table::{self, formula_safe, text_cell, Row, Table};
use super::{parse_bool, yes_no, PROGRESS_EVERY};
use crate::domain::{
    codecs_to_string, parse_codecs, Codec, DisplayName, Email, ExtRange, Extension, ForwardTarget,
    PolicyName, SipUsername, TenantStatus, Transport, UserRole, UserStatus, VoicemailPin, E164,
};
use crate::error::{Error, Result, ValidationError};
use crate::model::{
    Device, ImportAction, ImportKey, ImportProblem, ImportProgress, ImportReport, ImportRow, User,
};
use crate::secret::{generate_pin, generate_sip_password};
use crate::service::audit::{record, Change};
use crate::service::tenant::TenantKey;
use crate::service::{Actor, Workspace};
use crate::store::{db_error, devices, users, Backend, WriteTx};
use secrecy::ExposeSecret;
use sqlx::AnyConnection;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The user columns, in the order an export writes them.
const COLUMNS: &[&str] = &[
    "email",
    "name",
    "extension",
    "role",
    "outbound_caller_id",
    "voicemail",
    "voicemail_pin",
    "dnd",
    "forward_always",
    "forward_busy",
    "forward_no_answer",
    "ring_seconds",
    "policy",
    "tenant",
];
/// A device's columns are `device_N_FIELD`, N from 1.
const DEVICE_FIELDS: &[&str] = &[
    "label",
    "sip_username",
    "transport",
    "codecs",
    "nat",
    "sip_password",
];
const MAX_DEVICES: usize = 9;
const FORWARDS: [&str; 3] = ["forward_always", "forward_busy", "forward_no_answer"];
const DEFAULT_CODECS: &[Codec] = &[Codec::Opus, Codec::G722, Codec::Ulaw, Codec::Alaw];
const DEFAULT_RING: u32 = 25;

fn device_column(c: &str) -> Option<(usize, &str)> {
    let (n, field) = c.strip_prefix("device_")?.split_once('_')?;
    let n: usize = n.parse().ok()?;
    ((1..=MAX_DEVICES).contains(&n) && DEVICE_FIELDS.contains(&field)).then_some((n - 1, field))
}

fn known(c: &str) -> bool {
    COLUMNS.contains(&c) || device_column(c).is_some()
}

fn allowed() -> String {
    format!(
        "{}, device_N_{} (N from 1 to {MAX_DEVICES})",
        COLUMNS.join(", "),
        DEVICE_FIELDS.join(" / device_N_")
    )
}

/// One device as a row gives it; `None` leaves a field as it is (or at its default).
#[derive(Default)]
struct DeviceLine {
    label: Option<DisplayName>,
    username: Option<SipUsername>,
    transport: Option<Transport>,
    codecs: Option<Vec<Codec>>,
    nat: Option<bool>,
    password: Option<String>,
}

impl DeviceLine {
    fn is_empty(&self) -> bool {
        self.label.is_none()
            && self.username.is_none()
            && self.transport.is_none()
            && self.codecs.is_none()
            && self.nat.is_none()
            && self.password.is_none()
    }
}

/// One row, parsed. For each field `None` means "not in the file or empty": leave it as it is
/// (or at its default for a new user); the optional texts are `Some(None)` when a present
/// column's cell is empty, which clears them.
struct Line {
    line: u32,
    key: String,
    tenant: Option<String>,
    email: Option<Email>,
    name: Option<DisplayName>,
    extension: Option<Extension>,
    role: Option<UserRole>,
    caller_id: Option<Option<E164>>,
    voicemail: Option<bool>,
    pin: Option<VoicemailPin>,
    dnd: Option<bool>,
    forwards: [Option<Option<ForwardTarget>>; 3],
    ring: Option<u32>,
    policy: Option<Option<PolicyName>>,
    devices: Vec<DeviceLine>,
    /// A cell broke a rule: the row is reported, not planned further.
    bad: bool,
}

/// The cells of one row, each parsed with its rule; a broken rule is a problem of its cell.
struct Cells<'a> {
    t: &'a Table,
    row: &'a Row,
    problems: &'a mut Vec<ImportProblem>,
    bad: bool,
}

impl Cells<'_> {
    fn push(&mut self, col: &str, value: &str, rule: impl Into<String>) {
        self.problems.push(ImportProblem {
            line: self.row.line,
            column: self.t.spelled(col),
            value: crate::error::printable(value),
            rule: rule.into(),
        });
        self.bad = true;
    }

    /// `None`: no such column; `Some(None)`: an empty cell; `Some(Some(v))`: parsed. A value
    /// that breaks its rule is a problem and reads as no column.
    fn parse<T>(
        &mut self,
        col: &str,
        f: impl FnOnce(&str) -> Result<T, ValidationError>,
    ) -> Option<Option<T>> {
        let v = self.row.get(self.t.col(col))?;
        if v.is_empty() {
            return Some(None);
        }
        match f(v) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                // A secret's rule is told, its value never echoed.
                let secret = col == "voicemail_pin" || col.ends_with("_sip_password");
                let shown = if e.value.is_empty() || secret { "" } else { v };
                self.push(col, shown, e.rule);
                None
            }
        }
    }

    fn value<T>(
        &mut self,
        col: &str,
        f: impl FnOnce(&str) -> Result<T, ValidationError>,
    ) -> Option<T> {
        self.parse(col, f).flatten()
    }
}

fn parse_line(t: &Table, row: &Row, key: ImportKey, problems: &mut Vec<ImportProblem>) -> Line {
    let mut c = Cells {
        t,
        row,
        problems,
        bad: false,
    };
    let email = c.value("email", Email::parse);
    let name = c.value("name", |s| DisplayName::parse("name", text_cell(s)));
    let extension = c.value("extension", Extension::parse);
    let role = c.value("role", UserRole::parse);
    let caller_id = c.parse("outbound_caller_id", E164::parse);
    let voicemail = c.value("voicemail", |s| parse_bool("voicemail", s));
    let pin = c.value("voicemail_pin", VoicemailPin::parse);
    let dnd = c.value("dnd", |s| parse_bool("dnd", s));
    let forwards = FORWARDS.map(|f| c.parse(f, |s| ForwardTarget::parse(f, s)));
    let ring = c.value("ring_seconds", |s| {
        s.parse::<u32>()
            .ok()
            .filter(|r| (5..=300).contains(r))
            .ok_or_else(|| ValidationError::new("ring_seconds", s, "5 to 300 seconds"))
    });
    let policy = c.parse("policy", PolicyName::parse);
    let tenant = c.value("tenant", |s| Ok(s.to_owned()));
    let count = t
        .columns()
        .iter()
        .filter_map(|col| device_column(col).map(|(n, _)| n + 1))
        .max()
        .unwrap_or(0);
    let mut devices = Vec::with_capacity(count);
    for n in 1..=count {
        let col = |f: &str| format!("device_{n}_{f}");
        devices.push(DeviceLine {
            label: c.value(&col("label"), |s| DisplayName::parse("label", text_cell(s))),
            username: c.value(&col("sip_username"), SipUsername::parse),
            transport: c.value(&col("transport"), Transport::parse),
            codecs: c.value(&col("codecs"), parse_codecs),
            nat: c.value(&col("nat"), |s| parse_bool("nat", s)),
            password: c.value(&col("sip_password"), |s| Ok(s.to_owned())),
        });
    }
    let key_text = match key {
        ImportKey::Email => email.as_ref().map(|e| e.as_str().to_owned()),
        ImportKey::Extension => extension.map(|e| e.to_string()),
    };
    let key_col = match key {
        ImportKey::Email => "email",
        ImportKey::Extension => "extension",
    };
    if key_text.is_none() && !c.bad {
        c.push(
            key_col,
            "",
            format!("required: the rows are matched on {key_col}"),
        );
    }
    Line {
        line: row.line,
        key: key_text.unwrap_or_default(),
        tenant,
        email,
        name,
        extension,
        role,
        caller_id,
        voicemail,
        pin,
        dnd,
        forwards,
        ring,
        policy,
        devices,
        bad: c.bad,
    }
}

/// What writing a row does.
enum Op {
    Create(Box<NewUserPlan>),
    Update(Box<UpdatePlan>),
}

struct NewUserPlan {
    user: User,
    pin: String,
    devices: Vec<NewDevicePlan>,
}

struct NewDevicePlan {
    label: String,
    username: String,
    transport: Transport,
    codecs: Vec<Codec>,
    nat: bool,
}

struct UpdatePlan {
    before: User,
    after: User,
    pin: Option<String>,
    ring_or_policy: bool,
    devices_changed: Vec<Device>,
    devices_new: Vec<NewDevicePlan>,
}

struct Plan {
    rows: Vec<ImportRow>,
    ops: Vec<Op>,
}

/// The tenant as the import finds it.
struct State {
    users: Vec<User>,
    held: HashSet<u32>,
    usernames: HashSet<String>,
    pins: HashMap<i64, Vec<u8>>,
    passwords: HashMap<i64, Vec<u8>>,
    policies: HashSet<String>,
}

impl Workspace {
    /// Imports a tenant's users from a CSV file: creates the new ones, updates the ones it
    /// matches (by e-mail, or extension), leaves the rest. All or nothing; a dry run writes
    /// nothing and says what each row would do. `progress` is called while the rows are written.
    pub async fn users_import(
        &self,
        actor: &Actor,
        tenant_slug: &str,
        csv: &[u8],
        key: ImportKey,
        dry_run: bool,
        progress: &(dyn Fn(ImportProgress) + Send + Sync),
    ) -> Result<ImportReport> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, tenant_slug).await?;
        let mut problems = Vec::new();
        let mut report = ImportReport {
            tenant: tenant.slug.clone(),
            dry_run,
            written: false,
            created: 0,
            updated: 0,
            unchanged: 0,
            rows: Vec::new(),
            errors: Vec::new(),
        };
        let Some(t) = table::read(csv, &known, &allowed(), &mut problems) else {
            report.errors = problems;
            return Ok(report);
        };
        let lines: Vec<Line> = t
            .rows
            .iter()
            .map(|r| parse_line(&t, r, key, &mut problems))
            .collect();
        if dry_run {
            let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
            let plan = self
                .plan_users(&mut conn, &tenant, &t, &lines, key, &mut problems)
                .await?;
            return Ok(super::finish(report, plan.rows, problems));
        }
        let mut w = self.store.begin_write().await?;
        if self.store.backend() == Backend::Postgres {
            crate::store::tenants::lock_for_allocation(&mut *w.tx, tenant.id).await?;
        }
        let plan = self
            .plan_users(&mut w.tx, &tenant, &t, &lines, key, &mut problems)
            .await?;
        if !problems.is_empty() {
            return Ok(super::finish(report, plan.rows, problems));
        }
        let now = self.now();
        let total = u32::try_from(plan.ops.len()).unwrap_or(u32::MAX);
        progress(ImportProgress { done: 0, total });
        let pbx_id = devices::pbx_of_tenant(&mut *w.tx, tenant.id).await?;
        for (i, op) in plan.ops.iter().enumerate() {
            match op {
                Op::Create(c) => {
                    self.write_new_user(&mut w, actor, &tenant, pbx_id, c, now)
                        .await?
                }
                Op::Update(u) => {
                    self.write_update(&mut w, actor, &tenant, pbx_id, u, now)
                        .await?
                }
            }
            if (i + 1) % PROGRESS_EVERY == 0 {
                progress(ImportProgress {
                    done: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    total,
                });
            }
        }
        let mut report = super::finish(report, plan.rows, problems);
        let summary = serde_json::json!({
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rows": report.rows.len(),
        });
        let change = Change {
            action: "users.import",
            entity_type: "tenant",
            entity_id: tenant.slug.clone(),
            tenant_id: Some(tenant.id),
        };
        record::<(), _>(&mut w, actor, now, change, None, Some(&summary)).await?;
        w.commit().await?;
        progress(ImportProgress { done: total, total });
        report.written = true;
        Ok(report)
    }

    async fn users_state(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        t: &Table,
        lines: &[Line],
    ) -> Result<State> {
        let mut users_of = Vec::new();
        for row in users::of_tenant(&mut *conn, tenant.id).await? {
            users_of.push(row.into_user()?.0);
        }
        let mut by_id: HashMap<i64, usize> = users_of
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id, i))
            .collect();
        for d in devices::of_tenant(&mut *conn, tenant.id).await? {
            if let Some(&i) = by_id.get(&d.user_id) {
                users_of[i].devices.push(d.into_device()?);
            }
        }
        by_id.clear();
        let cutoff = self.now() - self.quarantine.as_millis() as i64;
        let mut held: HashSet<u32> = users::held_extensions(&mut *conn, tenant.id, cutoff)
            .await?
            .into_iter()
            .filter_map(|e| u32::try_from(e).ok())
            .collect();
        held.extend(
            pbxdesk_render::snapshot::emergency_numbers(&tenant.country)
                .iter()
                .filter_map(|n| n.parse::<u32>().ok()),
        );
        held.extend(
            crate::store::ring_groups::extensions(&mut *conn, tenant.id)
                .await?
                .into_iter()
                .filter_map(|e| u32::try_from(e).ok()),
        );
        let pbx_id = devices::pbx_of_tenant(&mut *conn, tenant.id).await?;
        let usernames = devices::usernames_of_pbx(&mut *conn, pbx_id)
            .await?
            .into_iter()
            .collect();
        let pins = if t.col("voicemail_pin").is_some() {
            users::pins_of_tenant(&mut *conn, tenant.id)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let passwords = if t.columns().iter().any(|c| c.ends_with("_sip_password")) {
            devices::passwords_of_tenant(&mut *conn, tenant.id)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let named: BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| {
                l.policy
                    .as_ref()
                    .and_then(|p| p.as_ref())
                    .map(PolicyName::as_str)
            })
            .collect();
        let mut policies = HashSet::new();
        for p in named {
            if crate::store::tenants::has_policy(&mut *conn, tenant.id, p).await? {
                policies.insert(p.to_owned());
            }
        }
        Ok(State {
            users: users_of,
            held,
            usernames,
            pins,
            passwords,
            policies,
        })
    }

    /// Matches every row with the tenant's users and decides what it does; every problem goes
    /// to `problems`.
    async fn plan_users(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        t: &Table,
        lines: &[Line],
        key: ImportKey,
        problems: &mut Vec<ImportProblem>,
    ) -> Result<Plan> {
        let st = self.users_state(conn, tenant, t, lines).await?;
        let mut planner = Planner {
            ws: self,
            tenant,
            t,
            st: &st,
            problems,
            key,
            seen_keys: HashMap::new(),
            seen_emails: HashMap::new(),
            taken_ext: HashMap::new(),
            taken_names: HashMap::new(),
        };
        let mut rows = Vec::with_capacity(lines.len());
        let mut ops: Vec<Option<Op>> = Vec::with_capacity(lines.len());
        let mut autos = Vec::new();
        for l in lines {
            let (row, op) = planner.plan(l);
            if matches!(&op, Some(Op::Create(c)) if c.user.extension == 0) {
                autos.push(ops.len());
            }
            rows.push(row);
            ops.push(op);
        }
        // New users without an extension get the lowest free ones, in the file's order.
        let range = tenant.range;
        let mut next = range.first().get();
        for i in autos {
            while next <= range.last().get()
                && (st.held.contains(&next) || planner.taken_ext.contains_key(&next))
            {
                next += 1;
            }
            let Some(Op::Create(c)) = &mut ops[i] else {
                continue;
            };
            if next > range.last().get() {
                planner.problem(
                    rows[i].line,
                    "extension",
                    "",
                    format!(
                        "tenant \"{}\" has no free extension left in its range {range} for this row",
                        tenant.slug
                    ),
                );
                rows[i].action = ImportAction::Error;
                continue;
            }
            let ext = Extension::from_number(i64::from(next))
                .map_err(|_| Error::Store("extension out of bounds".into()))?;
            planner.taken_ext.insert(next, rows[i].line);
            next += 1;
            rows[i].extension = Some(ext.get());
            planner.finish_new(c, ext, rows[i].line);
            if planner.problems.iter().any(|p| p.line == rows[i].line) {
                rows[i].action = ImportAction::Error;
            }
        }
        Ok(Plan {
            rows,
            ops: ops.into_iter().flatten().collect(),
        })
    }

    async fn write_new_user(
        &self,
        w: &mut WriteTx<'_>,
        actor: &Actor,
        tenant: &TenantKey,
        pbx_id: i64,
        c: &NewUserPlan,
        now: i64,
    ) -> Result<()> {
        let u = &c.user;
        let made = users::insert(
            &mut *w.tx,
            users::NewUserRow {
                tenant_id: tenant.id,
                display_name: &u.display_name,
                email: &u.email,
                role: u.role.as_str(),
                extension: u.extension,
                outbound_caller_id: u.outbound_caller_id.as_deref(),
                voicemail_enabled: u.voicemail_enabled,
                voicemail_pin: Vec::new(),
                now,
            },
        )
        .await?;
        let id = made.map_err(|_| {
            Error::Conflict(format!(
                "user {} of tenant \"{}\" was taken while importing; run the import again",
                u.email, tenant.slug
            ))
        })?;
        self.put_row_secret(&mut w.tx, "users", "voicemail_pin", id, &c.pin)
            .await?;
        if u.dnd
            || u.forward_always.is_some()
            || u.forward_busy.is_some()
            || u.forward_no_answer.is_some()
            || u.ring_seconds != DEFAULT_RING
            || u.policy.is_some()
        {
            users::set_extras(
                &mut *w.tx,
                users::NewUserExtras {
                    id,
                    dnd: u.dnd,
                    forward_always: u.forward_always.as_deref(),
                    forward_busy: u.forward_busy.as_deref(),
                    forward_no_answer: u.forward_no_answer.as_deref(),
                    ring_seconds: u.ring_seconds,
                    policy: u.policy.as_deref(),
                },
            )
            .await?;
        }
        let mut user = u.clone();
        user.id = id;
        for d in &c.devices {
            user.devices
                .push(self.write_new_device(w, id, pbx_id, d, now).await?);
        }
        let change = Change {
            action: "user.create",
            entity_type: "user",
            entity_id: format!("{}/{}", tenant.slug, u.extension),
            tenant_id: Some(tenant.id),
        };
        record::<User, User>(w, actor, now, change, None, Some(&user)).await
    }

    async fn write_new_device(
        &self,
        w: &mut WriteTx<'_>,
        user_id: i64,
        pbx_id: i64,
        d: &NewDevicePlan,
        now: i64,
    ) -> Result<Device> {
        let id = devices::insert(
            &mut *w.tx,
            devices::NewDeviceRow {
                user_id,
                pbx_id,
                label: &d.label,
                sip_username: &d.username,
                sip_password: Vec::new(),
                transport: d.transport.as_str(),
                codecs: codecs_to_string(&d.codecs),
                nat: d.nat,
                now,
            },
        )
        .await?;
        let password = generate_sip_password();
        self.put_row_secret(
            &mut w.tx,
            "devices",
            "sip_password",
            id,
            password.expose_secret(),
        )
        .await?;
        Ok(Device {
            id,
            user_id,
            label: d.label.clone(),
            sip_username: d.username.clone(),
            transport: d.transport,
            codecs: d.codecs.clone(),
            nat: d.nat,
        })
    }

    async fn write_update(
        &self,
        w: &mut WriteTx<'_>,
        actor: &Actor,
        tenant: &TenantKey,
        pbx_id: i64,
        u: &UpdatePlan,
        now: i64,
    ) -> Result<()> {
        let a = &u.after;
        let written = users::update(
            &mut *w.tx,
            users::UserUpdate {
                id: a.id,
                version: u.before.version,
                display_name: &a.display_name,
                email: &a.email,
                role: a.role.as_str(),
                outbound_caller_id: a.outbound_caller_id.as_deref(),
                voicemail_enabled: a.voicemail_enabled,
                dnd: a.dnd,
                forward_always: a.forward_always.as_deref(),
                forward_busy: a.forward_busy.as_deref(),
                forward_no_answer: a.forward_no_answer.as_deref(),
                now,
            },
        )
        .await?;
        if !matches!(written, Ok(true)) {
            return Err(Error::Conflict(format!(
                "user {}/{} changed while importing; run the import again",
                tenant.slug, a.extension
            )));
        }
        if u.ring_or_policy {
            users::set_ring_and_policy(&mut *w.tx, a.id, a.ring_seconds, a.policy.as_deref())
                .await?;
        }
        if let Some(pin) = &u.pin {
            let sealed = self.seal_for_row("users", "voicemail_pin", a.id, pin)?;
            users::set_pin(&mut *w.tx, a.id, sealed, now).await?;
        }
        for d in &u.devices_changed {
            devices::update(
                &mut *w.tx,
                d.id,
                &d.label,
                d.transport.as_str(),
                &codecs_to_string(&d.codecs),
                d.nat,
                now,
            )
            .await?;
        }
        let mut after = a.clone();
        for d in &u.devices_new {
            after
                .devices
                .push(self.write_new_device(w, a.id, pbx_id, d, now).await?);
        }
        let change = Change {
            action: "user.update",
            entity_type: "user",
            entity_id: format!("{}/{}", tenant.slug, a.extension),
            tenant_id: Some(tenant.id),
        };
        record(w, actor, now, change, Some(&u.before), Some(&after)).await
    }

    /// A tenant's users as CSV (the import's columns, one row a user by extension, as many
    /// device columns as the user with most devices needs). No secret unless `with_secrets`,
    /// which needs the right to reveal them and is audited.
    pub async fn users_export(
        &self,
        actor: &Actor,
        tenant_slug: &str,
        with_secrets: bool,
    ) -> Result<String> {
        let tenant = self.tenant_key(actor, tenant_slug).await?;
        if with_secrets {
            actor.require_reveal()?;
        }
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        let mut list = Vec::new();
        for row in users::of_tenant(&mut *conn, tenant.id).await? {
            list.push(row.into_user()?.0);
        }
        let index: HashMap<i64, usize> = list.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
        for d in devices::of_tenant(&mut *conn, tenant.id).await? {
            if let Some(&i) = index.get(&d.user_id) {
                list[i].devices.push(d.into_device()?);
            }
        }
        let (pins, passwords): (HashMap<i64, Vec<u8>>, HashMap<i64, Vec<u8>>) = if with_secrets {
            (
                users::pins_of_tenant(&mut *conn, tenant.id)
                    .await?
                    .into_iter()
                    .collect(),
                devices::passwords_of_tenant(&mut *conn, tenant.id)
                    .await?
                    .into_iter()
                    .collect(),
            )
        } else {
            (HashMap::new(), HashMap::new())
        };
        drop(conn);
        let most = list
            .iter()
            .map(|u| u.devices.len())
            .max()
            .unwrap_or(1)
            .clamp(1, MAX_DEVICES);
        let mut header: Vec<String> = COLUMNS
            .iter()
            .filter(|c| with_secrets || **c != "voicemail_pin")
            .filter(|c| **c != "tenant")
            .map(|c| (*c).to_owned())
            .collect();
        let fields: Vec<&str> = DEVICE_FIELDS
            .iter()
            .copied()
            .filter(|f| with_secrets || *f != "sip_password")
            .collect();
        for n in 1..=most {
            header.extend(fields.iter().map(|f| format!("device_{n}_{f}")));
        }
        let mut rows = Vec::with_capacity(list.len());
        for u in &list {
            let mut r = vec![
                u.email.clone(),
                formula_safe(&u.display_name),
                u.extension.to_string(),
                u.role.as_str().to_owned(),
                u.outbound_caller_id.clone().unwrap_or_default(),
                yes_no(u.voicemail_enabled),
            ];
            if with_secrets {
                let pin = match pins.get(&u.id) {
                    Some(b) => self
                        .unseal("users", "voicemail_pin", u.id, b)?
                        .expose_secret()
                        .to_owned(),
                    None => String::new(),
                };
                r.push(pin);
            }
            r.extend([
                yes_no(u.dnd),
                u.forward_always.clone().unwrap_or_default(),
                u.forward_busy.clone().unwrap_or_default(),
                u.forward_no_answer.clone().unwrap_or_default(),
                u.ring_seconds.to_string(),
                u.policy.clone().unwrap_or_default(),
            ]);
            for n in 0..most {
                match u.devices.get(n) {
                    Some(d) => {
                        r.extend([
                            formula_safe(&d.label),
                            d.sip_username.clone(),
                            d.transport.as_str().to_owned(),
                            codecs_to_string(&d.codecs),
                            yes_no(d.nat),
                        ]);
                        if with_secrets {
                            let pw = match passwords.get(&d.id) {
                                Some(b) => self
                                    .unseal("devices", "sip_password", d.id, b)?
                                    .expose_secret()
                                    .to_owned(),
                                None => String::new(),
                            };
                            r.push(pw);
                        }
                    }
                    None => r.extend(std::iter::repeat_n(String::new(), fields.len())),
                }
            }
            rows.push(r);
        }
        let out = table::write(&header, &rows)?;
        if with_secrets {
            let now = self.now();
            let mut w = self.store.begin_write().await?;
            let change = Change {
                action: "users.export_with_secrets",
                entity_type: "tenant",
                entity_id: tenant.slug.clone(),
                tenant_id: Some(tenant.id),
            };
            let what = serde_json::json!({ "users": list.len() });
            record::<(), _>(&mut w, actor, now, change, None, Some(&what)).await?;
            w.commit().await?;
        }
        Ok(out)
    }
}

/// Plans rows one at a time, remembering what earlier rows of the file took.
struct Planner<'a> {
    ws: &'a Workspace,
    tenant: &'a TenantKey,
    t: &'a Table,
    st: &'a State,
    problems: &'a mut Vec<ImportProblem>,
    key: ImportKey,
    /// Each key's first line.
    seen_keys: HashMap<String, u32>,
    /// Each e-mail a row gives (or keeps), with its line.
    seen_emails: HashMap<String, u32>,
    /// Each extension a new user of the file takes, with its line.
    taken_ext: HashMap<u32, u32>,
    /// Each SIP username a new device of the file takes, with its line.
    taken_names: HashMap<String, u32>,
}

impl Planner<'_> {
    fn problem(&mut self, line: u32, col: &str, value: &str, rule: impl Into<String>) {
        self.problems.push(ImportProblem {
            line,
            column: if col.is_empty() {
                String::new()
            } else {
                self.t.spelled(col)
            },
            value: crate::error::printable(value),
            rule: rule.into(),
        });
    }

    fn plan(&mut self, l: &Line) -> (ImportRow, Option<Op>) {
        let mut row = ImportRow {
            line: l.line,
            key: l.key.clone(),
            action: ImportAction::Error,
            extension: None,
            changes: Vec::new(),
        };
        if l.bad {
            return (row, None);
        }
        let key_col = match self.key {
            ImportKey::Email => "email",
            ImportKey::Extension => "extension",
        };
        if let Some(first) = self.seen_keys.get(&l.key) {
            let first = *first;
            self.problem(
                l.line,
                key_col,
                &l.key,
                format!("given twice in the file (also on line {first})"),
            );
            return (row, None);
        }
        self.seen_keys.insert(l.key.clone(), l.line);
        if let Some(t) = &l.tenant {
            if t != &self.tenant.slug {
                self.problem(
                    l.line,
                    "tenant",
                    t,
                    format!(
                        "this file is imported into tenant \"{}\"; import this row into its own tenant",
                        self.tenant.slug
                    ),
                );
                return (row, None);
            }
        }
        let existing = self.st.users.iter().find(|u| match self.key {
            ImportKey::Email => Some(u.email.as_str()) == l.email.as_ref().map(Email::as_str),
            ImportKey::Extension => Some(u.extension) == l.extension.map(Extension::get),
        });
        if let Some(email) = &l.email {
            if let Some(first) = self.seen_emails.get(email.as_str()) {
                let first = *first;
                self.problem(
                    l.line,
                    "email",
                    email.as_str(),
                    format!("given twice in the file (also on line {first})"),
                );
                return (row, None);
            }
            self.seen_emails.insert(email.as_str().to_owned(), l.line);
        }
        let before = self.problems.len();
        let op = match existing {
            Some(u) => self.plan_update(l, u, &mut row),
            None => self.plan_new(l, &mut row),
        };
        if self.problems.len() > before {
            row.action = ImportAction::Error;
            return (row, None);
        }
        (row, op)
    }

    fn check_policy(&mut self, l: &Line) {
        if let Some(Some(p)) = &l.policy {
            if !self.st.policies.contains(p.as_str()) {
                let slug = self.tenant.slug.clone();
                self.problem(
                    l.line,
                    "policy",
                    p.as_str(),
                    format!("tenant \"{slug}\" has no outbound policy named so"),
                );
            }
        }
    }

    fn check_self_forward(&mut self, l: &Line, ext: u32) {
        for (f, v) in FORWARDS.iter().zip(&l.forwards) {
            if let Some(Some(ForwardTarget::Extension(e))) = v {
                if e.get() == ext {
                    self.problem(
                        l.line,
                        f,
                        &e.to_string(),
                        "a user cannot forward to their own extension",
                    );
                }
            }
        }
    }

    /// A device the file adds: its username is the file's (free on the PBX) or the next free
    /// `TENANT-EXT[-N]` (given once the extension is known).
    fn new_device(&mut self, l: &Line, n: usize, d: &DeviceLine) -> Option<NewDevicePlan> {
        let col = |f: &str| format!("device_{}_{f}", n + 1);
        if d.password.is_some() {
            self.problem(
                l.line,
                &col("sip_password"),
                "",
                "a new device gets a password of its own; leave this empty",
            );
        }
        let username = match &d.username {
            Some(u) => {
                let name = u.as_str().to_owned();
                if self.st.usernames.contains(&name) {
                    self.problem(
                        l.line,
                        &col("sip_username"),
                        &name,
                        "already used on this PBX (usernames are unique across all its tenants)",
                    );
                } else if let Some(first) = self.taken_names.get(&name) {
                    let first = *first;
                    self.problem(
                        l.line,
                        &col("sip_username"),
                        &name,
                        format!("given twice in the file (also on line {first})"),
                    );
                } else {
                    self.taken_names.insert(name.clone(), l.line);
                }
                name
            }
            None => String::new(),
        };
        Some(NewDevicePlan {
            label: d
                .label
                .as_ref()
                .map_or_else(|| "Phone".to_owned(), |x| x.as_str().to_owned()),
            username,
            transport: d.transport.unwrap_or(Transport::Udp),
            codecs: d.codecs.clone().unwrap_or_else(|| DEFAULT_CODECS.to_vec()),
            nat: d.nat.unwrap_or(true),
        })
    }

    /// Gives new devices without a username the next free `TENANT-EXT`, `TENANT-EXT-2`, …
    fn name_devices(&mut self, devices: &mut [NewDevicePlan], ext: u32, line: u32, taken: usize) {
        let base = format!("{}-{ext}", self.tenant.slug);
        let mut n = taken + 1;
        for d in devices.iter_mut().filter(|d| d.username.is_empty()) {
            loop {
                let name = if n == 1 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                };
                n += 1;
                if !self.st.usernames.contains(&name) && !self.taken_names.contains_key(&name) {
                    self.taken_names.insert(name.clone(), line);
                    d.username = name;
                    break;
                }
            }
        }
    }

    fn plan_new(&mut self, l: &Line, row: &mut ImportRow) -> Option<Op> {
        row.action = ImportAction::Create;
        if self.tenant.status != TenantStatus::Active {
            let slug = self.tenant.slug.clone();
            self.problem(
                l.line,
                "",
                "",
                format!("tenant \"{slug}\" is suspended; resume it before adding users"),
            );
        }
        if l.name.is_none() {
            self.problem(l.line, "name", "", "required for a new user");
        }
        let Some(email) = &l.email else {
            self.problem(l.line, "email", "", "required for a new user");
            return None;
        };
        if self.key == ImportKey::Extension {
            if let Some(other) = self.st.users.iter().find(|u| u.email == email.as_str()) {
                let (e, x) = (email.as_str().to_owned(), other.extension);
                self.problem(
                    l.line,
                    "email",
                    &e,
                    format!("already the e-mail of the user with extension {x}"),
                );
            }
        }
        let range: ExtRange = self.tenant.range;
        if let Some(ext) = l.extension {
            let n = ext.get();
            if !range.contains(ext) {
                let slug = self.tenant.slug.clone();
                self.problem(
                    l.line,
                    "extension",
                    &n.to_string(),
                    format!("must be within tenant \"{slug}\"'s range {range}"),
                );
            } else if pbxdesk_render::snapshot::emergency_numbers(&self.tenant.country)
                .contains(&n.to_string().as_str())
            {
                let country = self.tenant.country.clone();
                self.problem(
                    l.line,
                    "extension",
                    &n.to_string(),
                    format!("not an emergency number of {country} (dialling it calls the emergency services)"),
                );
            } else if let Some(u) = self.st.users.iter().find(|u| u.extension == n) {
                let name = u.display_name.clone();
                self.problem(
                    l.line,
                    "extension",
                    &n.to_string(),
                    format!("in use by {name}"),
                );
            } else if self.st.held.contains(&n) {
                self.problem(
                    l.line,
                    "extension",
                    &n.to_string(),
                    "held in quarantine: it belonged to a user deleted recently",
                );
            } else if let Some(first) = self.taken_ext.get(&n) {
                let first = *first;
                self.problem(
                    l.line,
                    "extension",
                    &n.to_string(),
                    format!("given twice in the file (also on line {first})"),
                );
            } else {
                self.taken_ext.insert(n, l.line);
            }
        }
        self.check_policy(l);
        let mut devices = Vec::new();
        for (n, d) in l.devices.iter().enumerate() {
            if !d.is_empty() {
                devices.extend(self.new_device(l, n, d));
            }
        }
        if devices.is_empty() {
            devices.push(NewDevicePlan {
                label: "Phone".to_owned(),
                username: String::new(),
                transport: Transport::Udp,
                codecs: DEFAULT_CODECS.to_vec(),
                nat: true,
            });
        }
        let forward = |i: usize| l.forwards[i].clone().flatten().map(|f| f.to_string());
        let user = User {
            id: 0,
            tenant: self.tenant.slug.clone(),
            extension: 0,
            display_name: l
                .name
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            email: email.as_str().to_owned(),
            role: l.role.unwrap_or(UserRole::Member),
            status: UserStatus::Active,
            outbound_caller_id: l.caller_id.clone().flatten().map(|c| c.as_str().to_owned()),
            voicemail_enabled: l.voicemail.unwrap_or(true),
            voicemail_pin_set: true,
            dnd: l.dnd.unwrap_or(false),
            forward_always: forward(0),
            forward_busy: forward(1),
            forward_no_answer: forward(2),
            features_pending: false,
            voicemail_pin_pending: false,
            ring_seconds: l.ring.unwrap_or(DEFAULT_RING),
            policy: l.policy.clone().flatten().map(|p| p.as_str().to_owned()),
            version: 1,
            devices: Vec::new(),
        };
        let mut plan = NewUserPlan {
            user,
            pin: l.pin.as_ref().map_or_else(
                || generate_pin().expose_secret().to_owned(),
                |p| p.expose().to_owned(),
            ),
            devices,
        };
        plan.user.features_pending = plan.user.dnd
            || plan.user.forward_always.is_some()
            || plan.user.forward_busy.is_some()
            || plan.user.forward_no_answer.is_some();
        if let Some(ext) = l.extension {
            row.extension = Some(ext.get());
            self.finish_new(&mut plan, ext, l.line);
        }
        Some(Op::Create(Box::new(plan)))
    }

    /// What a new user's extension decides: its devices' names, no forward to itself.
    fn finish_new(&mut self, plan: &mut NewUserPlan, ext: Extension, line: u32) {
        plan.user.extension = ext.get();
        self.name_devices(&mut plan.devices, ext.get(), line, 0);
        for (f, v) in FORWARDS.iter().zip([
            &plan.user.forward_always,
            &plan.user.forward_busy,
            &plan.user.forward_no_answer,
        ]) {
            if v.as_deref() == Some(ext.to_string().as_str()) {
                let e = ext.to_string();
                self.problem(line, f, &e, "a user cannot forward to their own extension");
            }
        }
    }

    fn plan_update(&mut self, l: &Line, u: &User, row: &mut ImportRow) -> Option<Op> {
        row.extension = Some(u.extension);
        if u.status == UserStatus::Deleted {
            return None;
        }
        if let Some(ext) = l.extension {
            if ext.get() != u.extension {
                let email = u.email.clone();
                self.problem(
                    l.line,
                    "extension",
                    &ext.to_string(),
                    format!(
                        "{email} has extension {}; an import does not move a user to another extension",
                        u.extension
                    ),
                );
            }
        }
        if self.key == ImportKey::Extension {
            if let Some(e) = &l.email {
                if let Some(other) = self
                    .st
                    .users
                    .iter()
                    .find(|o| o.id != u.id && o.email == e.as_str())
                {
                    let (v, x) = (e.as_str().to_owned(), other.extension);
                    self.problem(
                        l.line,
                        "email",
                        &v,
                        format!("already the e-mail of the user with extension {x}"),
                    );
                }
            }
        } else {
            self.seen_emails.insert(u.email.clone(), l.line);
        }
        self.check_policy(l);
        self.check_self_forward(l, u.extension);
        let mut a = u.clone();
        let mut changes = Vec::new();
        let mut set = |field: &str, changed: bool| {
            if changed {
                changes.push(field.to_owned());
            }
        };
        if let Some(n) = &l.name {
            set("name", n.as_str() != a.display_name);
            a.display_name = n.as_str().to_owned();
        }
        if let Some(e) = &l.email {
            set("email", e.as_str() != a.email);
            a.email = e.as_str().to_owned();
        }
        if let Some(r) = l.role {
            set("role", r != a.role);
            a.role = r;
        }
        if let Some(c) = &l.caller_id {
            let v = c.as_ref().map(|c| c.as_str().to_owned());
            set("outbound_caller_id", v != a.outbound_caller_id);
            a.outbound_caller_id = v;
        }
        if let Some(v) = l.voicemail {
            set("voicemail", v != a.voicemail_enabled);
            a.voicemail_enabled = v;
        }
        if let Some(d) = l.dnd {
            set("dnd", d != a.dnd);
            a.dnd = d;
        }
        let fw = [
            &mut a.forward_always,
            &mut a.forward_busy,
            &mut a.forward_no_answer,
        ];
        for ((name, given), slot) in FORWARDS.iter().zip(&l.forwards).zip(fw) {
            if let Some(f) = given {
                let v = f.as_ref().map(ToString::to_string);
                set(name, v != *slot);
                *slot = v;
            }
        }
        let mut ring_or_policy = false;
        if let Some(r) = l.ring {
            set("ring_seconds", r != a.ring_seconds);
            ring_or_policy |= r != a.ring_seconds;
            a.ring_seconds = r;
        }
        if let Some(p) = &l.policy {
            let v = p.as_ref().map(|p| p.as_str().to_owned());
            set("policy", v != a.policy);
            ring_or_policy |= v != a.policy;
            a.policy = v;
        }
        let mut pin = None;
        if let Some(p) = &l.pin {
            let same = self
                .st
                .pins
                .get(&u.id)
                .and_then(|b| self.ws.unseal("users", "voicemail_pin", u.id, b).ok())
                .is_some_and(|old| old.expose_secret() == p.expose());
            if !same {
                changes.push("voicemail_pin".to_owned());
                pin = Some(p.expose().to_owned());
                a.voicemail_pin_set = true;
                a.voicemail_pin_pending = a.voicemail_enabled;
            }
        }
        let mut devices_changed = Vec::new();
        let mut devices_new = Vec::new();
        for (n, d) in l.devices.iter().enumerate() {
            if d.is_empty() {
                continue;
            }
            let Some(old) = u.devices.get(n) else {
                devices_new.extend(self.new_device(l, n, d));
                continue;
            };
            let col = |f: &str| format!("device_{}_{f}", n + 1);
            if let Some(name) = &d.username {
                if name.as_str() != old.sip_username {
                    let was = old.sip_username.clone();
                    self.problem(
                        l.line,
                        &col("sip_username"),
                        name.as_str(),
                        format!("this user's device {} is \"{was}\"; an import does not rename a device", n + 1),
                    );
                }
            }
            if let Some(p) = &d.password {
                let same = self
                    .st
                    .passwords
                    .get(&old.id)
                    .and_then(|b| self.ws.unseal("devices", "sip_password", old.id, b).ok())
                    .is_some_and(|s| s.expose_secret() == p);
                if !same {
                    self.problem(
                        l.line,
                        &col("sip_password"),
                        "",
                        "not this device's password; an import does not change SIP passwords (leave the column out)",
                    );
                }
            }
            let mut new = old.clone();
            if let Some(x) = &d.label {
                new.label = x.as_str().to_owned();
            }
            if let Some(x) = d.transport {
                new.transport = x;
            }
            if let Some(x) = &d.codecs {
                new.codecs.clone_from(x);
            }
            if let Some(x) = d.nat {
                new.nat = x;
            }
            if new != *old {
                changes.push(format!("device {}", n + 1));
                a.devices[n] = new.clone();
                devices_changed.push(new);
            }
        }
        if !devices_new.is_empty() {
            changes.push(format!("{} new device(s)", devices_new.len()));
            self.name_devices(&mut devices_new, u.extension, l.line, u.devices.len());
        }
        let features = ["dnd", "forward_always", "forward_busy", "forward_no_answer"];
        if changes.iter().any(|c| features.contains(&c.as_str())) {
            a.features_pending = true;
        }
        if changes.is_empty() {
            row.action = ImportAction::Unchanged;
            return None;
        }
        row.action = ImportAction::Update;
        row.changes.clone_from(&changes);
        a.version += 1;
        Some(Op::Update(Box::new(UpdatePlan {
            before: u.clone(),
            after: a,
            pin,
            ring_or_policy,
            devices_changed,
            devices_new,
        })))
    }
}
