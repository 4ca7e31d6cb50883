//! The users table: its rows as the services read them.

use super::db_error;
use crate::domain::{UserRole, UserStatus};
use crate::error::{Error, Result};
use crate::model::User;
use sqlx::{Any, AnyConnection, Executor};

/// A user with its tenant's slug (devices apart).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub tenant: String,
    pub extension: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub outbound_caller_id: Option<String>,
    pub voicemail_enabled: i64,
    pub voicemail_pin: Option<Vec<u8>>,
    pub dnd: i64,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub features_pending: i64,
    pub pin_pending: i64,
    pub version: i64,
    pub tenant_id: i64,
    pub ring_seconds: i64,
    pub policy: Option<String>,
}

// Booleans as integers: the Any driver maps SQLite booleans poorly.
const SELECT: &str = "SELECT u.id AS id, t.slug AS tenant, u.extension AS extension, \
     u.display_name AS display_name, u.email AS email, u.role AS role, u.status AS status, \
     u.outbound_caller_id AS outbound_caller_id, \
     CAST(u.voicemail_enabled AS INTEGER) AS voicemail_enabled, u.voicemail_pin AS voicemail_pin, \
     CAST(u.dnd AS INTEGER) AS dnd, u.forward_always AS forward_always, \
     u.forward_busy AS forward_busy, u.forward_no_answer AS forward_no_answer, \
     CAST(CASE WHEN COALESCE(CAST(f.dnd AS INTEGER), 0) = CAST(u.dnd AS INTEGER) \
       AND f.always IS NOT DISTINCT FROM u.forward_always AND f.busy IS NOT DISTINCT FROM u.forward_busy \
       AND f.no_answer IS NOT DISTINCT FROM u.forward_no_answer THEN 0 ELSE 1 END AS INTEGER) AS features_pending, \
     CAST(CASE WHEN u.pin_pending_since IS NOT NULL AND CAST(u.voicemail_enabled AS INTEGER) = 1 \
       THEN 1 ELSE 0 END AS INTEGER) AS pin_pending, \
     u.version AS version, \
     u.tenant_id AS tenant_id, u.ring_seconds AS ring_seconds, u.policy AS policy \
     FROM users u JOIN tenants t ON t.id = u.tenant_id \
     LEFT JOIN user_features_on_pbx f ON f.user_id = u.id";

fn damaged(what: &str) -> Error {
    Error::Store(format!("{what} on record is damaged"))
}

impl UserRow {
    /// The user (no devices yet) and its tenant's id.
    pub(crate) fn into_user(self) -> Result<(User, i64)> {
        Ok((
            User {
                id: self.id,
                tenant: self.tenant,
                extension: u32::try_from(self.extension).map_err(|_| damaged("extension"))?,
                display_name: self.display_name,
                email: self.email,
                role: UserRole::parse(&self.role).map_err(|_| damaged("user role"))?,
                status: UserStatus::parse(&self.status).map_err(|_| damaged("user status"))?,
                outbound_caller_id: self.outbound_caller_id,
                voicemail_enabled: self.voicemail_enabled != 0,
                voicemail_pin_set: self.voicemail_pin.is_some(),
                dnd: self.dnd != 0,
                forward_always: self.forward_always,
                forward_busy: self.forward_busy,
                forward_no_answer: self.forward_no_answer,
                features_pending: self.features_pending != 0,
                voicemail_pin_pending: self.pin_pending != 0,
                ring_seconds: u32::try_from(self.ring_seconds).map_err(|_| damaged("ring time"))?,
                policy: self.policy,
                version: self.version,
                devices: Vec::new(),
            },
            self.tenant_id,
        ))
    }
}

pub(crate) async fn by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
) -> Result<Option<UserRow>> {
    sqlx::query_as(&format!("{SELECT} WHERE u.id = $1"))
        .bind(id)
        .fetch_optional(e)
        .await
        .map_err(db_error)
}

/// How many live (not deleted) users of a tenant hold `extension` (0 or 1).
pub(crate) async fn live_with_extension<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    extension: u32,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND extension = $2 \
         AND status <> 'deleted'",
    )
    .bind(tenant_id)
    .bind(i64::from(extension))
    .fetch_one(e)
    .await
    .map_err(db_error)
}

/// What a unique index refused a new user for.
pub(crate) enum Taken {
    Email,
    Extension,
}

/// A user to create (the PIN sealed).
pub(crate) struct NewUserRow<'a> {
    pub tenant_id: i64,
    pub display_name: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub extension: u32,
    pub outbound_caller_id: Option<&'a str>,
    pub voicemail_enabled: bool,
    pub voicemail_pin: Vec<u8>,
    pub now: i64,
}

/// Creates a user; its id, or what was taken already (the e-mail, or the extension).
pub(crate) async fn insert<'e, E: Executor<'e, Database = Any>>(
    e: E,
    u: NewUserRow<'_>,
) -> Result<std::result::Result<i64, Taken>> {
    let made = sqlx::query_scalar(
        "INSERT INTO users (tenant_id, display_name, email, role, status, extension, \
         outbound_caller_id, voicemail_enabled, voicemail_pin, dnd, version, created_at, \
         updated_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, 1, $10, $10) RETURNING id",
    )
    .bind(u.tenant_id)
    .bind(u.display_name)
    .bind(u.email)
    .bind(u.role)
    .bind(i64::from(u.extension))
    .bind(u.outbound_caller_id)
    .bind(u.voicemail_enabled)
    .bind(u.voicemail_pin)
    .bind(false)
    .bind(u.now)
    .fetch_one(e)
    .await;
    match made {
        Ok(id) => Ok(Ok(id)),
        Err(e) => match super::classify(&e) {
            super::DbFailure::UniqueViolation(what) if what.contains("email") => {
                Ok(Err(Taken::Email))
            }
            super::DbFailure::UniqueViolation(_) => Ok(Err(Taken::Extension)),
            _ => Err(db_error(e)),
        },
    }
}

/// Where a tenant's allocator may start (see migration 0013): every number of
/// `first..next` has a user row or is reserved.
pub(crate) struct AllocScope<'a> {
    pub tenant_id: i64,
    pub first: i64,
    pub last: i64,
    pub country: &'a str,
    /// Users deleted after this still hold their number (quarantine).
    pub cutoff: i64,
    /// Numbers of code (the country's emergency numbers), never input: counted as held.
    pub reserved: &'a [i64],
}

/// The lowest number of the scope that no live user holds, no user deleted after `cutoff`
/// holds, and is not reserved; and the hint to keep if it is taken. Its cost does not grow with
/// the tenant: a walk from the hint over the held numbers that follow it (none, when users are
/// added one after another), and the deleted users' numbers below the hint whose quarantine ran
/// out (a partial index of deleted rows only).
pub(crate) async fn lowest_free(
    conn: &mut AnyConnection,
    s: &AllocScope<'_>,
) -> Result<Option<(i64, i64)>> {
    let hint: Option<i64> = sqlx::query_scalar(
        "SELECT next FROM extension_hints WHERE tenant_id = $1 AND ext_first = $2 AND country = $3",
    )
    .bind(s.tenant_id)
    .bind(s.first)
    .bind(s.country)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let hint = hint.unwrap_or(s.first).max(s.first);
    // Below the hint: a number only deleted users hold, all of them out of quarantine.
    let freed: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(d.extension) FROM users d \
         WHERE d.tenant_id = $1 AND d.deleted_at IS NOT NULL AND d.deleted_at <= $2 \
           AND d.extension >= $3 AND d.extension < $4 \
           AND NOT EXISTS (SELECT 1 FROM users h WHERE h.tenant_id = $1 \
                AND h.extension = d.extension AND (h.deleted_at IS NULL OR h.deleted_at > $2))",
    )
    .bind(s.tenant_id)
    .bind(s.cutoff)
    .bind(s.first)
    .bind(hint)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    // A freed number may since have become reserved (the tenant's country changed: then the
    // hint was dropped, so this is rare); look past it.
    if let Some(n) = freed.filter(|n| !s.reserved.contains(n)) {
        return Ok(Some((n, hint)));
    }
    if freed.is_some() {
        return walk_from(conn, s, s.first).await;
    }
    walk_from(conn, s, hint).await
}

/// The lowest free number from `from` on, with the hint to keep if it is taken (every number
/// before it is held). One query, one ordered pass over the allocator index
/// `(tenant_id, extension, deleted_at)` from `from`: numbering the held numbers in order, the
/// first that is not `from + n - 1` marks the gap; with no gap the answer is `from + count`.
/// From a good hint it reads nothing (the next number is free).
async fn walk_from(
    conn: &mut AnyConnection,
    s: &AllocScope<'_>,
    from: i64,
) -> Result<Option<(i64, i64)>> {
    // A reserved number is counted once: only when no row already holds it.
    let reserved: Vec<String> = s
        .reserved
        .iter()
        .filter(|n| (from..=s.last).contains(n))
        .map(|n| format!("({n})"))
        .collect();
    let reserved = if reserved.is_empty() {
        String::new()
    } else {
        format!(
            " UNION ALL SELECT column1 FROM (VALUES {}) AS r WHERE NOT EXISTS ( \
               SELECT 1 FROM users u WHERE u.tenant_id = $1 AND u.extension = r.column1 \
                  AND (u.deleted_at IS NULL OR u.deleted_at > $4))",
            reserved.join(", ")
        )
    };
    let next: Option<i64> = sqlx::query_scalar(&format!(
        "WITH held AS ( \
            SELECT extension AS e FROM users \
             WHERE tenant_id = $1 AND extension >= $2 AND extension <= $3 \
               AND (deleted_at IS NULL OR deleted_at > $4){reserved} \
         ), numbered AS ( \
            SELECT e, $2 + ROW_NUMBER() OVER (ORDER BY e) - 1 AS expected FROM held \
         ) \
         SELECT MIN(c) FROM ( \
            SELECT MIN(expected) AS c FROM numbered WHERE e <> expected \
            UNION ALL \
            SELECT $2 + COUNT(*) FROM held \
         ) candidates",
    ))
    .bind(s.tenant_id)
    .bind(from)
    .bind(s.last)
    .bind(s.cutoff)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(next.filter(|n| *n <= s.last).map(|n| (n, n + 1)))
}

/// Forgets where the tenant's next allocation starts: a number below it was freed other than
/// by a user's deletion (a ring group removed), which the allocator would not look for.
pub(crate) async fn drop_hint<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM extension_hints WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Keeps where the tenant's next allocation starts (see migration 0013).
pub(crate) async fn keep_hint<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    first: i64,
    country: &str,
    next: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO extension_hints (tenant_id, ext_first, country, next) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET ext_first = excluded.ext_first, \
           country = excluded.country, next = excluded.next",
    )
    .bind(tenant_id)
    .bind(first)
    .bind(country)
    .bind(next)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// How many numbers of `first..=last` users deleted after `cutoff` hold in quarantine.
pub(crate) async fn quarantined<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    cutoff: i64,
    first: i64,
    last: i64,
) -> Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND status = 'deleted' \
         AND deleted_at > $2 AND extension >= $3 AND extension <= $4",
    )
    .bind(tenant_id)
    .bind(cutoff)
    .bind(first)
    .bind(last)
    .fetch_one(e)
    .await
    .map_err(db_error)
}

/// Who holds an extension: a live user, or one deleted after `cutoff` (in quarantine).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct HolderRow {
    pub display_name: String,
    pub status: String,
    pub deleted_at: Option<i64>,
}

pub(crate) async fn holder<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    extension: u32,
    cutoff: i64,
) -> Result<Option<HolderRow>> {
    sqlx::query_as(
        "SELECT display_name, status, deleted_at FROM users WHERE tenant_id = $1 \
         AND extension = $2 AND (deleted_at IS NULL OR deleted_at > $3) \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(i64::from(extension))
    .bind(cutoff)
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// The live user of a tenant with that extension.
pub(crate) async fn live_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    extension: u32,
) -> Result<Option<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE tenant_id = $1 AND extension = $2 AND status <> 'deleted'",
    )
    .bind(tenant_id)
    .bind(i64::from(extension))
    .fetch_optional(e)
    .await
    .map_err(db_error)
}

/// A live user as the tenant's list shows it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SummaryRow {
    pub id: i64,
    pub extension: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub device_count: i64,
}

const SUMMARIES: &str = "SELECT u.id AS id, u.extension AS extension, \
     u.display_name AS display_name, u.email AS email, u.role AS role, u.status AS status, \
     (SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id) AS device_count \
     FROM users u WHERE u.tenant_id = $1 AND u.status <> 'deleted' ORDER BY u.extension";

/// A tenant's live users, by extension, read straight from an SQLite workspace file (the same
/// query): a 10,000-user list spent most of its time in sqlx's `Any` row hand-over, like the
/// render's snapshot did. Blocking: call it on a blocking thread.
pub(crate) fn summaries_sqlite(path: &std::path::Path, tenant_id: i64) -> Result<Vec<SummaryRow>> {
    use rusqlite::{Connection, OpenFlags};
    let failed = |e: rusqlite::Error| Error::Store(format!("cannot read the workspace: {e}"));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(failed)?;
    let mut stmt = conn.prepare(SUMMARIES).map_err(failed)?;
    let rows = stmt
        .query_map([tenant_id], |r| {
            Ok(SummaryRow {
                id: r.get(0)?,
                extension: r.get(1)?,
                display_name: r.get(2)?,
                email: r.get(3)?,
                role: r.get(4)?,
                status: r.get(5)?,
                device_count: r.get(6)?,
            })
        })
        .map_err(failed)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(failed)?;
    Ok(rows)
}

/// A tenant's live users, by extension.
pub(crate) async fn summaries<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<SummaryRow>> {
    sqlx::query_as(SUMMARIES)
        .bind(tenant_id)
        .fetch_all(e)
        .await
        .map_err(db_error)
}

/// A user's editable fields as they are to be.
pub(crate) struct UserUpdate<'a> {
    pub id: i64,
    pub version: i64,
    pub display_name: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub outbound_caller_id: Option<&'a str>,
    pub voicemail_enabled: bool,
    pub dnd: bool,
    pub forward_always: Option<&'a str>,
    pub forward_busy: Option<&'a str>,
    pub forward_no_answer: Option<&'a str>,
    pub now: i64,
}

/// Writes a user's fields if it is still at `version`: `Ok(true)` when written, `Ok(false)`
/// when someone changed it since, `Err(Taken::Email)` when the e-mail is another user's.
pub(crate) async fn update<'e, E: Executor<'e, Database = Any>>(
    e: E,
    u: UserUpdate<'_>,
) -> Result<std::result::Result<bool, Taken>> {
    let done = sqlx::query(
        "UPDATE users SET display_name = $1, email = $2, role = $3, outbound_caller_id = $4, \
         voicemail_enabled = $5, dnd = $6, forward_always = $7, forward_busy = $8, \
         forward_no_answer = $9, version = version + 1, updated_at = $10 \
         WHERE id = $11 AND version = $12",
    )
    .bind(u.display_name)
    .bind(u.email)
    .bind(u.role)
    .bind(u.outbound_caller_id)
    .bind(u.voicemail_enabled)
    .bind(u.dnd)
    .bind(u.forward_always)
    .bind(u.forward_busy)
    .bind(u.forward_no_answer)
    .bind(u.now)
    .bind(u.id)
    .bind(u.version)
    .execute(e)
    .await;
    match done {
        Ok(r) => Ok(Ok(r.rows_affected() == 1)),
        Err(e) => match super::classify(&e) {
            super::DbFailure::UniqueViolation(_) => Ok(Err(Taken::Email)),
            _ => Err(db_error(e)),
        },
    }
}

pub(crate) async fn set_ring_and_policy<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    ring_seconds: u32,
    policy: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE users SET ring_seconds = $1, policy = $2 WHERE id = $3")
        .bind(i64::from(ring_seconds))
        .bind(policy)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// A new PIN (sealed), pending until the PBX runs a render holding it.
pub(crate) async fn set_pin<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    sealed: Vec<u8>,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE users SET voicemail_pin = $1, pin_pending_since = $2 WHERE id = $3")
        .bind(sealed)
        .bind(now)
        .bind(id)
        .execute(e)
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn set_status<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: i64,
    status: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET status = $1, version = version + 1, updated_at = $2 WHERE id = $3",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Deletes a user: its devices go, its row stays (deleted, PIN dropped) and holds its number.
pub(crate) async fn delete(c: &mut sqlx::AnyConnection, id: i64, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM devices WHERE user_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_error)?;
    sqlx::query(
        "UPDATE users SET status = 'deleted', deleted_at = $1, voicemail_pin = NULL, \
         version = version + 1, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn tenant_of<'e, E: Executor<'e, Database = Any>>(e: E, id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT tenant_id FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(e)
        .await
        .map_err(db_error)
}

/// A tenant's live users (not deleted), by extension: what an export writes and an import
/// compares with, in one query.
pub(crate) async fn of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<UserRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE u.tenant_id = $1 AND u.status <> 'deleted' ORDER BY u.extension"
    ))
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The extensions of a tenant held by a live user or by one deleted after `cutoff`.
pub(crate) async fn held_extensions<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
    cutoff: i64,
) -> Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT extension FROM users WHERE tenant_id = $1 \
         AND (deleted_at IS NULL OR deleted_at > $2)",
    )
    .bind(tenant_id)
    .bind(cutoff)
    .fetch_all(e)
    .await
    .map_err(db_error)
}

/// The fields of a new user that its insert leaves at their defaults, set at once.
pub(crate) struct NewUserExtras<'a> {
    pub id: i64,
    pub dnd: bool,
    pub forward_always: Option<&'a str>,
    pub forward_busy: Option<&'a str>,
    pub forward_no_answer: Option<&'a str>,
    pub ring_seconds: u32,
    pub policy: Option<&'a str>,
}

pub(crate) async fn set_extras<'e, E: Executor<'e, Database = Any>>(
    e: E,
    x: NewUserExtras<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET dnd = $1, forward_always = $2, forward_busy = $3, \
         forward_no_answer = $4, ring_seconds = $5, policy = $6 WHERE id = $7",
    )
    .bind(x.dnd)
    .bind(x.forward_always)
    .bind(x.forward_busy)
    .bind(x.forward_no_answer)
    .bind(i64::from(x.ring_seconds))
    .bind(x.policy)
    .bind(x.id)
    .execute(e)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The sealed voicemail PINs of a tenant's live users, by user id.
pub(crate) async fn pins_of_tenant<'e, E: Executor<'e, Database = Any>>(
    e: E,
    tenant_id: i64,
) -> Result<Vec<(i64, Vec<u8>)>> {
    sqlx::query_as(
        "SELECT id, voicemail_pin FROM users WHERE tenant_id = $1 AND status <> 'deleted' \
         AND voicemail_pin IS NOT NULL",
    )
    .bind(tenant_id)
    .fetch_all(e)
    .await
    .map_err(db_error)
}
