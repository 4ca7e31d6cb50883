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
use crate::store::{db_error, WriteTx};
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
    trunks::usable_by_tenant(conn, tenant_id, name).await
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
            let id = trunks::tenant_on_pbx(&mut *conn, slug.trim(), pbx_id).await?;
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
        t.tenants = trunks::tenant_slugs(&mut *conn, id).await?;
        Ok(t)
    }

    async fn write_trunk_tenants(
        &self,
        w: &mut WriteTx<'_>,
        trunk_id: i64,
        ids: &[i64],
    ) -> Result<()> {
        trunks::set_tenants(&mut w.tx, trunk_id, ids).await?;
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
        let host = d.host.as_ref().map(|h| h.as_str().to_owned());
        let from_domain = d
            .from_domain
            .clone()
            .flatten()
            .map(|h| h.as_str().to_owned());
        let from_user = d.from_user.clone().flatten();
        let id = trunks::insert(
            &mut *w.tx,
            pbx.id,
            &pbx.name,
            name.as_str(),
            password,
            trunks::TrunkFields {
                host: host.as_deref(),
                port: d.port.unwrap_or(5060),
                transport: d.transport.unwrap_or(Transport::Udp).as_str(),
                register: input.register,
                username: username.as_deref(),
                from_domain: from_domain.as_deref(),
                from_user: from_user.as_deref(),
                codecs: codecs_to_string(d.codecs.as_deref().unwrap_or_default()),
                enabled: d.enabled.unwrap_or(true),
                now,
            },
        )
        .await?;
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
            let ids = trunks::ids(&mut *conn, pbx_id).await?;
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
        trunks::id_by_name(self.store.pool(), pbx.id, name.trim())
            .await?
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
            check_version(
                "trunk",
                &before.name,
                before.version,
                patch.expected_version,
            )?;
            let pbx_id = trunks::pbx_of(&mut *w.tx, id).await?;
            let register = d.register.unwrap_or(before.register);
            let username = d.username.clone().unwrap_or(before.username.clone());
            let has_password = match &d.password {
                Some(p) => p.is_some(),
                None => before.password_set,
            };
            if register && (username.is_none() || !has_password) {
                return Err(ValidationError::new(
                    "register",
                    "true",
                    "a registering trunk needs a username and a password",
                )
                .into());
            }
            let host = d
                .host
                .as_ref()
                .map_or(before.host.clone(), |h| h.as_str().to_owned());
            let from_domain = match &d.from_domain {
                Some(h) => h.as_ref().map(|h| h.as_str().to_owned()),
                None => before.from_domain.clone(),
            };
            let from_user = d.from_user.clone().unwrap_or(before.from_user.clone());
            trunks::update(
                &mut *w.tx,
                id,
                trunks::TrunkFields {
                    host: Some(host.as_str()),
                    port: d.port.unwrap_or(before.port),
                    transport: d.transport.unwrap_or(before.transport).as_str(),
                    register,
                    username: username.as_deref(),
                    from_domain: from_domain.as_deref(),
                    from_user: from_user.as_deref(),
                    codecs: codecs_to_string(d.codecs.as_deref().unwrap_or(&before.codecs)),
                    enabled: d.enabled.unwrap_or(before.enabled),
                    now,
                },
            )
            .await?;
            if let Some(p) = &d.password {
                trunks::set_password(&mut *w.tx, id, p.clone()).await?;
                self.bind_row_secrets(&mut w.tx, "trunks", id).await?;
            }
            if let Some(slugs) = &d.tenants {
                let ids = self.trunk_tenant_ids(&mut w.tx, pbx_id, slugs).await?;
                self.write_trunk_tenants(&mut w, id, &ids).await?;
            }
            let after = self.trunk_in_tx(&mut w.tx, id).await?;
            let c = Change {
                action: "trunk.update",
                entity_type: "trunk",
                entity_id: format!("{}/{}", after.pbx, after.name),
                tenant_id: None,
            };
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
        let rules = trunks::rules_on_its_pbx(&mut *w.tx, id).await?;
        let users: Vec<String> = rules
            .iter()
            .filter(|r| r.trunks.split(',').any(|n| n == before.name))
            .map(|r| format!("{}/{} rule {}", r.tenant, r.policy, r.position))
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "trunk \"{}\" is named by {}; remove it from those rules first",
                before.name,
                users.join(", ")
            )));
        }
        trunks::delete(&mut w.tx, id).await?;
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
