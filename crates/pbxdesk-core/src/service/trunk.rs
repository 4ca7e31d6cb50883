//! SIP trunks: a PBX's lines to its providers, and which tenants may use each. The password is
//! sealed at rest and never returned; a trunk a policy rule names cannot be removed.

use super::audit::{record, Change};
use super::tenant::check_version;
use super::{clearable, port, retry_busy, Actor, Workspace};
use crate::domain::{
    codecs_to_string, parse_account, parse_codecs, Codec, Host, Transport, TrunkName,
};
use crate::error::{Error, Result, ValidationError};
use crate::model::{NewTrunk, Trunk, TrunkPatch};
use crate::secret::Purpose;
use crate::store::trunks;
use crate::store::{classify, db_error, DbFailure, WriteTx};
use sqlx::AnyConnection;

/// A trunk password goes into pjsip.conf: besides the usual secret rules, nothing the config
/// parser would read as syntax.
fn trunk_password(s: &str) -> Result<String, ValidationError> {
    let ok = !s.is_empty()
        && s.chars().count() <= 128
        && s.trim() == s
        && s.chars()
            .all(|c| !c.is_control() && !matches!(c, ';' | '[' | ']'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ValidationError::secret(
            "password",
            "1 to 128 characters, no control characters, ';', '[' or ']', no spaces at the ends",
        ))
    }
}

/// Validated trunk fields (for add: every field; for update: what changes).
struct TrunkDraft {
    host: Option<Host>,
    port: Option<u16>,
    transport: Option<Transport>,
    register: Option<bool>,
    username: Option<Option<String>>,
    password: Option<Option<Vec<u8>>>,
    from_domain: Option<Option<Host>>,
    from_user: Option<Option<String>>,
    codecs: Option<Vec<Codec>>,
    enabled: Option<bool>,
    tenants: Option<Vec<String>>,
}

/// Whether `name` is a trunk of the tenant's PBX that the tenant may use (policy rules and DIDs
/// name trunks). A trunk the tenant may not use would put an error into the whole PBX's render
/// and block every tenant's apply, so it is refused at input, with the same answer as a trunk
/// that does not exist (a tenant_admin learns nothing of other tenants' trunks).
pub(crate) async fn trunk_usable_by_tenant(
    conn: &mut AnyConnection,
    tenant_id: i64,
    name: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM trunks k JOIN tenants t ON t.pbx_id = k.pbx_id \
         JOIN trunk_tenants kt ON kt.trunk_id = k.id AND kt.tenant_id = t.id \
         WHERE t.id = $1 AND k.name = $2",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(n > 0)
}

impl Workspace {
    fn trunk_draft(&self, p: &TrunkPatch) -> Result<TrunkDraft> {
        Ok(TrunkDraft {
            host: p.host.as_deref().map(Host::parse).transpose()?,
            port: port("port", p.port)?,
            transport: p.transport,
            register: p.register,
            username: clearable(p.username.as_deref(), |s| parse_account("username", s))?,
            password: clearable(p.password.as_deref(), trunk_password)?
                .map(|o| {
                    o.map(|pw| self.cipher.seal(Purpose::TrunkPassword, &pw))
                        .transpose()
                })
                .transpose()?,
            from_domain: clearable(p.from_domain.as_deref(), |s| {
                Host::parse(s).map_err(|e| e.for_field("from_domain"))
            })?,
            from_user: clearable(p.from_user.as_deref(), |s| parse_account("from_user", s))?,
            codecs: p.codecs.as_deref().map(parse_codecs).transpose()?,
            enabled: p.enabled,
            tenants: p.tenants.clone(),
        })
    }

    /// Resolves tenant slugs to ids; each must be a tenant of the trunk's PBX.
    async fn trunk_tenant_ids(
        &self,
        conn: &mut AnyConnection,
        pbx_id: i64,
        slugs: &[String],
    ) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        for slug in slugs {
            let id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1 AND pbx_id = $2")
                    .bind(slug.trim())
                    .bind(pbx_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_error)?;
            let id = id.ok_or_else(|| {
                ValidationError::new("tenants", slug, "a tenant of this trunk's PBX")
            })?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    async fn trunk_in_tx(&self, conn: &mut AnyConnection, id: i64) -> Result<Trunk> {
        let mut t = trunks::by_id(&mut *conn, id)
            .await?
            .ok_or_else(|| Error::not_found("trunk", id))?
            .into_trunk()?;
        t.tenants = sqlx::query_scalar("SELECT t.slug FROM trunk_tenants tt JOIN tenants t ON t.id = tt.tenant_id WHERE tt.trunk_id = $1 ORDER BY t.slug")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        Ok(t)
    }

    async fn write_trunk_tenants(
        &self,
        w: &mut WriteTx<'_>,
        trunk_id: i64,
        ids: &[i64],
    ) -> Result<()> {
        sqlx::query("DELETE FROM trunk_tenants WHERE trunk_id = $1")
            .bind(trunk_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        for id in ids {
            sqlx::query("INSERT INTO trunk_tenants (trunk_id, tenant_id) VALUES ($1, $2)")
                .bind(trunk_id)
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    pub async fn trunk_add(&self, actor: &Actor, input: &NewTrunk) -> Result<Trunk> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let name = TrunkName::parse(&input.name)?;
        let d = self.trunk_draft(&TrunkPatch {
            host: Some(input.host.clone()),
            port: Some(input.port.unwrap_or(5060)),
            transport: Some(input.transport.unwrap_or(Transport::Udp)),
            register: Some(input.register),
            username: input.username.clone(),
            password: input.password.clone(),
            from_domain: input.from_domain.clone(),
            from_user: input.from_user.clone(),
            codecs: Some(input.codecs.clone().unwrap_or_else(|| "alaw,ulaw".into())),
            enabled: Some(input.enabled.unwrap_or(true)),
            tenants: Some(input.tenants.clone()),
            expected_version: None,
        })?;
        let username = d.username.clone().flatten();
        let password = d.password.clone().flatten();
        if input.register && (username.is_none() || password.is_none()) {
            return Err(ValidationError::new(
                "register",
                "true",
                "a registering trunk needs a username and a password",
            )
            .into());
        }
        let pbx = self.pbx_by_name(&input.pbx).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let tenant_ids = self
            .trunk_tenant_ids(&mut w.tx, pbx.id, &input.tenants)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO trunks (pbx_id, name, host, port, transport, register, username, password, from_domain, from_user, codecs, enabled, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13) RETURNING id",
        )
        .bind(pbx.id)
        .bind(name.as_str())
        .bind(d.host.as_ref().map(|h| h.as_str().to_owned()))
        .bind(i64::from(d.port.unwrap_or(5060)))
        .bind(d.transport.unwrap_or(Transport::Udp).as_str())
        .bind(input.register)
        .bind(username)
        .bind(password)
        .bind(d.from_domain.clone().flatten().map(|h| h.as_str().to_owned()))
        .bind(d.from_user.clone().flatten())
        .bind(codecs_to_string(d.codecs.as_deref().unwrap_or_default()))
        .bind(d.enabled.unwrap_or(true))
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => Error::Conflict(format!("PBX \"{}\" already has a trunk named \"{name}\"", pbx.name)),
            _ => db_error(e),
        })?;
        self.bind_row_secrets(&mut w.tx, "trunks", id).await?;
        self.write_trunk_tenants(&mut w, id, &tenant_ids).await?;
        let trunk = self.trunk_in_tx(&mut w.tx, id).await?;
        let c = Change {
            action: "trunk.add",
            entity_type: "trunk",
            entity_id: format!("{}/{}", pbx.name, trunk.name),
            tenant_id: None,
        };
        record::<Trunk, Trunk>(&mut w, actor, now, c, None, Some(&trunk)).await?;
        w.commit().await?;
        Ok(trunk)
    }

    /// Trunks of a PBX (all PBXs when `pbx` is None). A tenant admin sees those its tenants may use.
    pub async fn trunk_list(&self, actor: &Actor, pbx: Option<&str>) -> Result<Vec<Trunk>> {
        // Resolved before a connection is held: one call never waits on the pool for a second.
        let pbx_id = match pbx {
            Some(p) => Some(self.pbx_by_name(p).await?.id),
            None => None,
        };
        let mut trunks = Vec::new();
        {
            let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
            let ids: Vec<i64> = match pbx_id {
                Some(id) => {
                    sqlx::query_scalar("SELECT id FROM trunks WHERE pbx_id = $1 ORDER BY name")
                        .bind(id)
                        .fetch_all(&mut *conn)
                        .await
                }
                None => {
                    sqlx::query_scalar("SELECT id FROM trunks ORDER BY pbx_id, name")
                        .fetch_all(&mut *conn)
                        .await
                }
            }
            .map_err(db_error)?;
            for id in ids {
                trunks.push(self.trunk_in_tx(&mut conn, id).await?);
            }
        }
        let mut out = Vec::new();
        for t in trunks {
            if let Some(t) = self.trunk_as_seen_by(actor, t).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The trunk as `actor` may see it: all of it for the MSP's roles; for a tenant_admin only a
    /// trunk its tenants may use, with its own tenants alone listed and the provider account
    /// (username, from_user) left out: other tenants' slugs and the MSP's accounts are not its
    /// business.
    async fn trunk_as_seen_by(&self, actor: &Actor, mut t: Trunk) -> Result<Option<Trunk>> {
        if actor.sees_all_tenants() {
            return Ok(Some(t));
        }
        let mut own = Vec::new();
        for slug in &t.tenants {
            if let Ok(k) = self.tenant_key(actor, slug).await {
                if actor.tenant_ids().contains(&k.id) {
                    own.push(slug.clone());
                }
            }
        }
        if own.is_empty() {
            return Ok(None);
        }
        t.tenants = own;
        t.username = None;
        t.from_user = None;
        Ok(Some(t))
    }

    async fn trunk_id(&self, pbx: &str, name: &str) -> Result<i64> {
        let pbx = self.pbx_by_name(pbx).await?;
        sqlx::query_scalar("SELECT id FROM trunks WHERE pbx_id = $1 AND name = $2")
            .bind(pbx.id)
            .bind(name.trim())
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("trunk", name))
    }

    pub async fn trunk_show(&self, actor: &Actor, pbx: &str, name: &str) -> Result<Trunk> {
        let id = self.trunk_id(pbx, name).await?;
        let mut conn = self.store.pool().acquire().await.map_err(db_error)?;
        let t = self.trunk_in_tx(&mut conn, id).await?;
        drop(conn);
        self.trunk_as_seen_by(actor, t)
            .await?
            .ok_or_else(|| Error::not_found("trunk", name))
    }

    pub async fn trunk_update(
        &self,
        actor: &Actor,
        pbx: &str,
        name: &str,
        patch: &TrunkPatch,
    ) -> Result<Trunk> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let d = self.trunk_draft(patch)?;
        retry_busy(|| async {
            let id = self.trunk_id(pbx, name).await?;
            let now = self.now();
            let mut w = self.store.begin_write().await?;
            let before = self.trunk_in_tx(&mut w.tx, id).await?;
            check_version("trunk", &before.name, before.version, patch.expected_version)?;
            let pbx_id: i64 = sqlx::query_scalar("SELECT pbx_id FROM trunks WHERE id = $1").bind(id).fetch_one(&mut *w.tx).await.map_err(db_error)?;
            let register = d.register.unwrap_or(before.register);
            let username = d.username.clone().unwrap_or(before.username.clone());
            let has_password = match &d.password {
                Some(p) => p.is_some(),
                None => before.password_set,
            };
            if register && (username.is_none() || !has_password) {
                return Err(ValidationError::new("register", "true", "a registering trunk needs a username and a password").into());
            }
            sqlx::query(
                "UPDATE trunks SET host = $1, port = $2, transport = $3, register = $4, username = $5, from_domain = $6, from_user = $7, \
                 codecs = $8, enabled = $9, version = version + 1, updated_at = $10 WHERE id = $11",
            )
            .bind(d.host.as_ref().map_or(before.host.clone(), |h| h.as_str().to_owned()))
            .bind(i64::from(d.port.unwrap_or(before.port)))
            .bind(d.transport.unwrap_or(before.transport).as_str())
            .bind(register)
            .bind(username)
            .bind(match &d.from_domain {
                Some(h) => h.as_ref().map(|h| h.as_str().to_owned()),
                None => before.from_domain.clone(),
            })
            .bind(d.from_user.clone().unwrap_or(before.from_user.clone()))
            .bind(codecs_to_string(d.codecs.as_deref().unwrap_or(&before.codecs)))
            .bind(d.enabled.unwrap_or(before.enabled))
            .bind(now)
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
            if let Some(p) = &d.password {
                sqlx::query("UPDATE trunks SET password = $1 WHERE id = $2").bind(p.clone()).bind(id).execute(&mut *w.tx).await.map_err(db_error)?;
                self.bind_row_secrets(&mut w.tx, "trunks", id).await?;
            }
            if let Some(slugs) = &d.tenants {
                let ids = self.trunk_tenant_ids(&mut w.tx, pbx_id, slugs).await?;
                self.write_trunk_tenants(&mut w, id, &ids).await?;
            }
            let after = self.trunk_in_tx(&mut w.tx, id).await?;
            let c = Change { action: "trunk.update", entity_type: "trunk", entity_id: format!("{}/{}", after.pbx, after.name), tenant_id: None };
            record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
            w.commit().await?;
            Ok(after)
        })
        .await
    }

    /// Removes a trunk no policy rule names.
    pub async fn trunk_remove(&self, actor: &Actor, pbx: &str, name: &str) -> Result<Trunk> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let id = self.trunk_id(pbx, name).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = self.trunk_in_tx(&mut w.tx, id).await?;
        let rules: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT t.slug, p.name, r.position, r.trunks FROM policy_rules r JOIN policies p ON p.id = r.policy_id \
             JOIN tenants t ON t.id = p.tenant_id JOIN trunks k ON k.pbx_id = t.pbx_id WHERE k.id = $1 ORDER BY t.slug, p.name, r.position",
        )
        .bind(id)
        .fetch_all(&mut *w.tx)
        .await
        .map_err(db_error)?;
        let users: Vec<String> = rules
            .iter()
            .filter(|r| r.3.split(',').any(|n| n == before.name))
            .map(|r| format!("{}/{} rule {}", r.0, r.1, r.2))
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "trunk \"{}\" is named by {}; remove it from those rules first",
                before.name,
                users.join(", ")
            )));
        }
        sqlx::query("DELETE FROM trunk_tenants WHERE trunk_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM trunks WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        let c = Change {
            action: "trunk.remove",
            entity_type: "trunk",
            entity_id: format!("{}/{}", before.pbx, before.name),
            tenant_id: None,
        };
        record::<Trunk, Trunk>(&mut w, actor, now, c, Some(&before), None).await?;
        w.commit().await?;
        Ok(before)
    }
}
