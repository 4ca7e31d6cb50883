//! End users' self-service: a person with a phone sees and changes their own DND, forwards and
//! voicemail PIN, and sees whether their devices are registered — nothing else, not even a
//! colleague's name.
//!
//! An operator who may edit the user invites them (`user_invite`): the invite is shown once,
//! kept as its SHA-256 and good for `INVITE_TTL_MS`; taking it sets the user's own password
//! (argon2id, the operators' rule). A user logs in with the tenant, their e-mail and that
//! password, for a session token (`pbxu_…`) that is an [`EndUser`], never an [`Actor`]: no
//! operator service takes it, so an end user's token cannot reach one by a forgotten check.
//! Their changes go through the same `user_update` as an operator's (the same validation, the
//! same push to the PBX at once, the same audit), recorded as `user:TENANT/EXT`.

use super::access::{verify_slowly, DUMMY_HASH};
use super::audit::{record, Change};
use super::{Actor, Workspace};
use crate::domain::{Email, Slug, UserStatus};
use crate::error::{Error, Result, ValidationError};
use crate::model::{Me, MeDevice, MePatch, SelfServiceInvite, SelfServiceSession, User, UserPatch};
use crate::secret::{api_token_hash, generate_token, hash_password};
use crate::store::db_error;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// How an end user's session token begins (an operator's `pbxd_`, an automation token's
/// `pbxt_`): the API tells them apart by it.
pub const END_USER_TOKEN_PREFIX: &str = "pbxu_";
/// How an invite begins.
const INVITE_PREFIX: &str = "pbxi_";
/// How long an invite is good for.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long an end user's session lasts (a working day; then they log in again).
pub const END_USER_SESSION_MS: i64 = 12 * 3600 * 1000;
/// How long the devices' status waits for the PBX's first answer before saying "unknown".
const LIVE_WAIT: Duration = Duration::from_secs(5);

/// The person behind an end user's session: one user of one tenant. Only the workspace makes
/// one (from a live session), and only the `me_*` services take it.
#[derive(Debug, Clone)]
pub struct EndUser {
    user_id: i64,
    tenant_id: i64,
    tenant: String,
    extension: u32,
    via: Option<String>,
}

impl EndUser {
    /// `user:TENANT/EXT`, as the audit records them.
    pub fn name(&self) -> String {
        format!("user:{}/{}", self.tenant, self.extension)
    }

    /// What their changes run as inside: a tenant_admin of their own tenant only, named as
    /// the user. Only `me_*` below use it, each with a patch holding only what a user may change.
    fn actor(&self) -> Actor {
        let a = Actor::end_user(&self.name(), self.tenant_id);
        match &self.via {
            Some(v) => a.from_source(v),
            None => a,
        }
    }
}

fn failed_login() -> Error {
    Error::Unauthenticated("unknown user or wrong password".into())
}

fn unknown_session() -> Error {
    Error::Unauthenticated("the session is unknown or has ended: log in again".into())
}

#[derive(sqlx::FromRow)]
struct EndUserRow {
    user_id: i64,
    tenant_id: i64,
    tenant: String,
    extension: i64,
}

impl EndUserRow {
    fn end_user(self, via: Option<String>) -> Result<EndUser> {
        Ok(EndUser {
            user_id: self.user_id,
            tenant_id: self.tenant_id,
            tenant: self.tenant,
            extension: u32::try_from(self.extension)
                .map_err(|_| Error::Store("extension on record is out of range".into()))?,
            via,
        })
    }
}

/// An end user's password: the operators' rule, checked before any hashing.
fn new_password(password: &SecretString) -> Result<()> {
    let n = password.expose_secret().chars().count();
    if !(12..=1024).contains(&n) {
        return Err(ValidationError::secret(
            "password",
            "12 to 1,024 characters (a passphrase is fine)",
        )
        .into());
    }
    Ok(())
}

async fn hash_slowly(password: &SecretString) -> Result<String> {
    let pw = password.clone();
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| Error::Store(format!("the password hasher stopped: {e}")))?
}

impl Workspace {
    /// Invites a user to self-service (whoever may edit the user). The invite is in the answer,
    /// once; a new invite replaces one not yet taken, and a password already set keeps
    /// working until the new invite is taken (a forgotten password is a new invite).
    pub async fn user_invite(&self, actor: &Actor, user_id: i64) -> Result<SelfServiceInvite> {
        actor.require_write()?;
        let user = self.user_show(actor, user_id).await?;
        if user.status != UserStatus::Active {
            return Err(Error::Conflict(format!(
                "user {}/{} is {}: only an active user can be invited",
                user.tenant,
                user.extension,
                user.status.as_str()
            )));
        }
        let invite = generate_token(INVITE_PREFIX);
        let now = self.now();
        let expires_at = now + INVITE_TTL_MS;
        let mut w = self.store.begin_write().await?;
        let tenant_id = self.user_tenant_id(&mut w, user_id).await?;
        let updated = sqlx::query(
            "UPDATE self_service SET invite_hash = $1, invite_expires_at = $2, invited_by = $3, \
             updated_at = $4 WHERE user_id = $5",
        )
        .bind(api_token_hash(invite.expose_secret()))
        .bind(expires_at)
        .bind(actor.name())
        .bind(now)
        .bind(user_id)
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO self_service (user_id, invite_hash, invite_expires_at, invited_by, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(user_id)
            .bind(api_token_hash(invite.expose_secret()))
            .bind(expires_at)
            .bind(actor.name())
            .bind(now)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        }
        let shown = serde_json::json!({ "email": user.email, "invite_expires_at": expires_at });
        let change = Change {
            action: "user.invite",
            entity_type: "user",
            entity_id: format!("{}/{}", user.tenant, user.extension),
            tenant_id: Some(tenant_id),
        };
        record(&mut w, actor, now, change, None::<&()>, Some(&shown)).await?;
        w.commit().await?;
        Ok(SelfServiceInvite {
            tenant: user.tenant,
            email: user.email,
            invite: invite.expose_secret().to_owned(),
            expires_at,
        })
    }

    /// Ends a user's self-service: the invite, the password and every session go at once.
    pub async fn user_self_service_remove(&self, actor: &Actor, user_id: i64) -> Result<User> {
        actor.require_write()?;
        let user = self.user_show(actor, user_id).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let tenant_id = self.user_tenant_id(&mut w, user_id).await?;
        sqlx::query("DELETE FROM self_service_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        let gone = sqlx::query("DELETE FROM self_service WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        if gone.rows_affected() == 0 {
            return Err(Error::not_found(
                "self-service access of user",
                format!("{}/{}", user.tenant, user.extension),
            ));
        }
        let change = Change {
            action: "user.self_service_remove",
            entity_type: "user",
            entity_id: format!("{}/{}", user.tenant, user.extension),
            tenant_id: Some(tenant_id),
        };
        record(&mut w, actor, now, change, None::<&()>, None::<&()>).await?;
        w.commit().await?;
        Ok(user)
    }

    /// Takes an invite: sets the user's password and logs them in.
    pub async fn self_service_accept(
        &self,
        invite: &str,
        password: &SecretString,
        via: Option<&str>,
    ) -> Result<SelfServiceSession> {
        new_password(password)?;
        let bad_invite = || {
            Error::Unauthenticated(
                "the invite is unknown, used or expired: ask for a new one".into(),
            )
        };
        if !invite.starts_with(INVITE_PREFIX) {
            return Err(bad_invite());
        }
        let row: Option<EndUserRow> = sqlx::query_as(&format!(
            "{SELECT_END_USER} WHERE s.invite_hash = $1 AND s.invite_expires_at > $2 \
             AND u.status = 'active'"
        ))
        .bind(api_token_hash(invite))
        .bind(self.now())
        .fetch_optional(self.store.pool())
        .await
        .map_err(db_error)?;
        let me = row
            .ok_or_else(bad_invite)?
            .end_user(via.map(str::to_owned))?;
        let hash = hash_slowly(password).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        // Taken once: of two at once, only the one that cleared it goes on.
        let taken = sqlx::query(
            "UPDATE self_service SET password_hash = $1, invite_hash = NULL, \
             invite_expires_at = NULL, updated_at = $2 WHERE user_id = $3 AND invite_hash = $4",
        )
        .bind(&hash)
        .bind(now)
        .bind(me.user_id)
        .bind(api_token_hash(invite))
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        if taken.rows_affected() != 1 {
            return Err(bad_invite());
        }
        // Sessions of an earlier password end with it.
        sqlx::query("DELETE FROM self_service_sessions WHERE user_id = $1")
            .bind(me.user_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        let change = Change {
            action: "user.self_service_activate",
            entity_type: "user",
            entity_id: format!("{}/{}", me.tenant, me.extension),
            tenant_id: Some(me.tenant_id),
        };
        record(&mut w, &me.actor(), now, change, None::<&()>, None::<&()>).await?;
        let session = self.end_user_session_in(&mut w, me.user_id, now).await?;
        w.commit().await?;
        Ok(session)
    }

    /// Logs an end user in: their tenant, e-mail and password.
    pub async fn self_service_login(
        &self,
        tenant: &str,
        email: &str,
        password: &SecretString,
    ) -> Result<SelfServiceSession> {
        let (Ok(tenant), Ok(email)) = (Slug::parse(tenant), Email::parse(email)) else {
            verify_slowly(password, DUMMY_HASH.to_owned()).await?;
            return Err(failed_login());
        };
        let row: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT u.id, s.password_hash FROM users u \
             JOIN tenants t ON t.id = u.tenant_id \
             JOIN self_service s ON s.user_id = u.id \
             WHERE t.slug = $1 AND u.email = $2 AND u.status = 'active'",
        )
        .bind(tenant.as_str())
        .bind(email.as_str())
        .fetch_optional(self.store.pool())
        .await
        .map_err(db_error)?;
        let Some((user_id, Some(hash))) = row else {
            // The same time as a real check: who has self-service cannot be probed by timing.
            verify_slowly(password, DUMMY_HASH.to_owned()).await?;
            return Err(failed_login());
        };
        if !verify_slowly(password, hash).await? {
            return Err(failed_login());
        }
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let session = self.end_user_session_in(&mut w, user_id, now).await?;
        w.commit().await?;
        Ok(session)
    }

    async fn end_user_session_in(
        &self,
        w: &mut crate::store::WriteTx<'_>,
        user_id: i64,
        now: i64,
    ) -> Result<SelfServiceSession> {
        let token = generate_token(END_USER_TOKEN_PREFIX);
        sqlx::query("DELETE FROM self_service_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO self_service_sessions (token_hash, user_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(api_token_hash(token.expose_secret()))
        .bind(user_id)
        .bind(now + END_USER_SESSION_MS)
        .bind(now)
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        Ok(SelfServiceSession {
            token: token.expose_secret().to_owned(),
            token_type: "Bearer".into(),
            expires_in: u64::try_from(END_USER_SESSION_MS / 1000).unwrap_or(0),
        })
    }

    /// Who an end user's session token stands for, read again at each request: a user deleted,
    /// suspended or whose self-service was removed is refused at once.
    pub async fn end_user(&self, token: &str, via: &str) -> Result<EndUser> {
        if !token.starts_with(END_USER_TOKEN_PREFIX) {
            return Err(unknown_session());
        }
        let row: Option<EndUserRow> = sqlx::query_as(&format!(
            "{SELECT_END_USER} JOIN self_service_sessions x ON x.user_id = u.id \
             WHERE x.token_hash = $1 AND x.expires_at > $2 AND u.status = 'active'"
        ))
        .bind(api_token_hash(token))
        .bind(self.now())
        .fetch_optional(self.store.pool())
        .await
        .map_err(db_error)?;
        row.ok_or_else(unknown_session)?
            .end_user(Some(via.to_owned()))
    }

    /// Ends an end user's session.
    pub async fn self_service_logout(&self, token: &str) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        sqlx::query("DELETE FROM self_service_sessions WHERE token_hash = $1")
            .bind(api_token_hash(token))
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        w.commit().await
    }

    /// What an end user sees of themselves.
    pub async fn me_show(&self, me: &EndUser) -> Result<Me> {
        let user = self.user_show(&me.actor(), me.user_id).await?;
        Ok(Me::of(user))
    }

    /// An end user changes their DND and forwards: what `MePatch` holds, nothing more.
    pub async fn me_update(&self, me: &EndUser, patch: &MePatch) -> Result<Me> {
        let patch = UserPatch {
            dnd: patch.dnd,
            forward_always: patch.forward_always.clone(),
            forward_busy: patch.forward_busy.clone(),
            forward_no_answer: patch.forward_no_answer.clone(),
            expected_version: patch.expected_version,
            ..UserPatch::default()
        };
        let user = self.user_update(&me.actor(), me.user_id, &patch).await?;
        Ok(Me::of(user))
    }

    /// An end user sets their voicemail PIN (on the PBX at once when it can be reached).
    pub async fn me_set_voicemail_pin(&self, me: &EndUser, pin: &SecretString) -> Result<Me> {
        let current = self.me_show(me).await?;
        if !current.voicemail_enabled {
            return Err(ValidationError::secret(
                "pin",
                "a mailbox: voicemail is off for you (ask your administrator)",
            )
            .into());
        }
        let patch = UserPatch {
            voicemail_pin: Some(pin.expose_secret().to_owned()),
            ..UserPatch::default()
        };
        // The PIN is `pin` here (the field of the user's own request).
        let user = self
            .user_update(&me.actor(), me.user_id, &patch)
            .await
            .map_err(|e| match e {
                Error::Validation(mut v) if v.field == "voicemail_pin" => {
                    v.field = "pin".into();
                    Error::Validation(v)
                }
                e => e,
            })?;
        Ok(Me::of(user))
    }

    /// An end user changes their own password (the current one checked first). Sessions already
    /// open run out as they would (12 hours at most); removing self-service ends them at once.
    pub async fn me_change_password(
        &self,
        me: &EndUser,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<()> {
        new_password(new)?;
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM self_service WHERE user_id = $1")
                .bind(me.user_id)
                .fetch_optional(self.store.pool())
                .await
                .map_err(db_error)?
                .flatten();
        let ok = verify_slowly(current, hash.unwrap_or_else(|| DUMMY_HASH.to_owned())).await?;
        if !ok {
            return Err(
                ValidationError::secret("current_password", "your current password").into(),
            );
        }
        let hash = hash_slowly(new).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        sqlx::query(
            "UPDATE self_service SET password_hash = $1, updated_at = $2 WHERE user_id = $3",
        )
        .bind(&hash)
        .bind(now)
        .bind(me.user_id)
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        let change = Change {
            action: "user.self_service_password",
            entity_type: "user",
            entity_id: format!("{}/{}", me.tenant, me.extension),
            tenant_id: Some(me.tenant_id),
        };
        record(&mut w, &me.actor(), now, change, None::<&()>, None::<&()>).await?;
        w.commit().await
    }

    /// An end user's devices and whether each is registered now, from the PBX's live state
    /// (waited for up to a few seconds; `unknown` when the PBX cannot be reached or read).
    pub async fn me_devices(&self, me: &EndUser) -> Result<Vec<MeDevice>> {
        let user = self.user_show(&me.actor(), me.user_id).await?;
        let live = match self.tenant_watch(&me.actor(), &me.tenant).await {
            Ok(mut rx) => {
                let first = tokio::time::timeout(
                    LIVE_WAIT,
                    rx.wait_for(|l| l.connected || l.last_error.is_some()),
                )
                .await;
                match first {
                    Ok(Ok(l)) if l.connected => Some(l.state.clone()),
                    _ => None,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "no live status for a user's devices");
                None
            }
        };
        Ok(user
            .devices
            .iter()
            .map(|d| MeDevice::of(d, live.as_ref()))
            .collect())
    }
}

/// A user with self-service, their tenant and extension (the end user's own row).
const SELECT_END_USER: &str = "SELECT u.id AS user_id, u.tenant_id AS tenant_id, \
     t.slug AS tenant, u.extension AS extension \
     FROM self_service s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = u.tenant_id";
