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
use crate::store::self_service as store;
use crate::store::self_service::EndUserRow;
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
    /// The SHA-256 of the session this is (none inside an invite being taken).
    session: Option<String>,
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

fn end_user(row: EndUserRow, via: Option<String>) -> Result<EndUser> {
    Ok(EndUser {
        user_id: row.user_id,
        tenant_id: row.tenant_id,
        tenant: row.tenant,
        extension: u32::try_from(row.extension)
            .map_err(|_| Error::Store("extension on record is out of range".into()))?,
        via,
        session: None,
    })
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
        store::invite(
            &mut w.tx,
            user_id,
            &api_token_hash(invite.expose_secret()),
            expires_at,
            actor.name(),
            now,
        )
        .await?;
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
        if !store::remove(&mut w.tx, user_id).await? {
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
        let row = store::by_invite(self.store.pool(), &api_token_hash(invite), self.now()).await?;
        let me = end_user(row.ok_or_else(bad_invite)?, via.map(str::to_owned))?;
        let hash = hash_slowly(password).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        // Taken once: of two at once, only the one that cleared it goes on.
        if !store::take_invite(&mut *w.tx, me.user_id, &api_token_hash(invite), &hash, now).await? {
            return Err(bad_invite());
        }
        // Sessions of an earlier password end with it.
        store::end_sessions(&mut *w.tx, me.user_id).await?;
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
        let row = store::for_login(self.store.pool(), tenant.as_str(), email.as_str()).await?;
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
        store::session_add(
            &mut w.tx,
            &api_token_hash(token.expose_secret()),
            user_id,
            now + END_USER_SESSION_MS,
            now,
        )
        .await?;
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
        let hash = api_token_hash(token);
        let row = store::by_session(self.store.pool(), &hash, self.now()).await?;
        let mut me = end_user(row.ok_or_else(unknown_session)?, Some(via.to_owned()))?;
        me.session = Some(hash);
        Ok(me)
    }

    /// Ends an end user's session.
    pub async fn self_service_logout(&self, token: &str) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        store::session_end(&mut *w.tx, &api_token_hash(token)).await?;
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

    /// An end user changes their own password (the current one checked first). Every other
    /// session of theirs ends (a password changed because it leaked must not leave the one who
    /// took it logged in); this one goes on.
    pub async fn me_change_password(
        &self,
        me: &EndUser,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<()> {
        new_password(new)?;
        let hash = store::password_hash(self.store.pool(), me.user_id).await?;
        let ok = verify_slowly(current, hash.unwrap_or_else(|| DUMMY_HASH.to_owned())).await?;
        if !ok {
            return Err(
                ValidationError::secret("current_password", "your current password").into(),
            );
        }
        let hash = hash_slowly(new).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        store::set_password(&mut *w.tx, me.user_id, &hash, now).await?;
        store::end_other_sessions(&mut *w.tx, me.user_id, me.session.as_deref().unwrap_or(""))
            .await?;
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
