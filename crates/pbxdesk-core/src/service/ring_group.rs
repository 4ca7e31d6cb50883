//! Ring groups: an extension of a tenant's range that rings some of its users (all at once, in
//! order, or round robin), skipping members on DND, then goes to its no-answer destination.
//! Its extension is held like a user's (the allocator skips it, a user cannot take it); its
//! members are live users of the tenant; its no-answer destination exists and never leads back
//! to itself; it cannot be deleted while a number, the tenant's unknown numbers or another
//! group still send calls to it.

use super::audit::{record, Change};
use super::tenant::{check_version, TenantKey};
use super::{Actor, Workspace};
use crate::domain::{DidDestination, DisplayName, Extension, RingStrategy};
use crate::error::{Error, Problems, Result, ValidationError};
use crate::model::{NewRingGroup, RingGroup, RingGroupPatch, RingMember};
use crate::store::ring_groups::{self, MemberRow, RingGroupFields, RingGroupRow};
use sqlx::AnyConnection;
use std::collections::HashMap;

/// The most members a group rings (a dial string of every device of each).
pub const MAX_MEMBERS: usize = 64;
const SECONDS: std::ops::RangeInclusive<u32> = 5..=600;
const DEFAULT_MEMBER_SECONDS: u32 = 20;
const DEFAULT_TOTAL_SECONDS: u32 = 60;

fn seconds(field: &str, v: u32) -> Result<u32, ValidationError> {
    if SECONDS.contains(&v) {
        Ok(v)
    } else {
        Err(ValidationError::new(
            field,
            &v.to_string(),
            "5 to 600 seconds",
        ))
    }
}

fn members_rule(members: &[u32]) -> Result<Vec<Extension>, ValidationError> {
    let text = members
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let bad = |why: &str| ValidationError::new("members", &text, why);
    if members.is_empty() || members.len() > MAX_MEMBERS {
        return Err(bad(
            "1 to 64 extensions of the tenant's users, in ringing order",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let e = Extension::from_number(i64::from(*m))
            .map_err(|_| bad("extensions of 2 to 6 digits, not starting with 0"))?;
        if !seen.insert(*m) {
            return Err(bad("each member once"));
        }
        out.push(e);
    }
    Ok(out)
}

fn into_group(row: RingGroupRow, members: Vec<RingMember>) -> Result<RingGroup> {
    let damaged = || Error::Store("ring group on record is damaged".into());
    Ok(RingGroup {
        id: row.id,
        tenant: row.tenant,
        extension: u32::try_from(row.extension).map_err(|_| damaged())?,
        name: row.name,
        strategy: RingStrategy::parse(&row.strategy).map_err(|_| damaged())?,
        members,
        member_seconds: u32::try_from(row.member_seconds).map_err(|_| damaged())?,
        total_seconds: u32::try_from(row.total_seconds).map_err(|_| damaged())?,
        no_answer: row.no_answer,
        version: row.version,
    })
}

fn member(m: &MemberRow) -> RingMember {
    RingMember {
        extension: u32::try_from(m.extension).unwrap_or_default(),
        name: m.name.clone(),
    }
}

impl Workspace {
    /// A tenant's ring groups, by extension, with their members in order.
    pub async fn ring_group_list(&self, actor: &Actor, tenant: &str) -> Result<Vec<RingGroup>> {
        let t = self.tenant_key(actor, tenant).await?;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::db_error)?;
        groups_of(&mut conn, t.id).await
    }

    pub async fn ring_group_show(
        &self,
        actor: &Actor,
        tenant: &str,
        extension: u32,
    ) -> Result<RingGroup> {
        let t = self.tenant_key(actor, tenant).await?;
        let mut conn = self
            .store
            .pool()
            .acquire()
            .await
            .map_err(crate::store::db_error)?;
        group_at(&mut conn, &t, extension).await
    }

    /// Makes a ring group at the extension asked for (or the lowest free one).
    pub async fn ring_group_create(
        &self,
        actor: &Actor,
        input: &NewRingGroup,
    ) -> Result<RingGroup> {
        actor.require_write()?;
        let mut bad = Problems::new();
        let name = bad.take(DisplayName::parse("name", &input.name));
        let extension = input
            .extension
            .and_then(|e| bad.take(Extension::from_number(i64::from(e))));
        let members = bad.take(members_rule(&input.members));
        let member_seconds = bad.take(seconds(
            "member_seconds",
            input.member_seconds.unwrap_or(DEFAULT_MEMBER_SECONDS),
        ));
        let total_seconds = bad.take(seconds(
            "total_seconds",
            input.total_seconds.unwrap_or(DEFAULT_TOTAL_SECONDS),
        ));
        let no_answer = bad.take(
            DidDestination::parse(input.no_answer.as_deref().unwrap_or("hangup"))
                .map_err(|e| e.for_field("no_answer")),
        );
        if let (Some(m), Some(t)) = (member_seconds, total_seconds) {
            if t < m {
                bad.push(ValidationError::new(
                    "total_seconds",
                    &t.to_string(),
                    format!("at least member_seconds ({m})"),
                ));
            }
        }
        let tenant = self.tenant_key(actor, &input.tenant).await?;
        if let Some(e) = extension {
            if !tenant.range.contains(e) {
                bad.push(ValidationError::new(
                    "extension",
                    &e.to_string(),
                    format!(
                        "must be within tenant \"{}\"'s range {}",
                        tenant.slug, tenant.range
                    ),
                ));
            }
        }
        bad.finish()?;
        let (Some(name), Some(members), Some(member_seconds), Some(total_seconds), Some(no_answer)) =
            (name, members, member_seconds, total_seconds, no_answer)
        else {
            return Err(Error::Store("a checked field was lost".into()));
        };
        let strategy = input.strategy.unwrap_or(RingStrategy::All);
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        if self.store.backend() == crate::store::Backend::Postgres {
            // Allocations of one tenant queue, users' and groups' alike (SQLite's write
            // transactions already do).
            crate::store::tenants::lock_for_allocation(&mut *w.tx, tenant.id).await?;
        }
        let ext = match extension {
            Some(e) => {
                self.check_extension_free(&mut w, &tenant, e, now).await?;
                e
            }
            None => {
                self.allocate_extension(&mut w, &tenant, tenant.range, now)
                    .await?
            }
        };
        let user_ids = member_ids(&mut w.tx, &tenant, &members).await?;
        check_no_answer(&mut w.tx, self, &tenant, ext, &no_answer).await?;
        let id = ring_groups::insert(
            &mut w.tx,
            tenant.id,
            i64::from(ext.get()),
            &RingGroupFields {
                name: name.as_str(),
                strategy: strategy.as_str(),
                member_seconds: i64::from(member_seconds),
                total_seconds: i64::from(total_seconds),
                no_answer: &no_answer.to_string(),
            },
            now,
        )
        .await?;
        ring_groups::set_members(&mut w.tx, id, &user_ids).await?;
        let after = group_at(&mut w.tx, &tenant, ext.get()).await?;
        let c = Change {
            action: "ring_group.create",
            entity_type: "ring_group",
            entity_id: format!("{}/{}", tenant.slug, ext),
            tenant_id: Some(tenant.id),
        };
        record::<RingGroup, RingGroup>(&mut w, actor, now, c, None, Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    pub async fn ring_group_update(
        &self,
        actor: &Actor,
        tenant: &str,
        extension: u32,
        patch: &RingGroupPatch,
    ) -> Result<RingGroup> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, tenant).await?;
        let mut bad = Problems::new();
        let name = patch
            .name
            .as_deref()
            .and_then(|n| bad.take(DisplayName::parse("name", n)));
        let members = patch
            .members
            .as_deref()
            .and_then(|m| bad.take(members_rule(m)));
        let member_seconds = patch
            .member_seconds
            .and_then(|v| bad.take(seconds("member_seconds", v)));
        let total_seconds = patch
            .total_seconds
            .and_then(|v| bad.take(seconds("total_seconds", v)));
        let no_answer = patch
            .no_answer
            .as_deref()
            .and_then(|d| bad.take(DidDestination::parse(d).map_err(|e| e.for_field("no_answer"))));
        bad.finish()?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = group_at(&mut w.tx, &tenant, extension).await?;
        check_version(
            "ring group",
            &before.extension.to_string(),
            before.version,
            patch.expected_version,
        )?;
        let member_seconds = member_seconds.unwrap_or(before.member_seconds);
        let total_seconds = total_seconds.unwrap_or(before.total_seconds);
        if total_seconds < member_seconds {
            return Err(ValidationError::new(
                "total_seconds",
                &total_seconds.to_string(),
                format!("at least member_seconds ({member_seconds})"),
            )
            .into());
        }
        let ext = Extension::from_number(i64::from(extension))?;
        let no_answer = match no_answer {
            Some(d) => {
                check_no_answer(&mut w.tx, self, &tenant, ext, &d).await?;
                d.to_string()
            }
            None => before.no_answer.clone(),
        };
        if let Some(m) = &members {
            let ids = member_ids(&mut w.tx, &tenant, m).await?;
            ring_groups::set_members(&mut w.tx, before.id, &ids).await?;
        }
        let name = name.map_or(before.name.clone(), |n| n.to_string());
        let strategy = patch.strategy.unwrap_or(before.strategy);
        let done = ring_groups::update(
            &mut w.tx,
            before.id,
            before.version,
            &RingGroupFields {
                name: &name,
                strategy: strategy.as_str(),
                member_seconds: i64::from(member_seconds),
                total_seconds: i64::from(total_seconds),
                no_answer: &no_answer,
            },
            now,
        )
        .await?;
        if !done {
            return Err(Error::Conflict(format!(
                "ring group {extension} was changed by someone else; reload and try again"
            )));
        }
        let after = group_at(&mut w.tx, &tenant, extension).await?;
        let c = Change {
            action: "ring_group.update",
            entity_type: "ring_group",
            entity_id: format!("{}/{}", tenant.slug, extension),
            tenant_id: Some(tenant.id),
        };
        record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Deletes a ring group nothing sends calls to any more; its extension is free again.
    pub async fn ring_group_delete(
        &self,
        actor: &Actor,
        tenant: &str,
        extension: u32,
    ) -> Result<RingGroup> {
        actor.require_write()?;
        let tenant = self.tenant_key(actor, tenant).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = group_at(&mut w.tx, &tenant, extension).await?;
        let me = format!("ring_group:{extension}");
        let pointing = crate::store::dids::routed_to(&mut w.tx, tenant.id, &[&me]).await?;
        if !pointing.is_empty() {
            return Err(Error::Conflict(format!(
                "{} still send(s) calls to ring group {} ({extension}); give them another destination first",
                pointing.join(", "),
                before.name
            )));
        }
        ring_groups::delete(&mut w.tx, before.id).await?;
        // The number is free below the allocator's hint: it looks from the start again.
        crate::store::users::drop_hint(&mut *w.tx, tenant.id).await?;
        let c = Change {
            action: "ring_group.delete",
            entity_type: "ring_group",
            entity_id: format!("{}/{}", tenant.slug, extension),
            tenant_id: Some(tenant.id),
        };
        record::<RingGroup, RingGroup>(&mut w, actor, now, c, Some(&before), None).await?;
        w.commit().await?;
        Ok(before)
    }
}

async fn groups_of(conn: &mut AnyConnection, tenant_id: i64) -> Result<Vec<RingGroup>> {
    let rows = ring_groups::of_tenant(&mut *conn, tenant_id).await?;
    let mut members: HashMap<i64, Vec<RingMember>> = HashMap::new();
    for m in ring_groups::members_of_tenant(&mut *conn, tenant_id).await? {
        members.entry(m.group_id).or_default().push(member(&m));
    }
    rows.into_iter()
        .map(|r| {
            let m = members.remove(&r.id).unwrap_or_default();
            into_group(r, m)
        })
        .collect()
}

async fn group_at(conn: &mut AnyConnection, t: &TenantKey, extension: u32) -> Result<RingGroup> {
    let key = || format!("{}/{extension}", t.slug);
    let row = ring_groups::by_extension(&mut *conn, t.id, i64::from(extension))
        .await?
        .ok_or_else(|| Error::not_found("ring group", key()))?;
    let members = ring_groups::members_of_group(&mut *conn, row.id)
        .await?
        .iter()
        .map(member)
        .collect();
    into_group(row, members)
}

/// The members' user ids, in order: each a live user of the tenant.
async fn member_ids(
    conn: &mut AnyConnection,
    t: &TenantKey,
    members: &[Extension],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(members.len());
    for e in members {
        match crate::store::users::live_id(&mut *conn, t.id, e.get()).await? {
            Some(id) => ids.push(id),
            None => {
                return Err(ValidationError::new(
                    "members",
                    &e.to_string(),
                    format!("extensions of live users of tenant \"{}\"", t.slug),
                )
                .into())
            }
        }
    }
    Ok(ids)
}

/// A group's no-answer destination exists, is not the group, and does not lead back to it
/// through other groups' no-answer destinations.
async fn check_no_answer(
    conn: &mut AnyConnection,
    ws: &Workspace,
    t: &TenantKey,
    me: Extension,
    d: &DidDestination,
) -> Result<()> {
    let refuse =
        |why: String| -> Error { ValidationError::new("no_answer", &d.to_string(), why).into() };
    ws.check_destination(conn, t, d)
        .await
        .map_err(|e| match e {
            Error::Validation(v) => refuse(v.rule),
            other => other,
        })?;
    let next: HashMap<u32, String> = ring_groups::of_tenant(&mut *conn, t.id)
        .await?
        .into_iter()
        .filter_map(|g| Some((u32::try_from(g.extension).ok()?, g.no_answer)))
        .collect();
    let mut at = d.clone();
    let mut path = vec![me.get()];
    while let DidDestination::RingGroup(e) = at {
        if path.contains(&e.get()) {
            path.push(e.get());
            let shown: Vec<String> = path.iter().map(|p| format!("ring group {p}")).collect();
            return Err(refuse(format!(
                "a destination that does not lead back to this group ({})",
                shown.join(" → ")
            )));
        }
        path.push(e.get());
        let Some(n) = next.get(&e.get()) else { break };
        at = match DidDestination::parse(n) {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    Ok(())
}
