use super::audit::{record, Change};
use super::tenant::check_version;
use super::tenant::TenantKey;
use super::{clearable, retry_busy, Actor, Workspace};
use crate::domain::{
    DisplayName, Email, ExtRange, Extension, ForwardTarget, PolicyName, TenantStatus, UserRole,
    UserStatus, VoicemailPin, E164,
};
use crate::error::{Error, Problems, Result, ValidationError};
use crate::model::{NewDevice, NewUser, User, UserPatch, UserSummary};
use crate::secret::{generate_pin, Purpose};
use crate::store::users;
use crate::store::{db_error, Backend, WriteTx};
use secrecy::ExposeSecret;
use sqlx::AnyConnection;

fn damaged(what: &str) -> Error {
    Error::Store(format!("{what} on record is damaged"))
}

/// Validated fields of a new user.
struct UserDraft {
    name: DisplayName,
    email: Email,
    extension: Option<Extension>,
    role: UserRole,
    caller_id: Option<E164>,
    voicemail: bool,
}

impl Workspace {
    /// Creates a user with the lowest free extension of the tenant's range (or the one asked
    /// for), a voicemail box with a random PIN, and one device with fresh SIP credentials.
    pub async fn user_create(&self, actor: &Actor, input: &NewUser) -> Result<User> {
        actor.require_write()?;
        // Every field is checked, so the person sees all that is wrong at once.
        let mut bad = Problems::new();
        let name = bad.take(DisplayName::parse("name", &input.name));
        let email = bad.take(Email::parse(&input.email));
        let extension = bad.take(
            input
                .extension
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Extension::parse)
                .transpose(),
        );
        let caller_id = bad.take(optional_e164(
            input.outbound_caller_id.as_deref(),
            "outbound_caller_id",
        ));
        let tenant = self.tenant_key(actor, &input.tenant).await?;
        if let Some(Some(ext)) = extension {
            if !tenant.range.contains(ext) {
                bad.push(ValidationError::new(
                    "extension",
                    &ext.to_string(),
                    format!(
                        "must be within tenant \"{}\"'s range {}",
                        tenant.slug, tenant.range
                    ),
                ));
            }
        }
        bad.finish()?;
        let (Some(name), Some(email), Some(extension), Some(caller_id)) =
            (name, email, extension, caller_id)
        else {
            unreachable!("every field without an error was taken");
        };
        let draft = UserDraft {
            name,
            email,
            extension,
            role: input.role.unwrap_or(UserRole::Member),
            caller_id,
            voicemail: input.voicemail.unwrap_or(true),
        };
        if tenant.status != TenantStatus::Active {
            return Err(Error::Conflict(format!(
                "tenant \"{}\" is suspended; resume it before adding users",
                tenant.slug
            )));
        }
        let range = tenant.range;
        retry_busy(|| self.try_user_create(actor, &tenant, range, &draft)).await
    }

    async fn try_user_create(
        &self,
        actor: &Actor,
        tenant: &TenantKey,
        range: ExtRange,
        d: &UserDraft,
    ) -> Result<User> {
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        if self.store.backend() == Backend::Postgres {
            // Serializes allocations per tenant across every laptop of the team.
            crate::store::tenants::lock_for_allocation(&mut *w.tx, tenant.id).await?;
        }
        let extension = match d.extension {
            Some(ext) => {
                self.check_extension_free(&mut w, tenant, ext, now).await?;
                ext
            }
            None => self.allocate_extension(&mut w, tenant, range, now).await?,
        };
        let pin = self
            .cipher
            .seal(Purpose::VoicemailPin, generate_pin().expose_secret())?;
        let made = users::insert(
            &mut *w.tx,
            users::NewUserRow {
                tenant_id: tenant.id,
                display_name: d.name.as_str(),
                email: d.email.as_str(),
                role: d.role.as_str(),
                extension: extension.get(),
                outbound_caller_id: d.caller_id.as_ref().map(|c| c.as_str()),
                voicemail_enabled: d.voicemail,
                voicemail_pin: pin,
                now,
            },
        )
        .await?;
        let id = match made {
            Ok(id) => id,
            Err(users::Taken::Email) => {
                return Err(Error::Conflict(format!(
                    "tenant \"{}\" already has a user with e-mail {}",
                    tenant.slug, d.email
                )))
            }
            // Another writer took the number first: allocate again.
            Err(users::Taken::Extension) if d.extension.is_none() => return Err(Error::Busy),
            Err(users::Taken::Extension) => {
                return Err(Error::Conflict(format!(
                    "extension {extension} is already in use in tenant \"{}\"",
                    tenant.slug
                )))
            }
        };
        self.bind_row_secrets(&mut w.tx, "users", id).await?;
        let defaults = NewDevice::default();
        self.insert_device(&mut w, id, tenant, extension, &defaults, now)
            .await?;
        let user = self.user_in_tx(&mut w, id).await?;
        let change = Change {
            action: "user.create",
            entity_type: "user",
            entity_id: format!("{}/{}", tenant.slug, extension),
            tenant_id: Some(tenant.id),
        };
        record::<User, User>(&mut w, actor, now, change, None, Some(&user)).await?;
        w.commit().await?;
        Ok(user)
    }

    /// The lowest number of the range that no live user holds and no deleted user holds in
    /// quarantine. One query, one ordered pass over the allocator index
    /// `(tenant_id, extension, deleted_at)` with no lookup per row: numbering the held
    /// extensions in order, the first one that is not `first + n - 1` marks the gap; with no
    /// gap the answer is `first + count`. The range's size never matters, only the numbers held.
    /// "Held" reads only `deleted_at` (set exactly when a user is deleted), so the index covers
    /// the whole query and no table row is read. No DISTINCT (it cost a third of the time): a
    /// number is held by at most one row, since a new holder is only admitted when no row holds
    /// it (the allocator, `check_extension_free`, and the live-extension unique index).
    /// The lowest free extension of the range, and the allocator's hint to keep when it is
    /// taken (see `users::lowest_free`).
    async fn lowest_free_extension(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantKey,
        range: ExtRange,
        now: i64,
    ) -> Result<Option<(Extension, i64)>> {
        let cutoff = now - self.quarantine.as_millis() as i64;
        // The country's emergency numbers in the range count as held (dialling one calls the
        // emergency services, never a user). They are the renderer's fixed table, not input.
        let mut reserved: Vec<i64> = pbxdesk_render::snapshot::emergency_numbers(&tenant.country)
            .iter()
            .filter_map(|n| n.parse::<i64>().ok())
            .collect();
        // A ring group's extension is held as a user's is (a few per tenant).
        reserved.extend(crate::store::ring_groups::extensions(&mut *conn, tenant.id).await?);
        let scope = users::AllocScope {
            tenant_id: tenant.id,
            first: i64::from(range.first().get()),
            last: i64::from(range.last().get()),
            country: &tenant.country,
            cutoff,
            reserved: &reserved,
        };
        users::lowest_free(conn, &scope)
            .await?
            .map(|(n, hint)| {
                Extension::from_number(n)
                    .map(|e| (e, hint))
                    .map_err(|_| damaged("extension"))
            })
            .transpose()
    }

    /// The extension the next new user of the tenant would get, if any is free.
    pub async fn next_free_extension(
        &self,
        actor: &Actor,
        tenant_slug: &str,
    ) -> Result<Option<u32>> {
        let tenant = self.tenant_key(actor, tenant_slug).await?;
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        let next = self
            .lowest_free_extension(&mut conn, &tenant, tenant.range, self.now())
            .await?;
        Ok(next.map(|(e, _)| e.get()))
    }

    pub(crate) async fn allocate_extension(
        &self,
        w: &mut WriteTx<'_>,
        tenant: &TenantKey,
        range: ExtRange,
        now: i64,
    ) -> Result<Extension> {
        if let Some((ext, hint)) = self
            .lowest_free_extension(&mut w.tx, tenant, range, now)
            .await?
        {
            // In the same transaction as the user's row: the hint holds only with it.
            let first = i64::from(range.first().get());
            users::keep_hint(&mut *w.tx, tenant.id, first, &tenant.country, hint).await?;
            return Ok(ext);
        }
        let cutoff = now - self.quarantine.as_millis() as i64;
        let held = users::quarantined(
            &mut *w.tx,
            tenant.id,
            cutoff,
            i64::from(range.first().get()),
            i64::from(range.last().get()),
        )
        .await?;
        Err(Error::Conflict(format!(
            "tenant \"{}\" has no free extension in its range {range} ({held} held in quarantine \
             after deletion); widen the range with `tenant update {} --ext-range`",
            tenant.slug, tenant.slug
        )))
    }

    pub(crate) async fn check_extension_free(
        &self,
        w: &mut WriteTx<'_>,
        tenant: &TenantKey,
        ext: Extension,
        now: i64,
    ) -> Result<()> {
        if pbxdesk_render::snapshot::emergency_numbers(&tenant.country)
            .contains(&ext.get().to_string().as_str())
        {
            return Err(ValidationError::new(
                "extension",
                &ext.get().to_string(),
                format!(
                    "not an emergency number of {} (dialling it calls the emergency services)",
                    tenant.country
                ),
            )
            .into());
        }
        if let Some(g) =
            crate::store::ring_groups::by_extension(&mut *w.tx, tenant.id, i64::from(ext.get()))
                .await?
        {
            return Err(Error::Conflict(format!(
                "extension {ext} of tenant \"{}\" is the ring group {}",
                tenant.slug, g.name
            )));
        }
        let cutoff = now - self.quarantine.as_millis() as i64;
        let holder = users::holder(&mut *w.tx, tenant.id, ext.get(), cutoff)
            .await?
            .map(|h| (h.display_name, h.status, h.deleted_at));
        match holder {
            None => Ok(()),
            Some((_, status, Some(deleted_at))) if status == "deleted" => {
                let days = (deleted_at + self.quarantine.as_millis() as i64 - now) / 86_400_000 + 1;
                Err(Error::Conflict(format!(
                    "extension {ext} of tenant \"{}\" belonged to a deleted user and is held in quarantine for {days} more day(s)",
                    tenant.slug
                )))
            }
            Some((name, _, _)) => Err(Error::Conflict(format!(
                "extension {ext} of tenant \"{}\" is in use by {name}",
                tenant.slug
            ))),
        }
    }

    pub(crate) async fn user_in_tx(&self, w: &mut WriteTx<'_>, id: i64) -> Result<User> {
        let (mut user, _) = users::by_id(&mut *w.tx, id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?
            .into_user()?;
        user.devices = self.devices_of(&mut w.tx, id).await?;
        Ok(user)
    }

    /// A user by id, after checking the actor may see its tenant.
    pub async fn user_show(&self, actor: &Actor, id: i64) -> Result<User> {
        let (mut user, tenant_id) = users::by_id(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("user", id))?
            .into_user()?;
        actor.require_tenant(tenant_id, Error::not_found("user", id))?;
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        user.devices = self.devices_of(&mut conn, id).await?;
        Ok(user)
    }

    /// Finds a user by "ID" or "TENANT/EXTENSION" (a live user), e.g. "42" or "acme/1000".
    pub async fn user_resolve(&self, actor: &Actor, reference: &str) -> Result<i64> {
        let r = reference.trim();
        if let Some((slug, ext)) = r.split_once('/') {
            let tenant = self.tenant_key(actor, slug).await?;
            let ext = Extension::parse(ext).map_err(|e| e.for_field("user"))?;
            let id = users::live_id(self.store.pool(), tenant.id, ext.get()).await?;
            return id.ok_or_else(|| Error::not_found("user", r));
        }
        match r.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ValidationError::new(
                "user",
                r,
                "a user id (e.g. 42) or TENANT/EXTENSION (e.g. acme/1000)",
            )
            .into()),
        }
    }

    /// The live (not deleted) users of a tenant, by extension.
    pub async fn user_list(&self, actor: &Actor, tenant_slug: &str) -> Result<Vec<UserSummary>> {
        let tenant = self.tenant_key(actor, tenant_slug).await?;
        let rows = match self.store.sqlite_path() {
            Some(path) => {
                let (path, id) = (path.to_owned(), tenant.id);
                tokio::task::spawn_blocking(move || users::summaries_sqlite(&path, id))
                    .await
                    .map_err(|e| Error::Store(format!("reading the workspace failed: {e}")))??
            }
            None => users::summaries(self.store.pool(), tenant.id).await?,
        };
        rows.into_iter()
            .map(|r| {
                Ok(UserSummary {
                    id: r.id,
                    extension: u32::try_from(r.extension).map_err(|_| damaged("extension"))?,
                    display_name: r.display_name,
                    email: r.email,
                    role: UserRole::parse(&r.role).map_err(|_| damaged("user role"))?,
                    status: UserStatus::parse(&r.status).map_err(|_| damaged("user status"))?,
                    device_count: r.device_count,
                })
            })
            .collect()
    }

    pub async fn user_update(&self, actor: &Actor, id: i64, patch: &UserPatch) -> Result<User> {
        actor.require_write()?;
        // Validate everything before touching the database, and every field at once.
        let mut bad = Problems::new();
        let name = bad
            .take(
                patch
                    .name
                    .as_deref()
                    .map(|n| DisplayName::parse("name", n))
                    .transpose(),
            )
            .flatten();
        let email = bad
            .take(patch.email.as_deref().map(Email::parse).transpose())
            .flatten();
        let caller_id = bad
            .take(
                patch
                    .outbound_caller_id
                    .as_deref()
                    .map(|s| optional_e164(Some(s), "outbound_caller_id"))
                    .transpose(),
            )
            .flatten();
        // Each forward: `None` leaves it, `Some(None)` clears it.
        let forwards = [
            ("forward_always", &patch.forward_always),
            ("forward_busy", &patch.forward_busy),
            ("forward_no_answer", &patch.forward_no_answer),
        ]
        .map(|(field, v)| {
            bad.take(clearable(v.as_deref(), |s| ForwardTarget::parse(field, s)))
                .flatten()
        });
        let pin = bad
            .take(
                patch
                    .voicemail_pin
                    .as_deref()
                    .map(VoicemailPin::parse)
                    .transpose(),
            )
            .flatten();
        if let Some(r) = patch.ring_seconds {
            if !(5..=300).contains(&r) {
                bad.push(ValidationError::new(
                    "ring_seconds",
                    &r.to_string(),
                    "5 to 300 seconds",
                ));
            }
        }
        let policy = bad
            .take(clearable(patch.policy.as_deref(), PolicyName::parse))
            .flatten();
        bad.finish()?;
        let sealed_pin = pin
            .map(|p| self.cipher.seal(Purpose::VoicemailPin, p.expose()))
            .transpose()?;
        let after = retry_busy(|| async {
            let current = self.user_show(actor, id).await?;
            if current.status == UserStatus::Deleted {
                return Err(Error::Conflict(format!("user {id} is deleted")));
            }
            for (field, f) in ["forward_always", "forward_busy", "forward_no_answer"]
                .iter()
                .zip(&forwards)
            {
                if let Some(Some(ForwardTarget::Extension(e))) = f {
                    if e.get() == current.extension {
                        return Err(ValidationError::new(
                            field,
                            &e.to_string(),
                            "a user cannot forward to their own extension",
                        )
                        .into());
                    }
                }
            }
            let now = self.now();
            let mut w = self.store.begin_write().await?;
            let before = self.user_in_tx(&mut w, id).await?;
            check_version(
                "user",
                &format!("{}/{}", before.tenant, before.extension),
                before.version,
                patch.expected_version,
            )?;
            let name_after = name
                .as_ref()
                .map_or(before.display_name.clone(), |n| n.as_str().to_owned());
            let email_after = email
                .as_ref()
                .map_or(before.email.clone(), |e| e.as_str().to_owned());
            let caller_after = match &caller_id {
                Some(c) => c.as_ref().map(|c| c.as_str().to_owned()),
                None => before.outbound_caller_id.clone(),
            };
            let fwd = [
                forward_or(&forwards[0], &before.forward_always),
                forward_or(&forwards[1], &before.forward_busy),
                forward_or(&forwards[2], &before.forward_no_answer),
            ];
            let written = users::update(
                &mut *w.tx,
                users::UserUpdate {
                    id,
                    version: before.version,
                    display_name: &name_after,
                    email: &email_after,
                    role: patch.role.unwrap_or(before.role).as_str(),
                    outbound_caller_id: caller_after.as_deref(),
                    voicemail_enabled: patch.voicemail_enabled.unwrap_or(before.voicemail_enabled),
                    dnd: patch.dnd.unwrap_or(before.dnd),
                    forward_always: fwd[0].as_deref(),
                    forward_busy: fwd[1].as_deref(),
                    forward_no_answer: fwd[2].as_deref(),
                    now,
                },
            )
            .await?;
            match written {
                Ok(true) => {}
                Ok(false) => return Err(Error::Busy),
                Err(_) => {
                    return Err(Error::Conflict(format!(
                        "tenant \"{}\" already has a user with that e-mail",
                        before.tenant
                    )))
                }
            }
            let tenant_id = self.user_tenant_id(&mut w, id).await?;
            if let Some(Some(name)) = &policy {
                let known =
                    crate::store::tenants::has_policy(&mut *w.tx, tenant_id, name.as_str()).await?;
                if !known {
                    return Err(ValidationError::new(
                        "policy",
                        name.as_str(),
                        format!("tenant \"{}\" has no policy named so", before.tenant),
                    )
                    .into());
                }
            }
            if policy.is_some() || patch.ring_seconds.is_some() {
                let policy_after = match &policy {
                    Some(p) => p.as_ref().map(|n| n.as_str().to_owned()),
                    None => before.policy.clone(),
                };
                users::set_ring_and_policy(
                    &mut *w.tx,
                    id,
                    patch.ring_seconds.unwrap_or(before.ring_seconds),
                    policy_after.as_deref(),
                )
                .await?;
            }
            if let Some(sealed) = &sealed_pin {
                // Pending until the PBX runs a render holding it (pushed below, or an apply).
                users::set_pin(&mut *w.tx, id, sealed.clone(), now).await?;
                self.bind_row_secrets(&mut w.tx, "users", id).await?;
            }
            let after = self.user_in_tx(&mut w, id).await?;
            let change = Change {
                action: "user.update",
                entity_type: "user",
                entity_id: format!("{}/{}", after.tenant, after.extension),
                tenant_id: Some(tenant_id),
            };
            record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
            w.commit().await?;
            Ok(after)
        })
        .await?;
        // DND and forwards take effect on the PBX at once, without an apply; when it cannot
        // be reached they stay pending (shown) for the next connection or apply.
        // The change is saved whatever happens here: a failed push leaves it pending.
        let mut pushed = false;
        if after.features_pending {
            match self.features_push(id).await {
                Ok(true) => pushed = true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "DND and forwards could not be pushed; they stay pending");
                }
            }
        }
        // A new PIN goes to the mailbox at once, through the guarded apply of the render the
        // PBX runs with that PIN changed and nothing else.
        if after.voicemail_pin_pending {
            let push = async {
                let pbx_id = crate::store::pins::pbx_of_user(self.store.pool(), id).await?;
                self.pins_push(actor, pbx_id, Some(id)).await
            };
            match push.await {
                Ok(push) => {
                    pushed |= push.pushed > 0 || push.settled > 0;
                    if let Some(why) = push.pending {
                        tracing::info!(reason = %why, "the voicemail PIN stays pending");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the voicemail PIN could not be pushed; it stays pending")
                }
            }
        }
        if pushed {
            return self.user_show(actor, id).await;
        }
        Ok(after)
    }

    /// Suspends or resumes a user (devices stay, but are not rendered while suspended).
    pub async fn user_set_status(
        &self,
        actor: &Actor,
        id: i64,
        status: UserStatus,
    ) -> Result<User> {
        actor.require_write()?;
        if status == UserStatus::Deleted {
            return self.user_delete(actor, id).await;
        }
        self.user_show(actor, id).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.user_in_tx(&mut w, id).await?;
        if before.status == UserStatus::Deleted {
            return Err(Error::Conflict(format!("user {id} is deleted")));
        }
        users::set_status(&mut *w.tx, id, status.as_str(), now).await?;
        let after = self.user_in_tx(&mut w, id).await?;
        let tenant_id = self.user_tenant_id(&mut w, id).await?;
        let action = if status == UserStatus::Suspended {
            "user.suspend"
        } else {
            "user.resume"
        };
        let change = Change {
            action,
            entity_type: "user",
            entity_id: format!("{}/{}", after.tenant, after.extension),
            tenant_id: Some(tenant_id),
        };
        record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Deletes a user: its devices go, its extension is held in quarantine before reuse.
    pub async fn user_delete(&self, actor: &Actor, id: i64) -> Result<User> {
        actor.require_write()?;
        self.user_show(actor, id).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.user_in_tx(&mut w, id).await?;
        if before.status == UserStatus::Deleted {
            return Err(Error::Conflict(format!("user {id} is already deleted")));
        }
        // Nothing may be left sending calls to nobody: a number, the unknown numbers, a group.
        let tenant_id = self.user_tenant_id(&mut w, id).await?;
        let routed = crate::store::dids::routed_to(
            &mut w.tx,
            tenant_id,
            &[
                &format!("user:{}", before.extension),
                &format!("voicemail:{}", before.extension),
            ],
        )
        .await?;
        if !routed.is_empty() {
            return Err(Error::Conflict(format!(
                "{} still send(s) calls to {} ({}); give them another destination first",
                routed.join(", "),
                before.display_name,
                before.extension
            )));
        }
        users::delete(&mut w.tx, id, now).await?;
        // A deleted user rings in no ring group any more (the others still do).
        crate::store::ring_groups::remove_member(&mut *w.tx, id).await?;
        let after = self.user_in_tx(&mut w, id).await?;
        let change = Change {
            action: "user.delete",
            entity_type: "user",
            entity_id: format!("{}/{}", after.tenant, after.extension),
            tenant_id: Some(tenant_id),
        };
        record(&mut w, actor, now, change, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    pub(crate) async fn user_tenant_id(&self, w: &mut WriteTx<'_>, user_id: i64) -> Result<i64> {
        users::tenant_of(&mut *w.tx, user_id).await
    }
}

/// An optional E.164 field: empty clears it.
fn optional_e164(s: Option<&str>, field: &str) -> Result<Option<E164>, ValidationError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => E164::parse(t).map(Some).map_err(|e| e.for_field(field)),
    }
}

/// A forward as patched (`Some`: set or cleared) or as it was.
fn forward_or(patched: &Option<Option<ForwardTarget>>, before: &Option<String>) -> Option<String> {
    match patched {
        Some(f) => f.as_ref().map(ToString::to_string),
        None => before.clone(),
    }
}
