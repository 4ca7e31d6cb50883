use super::audit::{record, Change};
use super::tenant::check_version;
use super::{clearable, port, Actor, Workspace};
use crate::domain::{
    parse_account, parse_fingerprint, parse_secret, Host, LoginName, PbxName, RemotePath, SshAuth,
    Via,
};
use crate::error::{Error, Result, ValidationError};
use crate::model::{NewPbx, Pbx, PbxPatch};
use crate::secret::Purpose;
use crate::store::{classify, db_error, DbFailure};
use sqlx::AnyConnection;

/// A sealed secret as stored, if any.
type Sealed = Option<Vec<u8>>;

const PBX_SELECT: &str = "SELECT id, name, host, ssh_port, ssh_user, ssh_auth, ssh_key_path, \
     CASE WHEN ssh_secret IS NULL THEN 0 ELSE 1 END, host_key, config_dir, ami_via, ami_port, ami_user, \
     CASE WHEN ami_secret IS NULL THEN 0 ELSE 1 END, db_via, db_port, db_name, db_user, \
     CASE WHEN db_password IS NULL THEN 0 ELSE 1 END, connect_timeout_ms, command_timeout_ms, version FROM pbxes";

fn pbx_from_row(r: &sqlx::any::AnyRow) -> Result<Pbx> {
    use sqlx::Row;
    let damaged = || Error::Store("PBX profile on record is damaged".into());
    let get_i = |i: usize| -> Result<i64> { r.try_get::<i64, _>(i).map_err(|_| damaged()) };
    let get_s = |i: usize| -> Result<String> { r.try_get::<String, _>(i).map_err(|_| damaged()) };
    let get_o = |i: usize| -> Result<Option<String>> {
        r.try_get::<Option<String>, _>(i).map_err(|_| damaged())
    };
    let port = |i: usize| -> Result<u16> { u16::try_from(get_i(i)?).map_err(|_| damaged()) };
    let ms = |i: usize| -> Result<u32> { u32::try_from(get_i(i)?).map_err(|_| damaged()) };
    Ok(Pbx {
        id: get_i(0)?,
        name: get_s(1)?,
        host: get_s(2)?,
        ssh_port: port(3)?,
        ssh_user: get_s(4)?,
        ssh_auth: SshAuth::parse(&get_s(5)?).map_err(|_| damaged())?,
        ssh_key_path: get_o(6)?,
        ssh_secret_set: get_i(7)? != 0,
        host_key: get_o(8)?,
        config_dir: get_s(9)?,
        ami_via: Via::parse(&get_s(10)?).map_err(|_| damaged())?,
        ami_port: port(11)?,
        ami_user: get_o(12)?,
        ami_secret_set: get_i(13)? != 0,
        db_via: Via::parse(&get_s(14)?).map_err(|_| damaged())?,
        db_port: port(15)?,
        db_name: get_s(16)?,
        db_user: get_o(17)?,
        db_password_set: get_i(18)? != 0,
        connect_timeout_ms: ms(19)?,
        command_timeout_ms: ms(20)?,
        version: get_i(21)?,
    })
}

/// A validated profile change. `Some(None)` clears an optional field.
struct ProfileChange {
    host: Option<Host>,
    ssh_port: Option<u16>,
    ssh_user: Option<LoginName>,
    ssh_auth: Option<SshAuth>,
    ssh_key_path: Option<Option<String>>,
    ssh_secret: Option<Option<Vec<u8>>>,
    config_dir: Option<RemotePath>,
    ami_via: Option<Via>,
    ami_port: Option<u16>,
    ami_user: Option<Option<String>>,
    ami_secret: Option<Option<Vec<u8>>>,
    db_via: Option<Via>,
    db_port: Option<u16>,
    db_name: Option<String>,
    db_user: Option<Option<String>>,
    db_password: Option<Option<Vec<u8>>>,
    connect_timeout_ms: Option<u32>,
    command_timeout_ms: Option<u32>,
}

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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pbxes (name, host, ssh_port, ssh_user, created_at, updated_at) \
             VALUES ($1, $2, 22, 'root', $3, $3) RETURNING id",
        )
        .bind(name.as_str())
        .bind(change.host.as_ref().map(|h| h.as_str().to_owned()))
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => {
                Error::Conflict(format!("a PBX named \"{}\" already exists", name.as_str()))
            }
            _ => db_error(e),
        })?;
        apply_profile(&mut w.tx, id, &change, now).await?;
        self.bind_row_secrets(&mut w.tx, "pbxes", id).await?;
        let pbx = pbx_by_id(&mut w.tx, id).await?;
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
        let before = pbx_by_id(&mut w.tx, id).await?;
        check_version("PBX", &before.name, before.version, patch.expected_version)?;
        apply_profile(&mut w.tx, id, &change, now).await?;
        self.bind_row_secrets(&mut w.tx, "pbxes", id).await?;
        // A new host or port is another machine as far as SSH knows: trust it again.
        if change
            .host
            .as_ref()
            .is_some_and(|h| h.as_str() != before.host)
            || change.ssh_port.is_some_and(|p| p != before.ssh_port)
        {
            sqlx::query("UPDATE pbxes SET host_key = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(db_error)?;
        }
        let after = pbx_by_id(&mut w.tx, id).await?;
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
        let before = pbx_by_id(&mut w.tx, id).await?;
        sqlx::query(
            "UPDATE pbxes SET host_key = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(&fp)
        .bind(now)
        .bind(id)
        .execute(&mut *w.tx)
        .await
        .map_err(db_error)?;
        let after = pbx_by_id(&mut w.tx, id).await?;
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
        let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE pbx_id = $1")
            .bind(pbx.id)
            .fetch_one(&mut *w.tx)
            .await
            .map_err(db_error)?;
        if tenants > 0 {
            return Err(Error::Conflict(format!(
                "PBX \"{name}\" still has {tenants} tenant(s); move or remove them first"
            )));
        }
        sqlx::query("DELETE FROM pbxes WHERE id = $1")
            .bind(pbx.id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
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
        if !actor.sees_all_tenants() && !self.pbx_list(actor).await?.iter().any(|p| p.id == pbx.id)
        {
            return Err(Error::Forbidden(format!(
                "operator \"{}\" may not see PBX \"{name}\"",
                actor.name()
            )));
        }
        Ok(pbx)
    }

    pub async fn pbx_list(&self, actor: &Actor) -> Result<Vec<Pbx>> {
        let rows = if actor.sees_all_tenants() {
            sqlx::query(&format!("{PBX_SELECT} ORDER BY name")).fetch_all(self.store.pool()).await
        } else {
            // A tenant_admin sees only the PBXs its tenants are on.
            let ids = actor.tenant_ids();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "{PBX_SELECT} WHERE id IN (SELECT pbx_id FROM tenants WHERE id IN ({})) ORDER BY name",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(self.store.pool()).await
        }
        .map_err(db_error)?;
        rows.iter().map(pbx_from_row).collect()
    }

    pub(crate) async fn pbx_by_name(&self, name: &str) -> Result<Pbx> {
        let row = sqlx::query(&format!("{PBX_SELECT} WHERE name = $1"))
            .bind(name.trim())
            .fetch_optional(self.store.pool())
            .await
            .map_err(db_error)?;
        row.as_ref()
            .map(pbx_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found("PBX", name))
    }

    /// The sealed secrets of a PBX's profile, opened (for connecting; never returned to a UI).
    pub(crate) async fn pbx_secrets(&self, id: i64) -> Result<[Option<secrecy::SecretString>; 3]> {
        let (ssh, ami, db): (Sealed, Sealed, Sealed) =
            sqlx::query_as("SELECT ssh_secret, ami_secret, db_password FROM pbxes WHERE id = $1")
                .bind(id)
                .fetch_one(self.store.pool())
                .await
                .map_err(db_error)?;
        let open = |column: &str, b: Option<Vec<u8>>| {
            b.map(|b| self.unseal("pbxes", column, id, &b)).transpose()
        };
        Ok([
            open("ssh_secret", ssh)?,
            open("ami_secret", ami)?,
            open("db_password", db)?,
        ])
    }
}

async fn pbx_by_id(conn: &mut AnyConnection, id: i64) -> Result<Pbx> {
    let row = sqlx::query(&format!("{PBX_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(db_error)?;
    pbx_from_row(&row)
}

/// Writes the given fields; untouched ones keep their value (COALESCE on a NULL parameter).
async fn apply_profile(
    conn: &mut AnyConnection,
    id: i64,
    c: &ProfileChange,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE pbxes SET host = COALESCE($1, host), ssh_port = COALESCE($2, ssh_port), ssh_user = COALESCE($3, ssh_user), \
         ssh_auth = COALESCE($4, ssh_auth), config_dir = COALESCE($5, config_dir), ami_via = COALESCE($6, ami_via), \
         ami_port = COALESCE($7, ami_port), db_via = COALESCE($8, db_via), db_port = COALESCE($9, db_port), \
         db_name = COALESCE($10, db_name), connect_timeout_ms = COALESCE($11, connect_timeout_ms), \
         command_timeout_ms = COALESCE($12, command_timeout_ms), version = version + 1, updated_at = $13 WHERE id = $14",
    )
    .bind(c.host.as_ref().map(|h| h.as_str().to_owned()))
    .bind(c.ssh_port.map(i64::from))
    .bind(c.ssh_user.as_ref().map(|u| u.as_str().to_owned()))
    .bind(c.ssh_auth.map(|a| a.as_str()))
    .bind(c.config_dir.as_ref().map(|d| d.as_str().to_owned()))
    .bind(c.ami_via.map(|v| v.as_str()))
    .bind(c.ami_port.map(i64::from))
    .bind(c.db_via.map(|v| v.as_str()))
    .bind(c.db_port.map(i64::from))
    .bind(c.db_name.clone())
    .bind(c.connect_timeout_ms.map(i64::from))
    .bind(c.command_timeout_ms.map(i64::from))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    // Clearable fields: set only those given (Some), to a value or to NULL.
    for (column, value) in [
        ("ssh_key_path", &c.ssh_key_path),
        ("ami_user", &c.ami_user),
        ("db_user", &c.db_user),
    ] {
        set_clearable(conn, id, column, value).await?;
    }
    for (column, value) in [
        ("ssh_secret", &c.ssh_secret),
        ("ami_secret", &c.ami_secret),
        ("db_password", &c.db_password),
    ] {
        set_clearable(conn, id, column, value).await?;
    }
    Ok(())
}

/// Sets one clearable column when the change names it: `Some(None)` writes NULL.
async fn set_clearable<T>(
    conn: &mut AnyConnection,
    id: i64,
    column: &'static str,
    value: &Option<Option<T>>,
) -> Result<()>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    if let Some(v) = value {
        sqlx::query(&format!("UPDATE pbxes SET {column} = $1 WHERE id = $2"))
            .bind(v.clone())
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
