use super::audit::{record, Change};
use super::tenant::check_version;
use super::{clearable, port, Actor, Workspace};
use crate::domain::{
    parse_account, parse_fingerprint, parse_secret, Host, LoginName, PbxName, RemotePath,
};
use crate::error::{Error, Result, ValidationError};
use crate::model::{NewPbx, Pbx, PbxPatch};
use crate::secret::Purpose;
use crate::store::pbxes::{self, ProfileChange};

fn timeout(field: &str, t: Option<u32>) -> Result<Option<u32>, ValidationError> {
    match t {
        Some(ms) if !(100..=600_000).contains(&ms) => Err(ValidationError::new(
            field,
            &ms.to_string(),
            "milliseconds from 100 to 600000",
        )),
        other => Ok(other),
    }
}

impl Workspace {
    fn validate_profile(&self, p: &PbxPatch) -> Result<ProfileChange> {
        let seal = |purpose: Purpose,
                    field: &'static str,
                    v: Option<&String>|
         -> Result<Option<Option<Vec<u8>>>> {
            match v {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(Some(None)),
                Some(s) => {
                    let s = parse_secret(field, s)?;
                    Ok(Some(Some(self.cipher.seal(purpose, &s)?)))
                }
            }
        };
        Ok(ProfileChange {
            host: p.host.as_deref().map(Host::parse).transpose()?,
            ssh_port: port("ssh_port", p.ssh_port)?,
            ssh_user: p
                .ssh_user
                .as_deref()
                .map(|u| LoginName::parse("ssh_user", u.trim()))
                .transpose()?,
            ssh_auth: p.ssh_auth,
            ssh_key_path: clearable(p.ssh_key_path.as_deref(), |s| {
                if s.chars().any(char::is_control) || s.len() > 4096 {
                    Err(ValidationError::new(
                        "ssh_key_path",
                        s,
                        "a file path without control characters",
                    ))
                } else {
                    Ok(s.trim().to_owned())
                }
            })?,
            ssh_secret: seal(
                Purpose::ConnectionPassword,
                "ssh_secret",
                p.ssh_secret.as_ref(),
            )?,
            config_dir: p
                .config_dir
                .as_deref()
                .map(|d| RemotePath::parse("config_dir", d))
                .transpose()?,
            ami_via: p.ami_via,
            ami_port: port("ami_port", p.ami_port)?,
            ami_user: clearable(p.ami_user.as_deref(), |s| parse_account("ami_user", s))?,
            ami_secret: seal(
                Purpose::ConnectionPassword,
                "ami_secret",
                p.ami_secret.as_ref(),
            )?,
            db_via: p.db_via,
            db_port: port("db_port", p.db_port)?,
            db_name: p
                .db_name
                .as_deref()
                .map(|s| parse_account("db_name", s))
                .transpose()?,
            db_user: clearable(p.db_user.as_deref(), |s| parse_account("db_user", s))?,
            db_password: seal(
                Purpose::ConnectionPassword,
                "db_password",
                p.db_password.as_ref(),
            )?,
            connect_timeout_ms: timeout("connect_timeout_ms", p.connect_timeout_ms)?,
            command_timeout_ms: timeout("command_timeout_ms", p.command_timeout_ms)?,
        })
    }

    pub async fn pbx_add(&self, actor: &Actor, input: &NewPbx) -> Result<Pbx> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let name = PbxName::parse(input.name.trim())?;
        if input
            .profile
            .host
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
        {
            return Err(ValidationError::new("host", "", Host::RULE).into());
        }
        let change = self.validate_profile(&input.profile)?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let host = change.host.as_ref().map(Host::as_str);
        let id = pbxes::insert(&mut w.tx, name.as_str(), host, now).await?;
        pbxes::update_profile(&mut w.tx, id, &change, now).await?;
        self.bind_row_secrets(&mut w.tx, "pbxes", id).await?;
        let pbx = pbxes::by_id(&mut *w.tx, id).await?;
        let c = Change {
            action: "pbx.add",
            entity_type: "pbx",
            entity_id: pbx.name.clone(),
            tenant_id: None,
        };
        record::<Pbx, Pbx>(&mut w, actor, now, c, None, Some(&pbx)).await?;
        w.commit().await?;
        Ok(pbx)
    }

    pub async fn pbx_update(&self, actor: &Actor, name: &str, patch: &PbxPatch) -> Result<Pbx> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let change = self.validate_profile(patch)?;
        let id = self.pbx_by_name(name).await?.id;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = pbxes::by_id(&mut *w.tx, id).await?;
        check_version("PBX", &before.name, before.version, patch.expected_version)?;
        pbxes::update_profile(&mut w.tx, id, &change, now).await?;
        self.bind_row_secrets(&mut w.tx, "pbxes", id).await?;
        // A new host or port is another machine as far as SSH knows: trust it again.
        if change
            .host
            .as_ref()
            .is_some_and(|h| h.as_str() != before.host)
            || change.ssh_port.is_some_and(|p| p != before.ssh_port)
        {
            pbxes::set_host_key(&mut w.tx, id, None, now).await?;
        }
        let after = pbxes::by_id(&mut *w.tx, id).await?;
        let c = Change {
            action: "pbx.update",
            entity_type: "pbx",
            entity_id: after.name.clone(),
            tenant_id: None,
        };
        record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Pins the host key the technician accepted (audited).
    pub async fn pbx_trust(&self, actor: &Actor, name: &str, fingerprint: &str) -> Result<Pbx> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let fp = parse_fingerprint(fingerprint)?;
        let id = self.pbx_by_name(name).await?.id;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let before = pbxes::by_id(&mut *w.tx, id).await?;
        pbxes::set_host_key(&mut w.tx, id, Some(&fp), now).await?;
        let after = pbxes::by_id(&mut *w.tx, id).await?;
        let c = Change {
            action: "pbx.trust",
            entity_type: "pbx",
            entity_id: after.name.clone(),
            tenant_id: None,
        };
        record(&mut w, actor, now, c, Some(&before), Some(&after)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Removes a PBX that no tenant uses any more (audited).
    pub async fn pbx_remove(&self, actor: &Actor, name: &str) -> Result<Pbx> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let pbx = self.pbx_by_name(name).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let tenants = pbxes::tenant_count(&mut w.tx, pbx.id).await?;
        if tenants > 0 {
            return Err(Error::Conflict(format!(
                "PBX \"{name}\" still has {tenants} tenant(s); move or remove them first"
            )));
        }
        pbxes::delete(&mut w.tx, pbx.id).await?;
        let c = Change {
            action: "pbx.remove",
            entity_type: "pbx",
            entity_id: pbx.name.clone(),
            tenant_id: None,
        };
        record::<Pbx, Pbx>(&mut w, actor, now, c, Some(&pbx), None).await?;
        w.commit().await?;
        Ok(pbx)
    }

    pub async fn pbx_show(&self, actor: &Actor, name: &str) -> Result<Pbx> {
        let pbx = self.pbx_by_name(name).await?;
        // A PBX none of its tenants is on is, for a tenant_admin, one that does not exist.
        if !actor.sees_all_tenants() && !self.pbx_list(actor).await?.iter().any(|p| p.id == pbx.id)
        {
            return Err(Error::not_found("PBX", name));
        }
        Ok(pbx)
    }

    pub async fn pbx_list(&self, actor: &Actor) -> Result<Vec<Pbx>> {
        if actor.sees_all_tenants() {
            pbxes::all(self.store.pool()).await
        } else {
            // A tenant_admin sees only the PBXs its tenants are on.
            pbxes::of_tenants(self.store.pool(), actor.tenant_ids()).await
        }
    }

    pub(crate) async fn pbx_by_name(&self, name: &str) -> Result<Pbx> {
        pbxes::by_name(self.store.pool(), name.trim())
            .await?
            .ok_or_else(|| Error::not_found("PBX", name))
    }

    /// The sealed secrets of a PBX's profile, opened (for connecting; never returned to a UI).
    pub(crate) async fn pbx_secrets(&self, id: i64) -> Result<[Option<secrecy::SecretString>; 3]> {
        let sealed = pbxes::sealed_secrets(self.store.pool(), id).await?;
        let open = |column: &str, b: Option<Vec<u8>>| {
            b.map(|b| self.unseal("pbxes", column, id, &b)).transpose()
        };
        Ok([
            open("ssh_secret", sealed.ssh_secret)?,
            open("ami_secret", sealed.ami_secret)?,
            open("db_password", sealed.db_password)?,
        ])
    }
}
