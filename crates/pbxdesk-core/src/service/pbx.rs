use super::audit::{record, Change};
use super::{Actor, Workspace};
use crate::domain::{Host, LoginName, PbxName};
use crate::error::{Error, Result, ValidationError};
use crate::model::{NewPbx, Pbx};
use crate::store::{classify, db_error, DbFailure};

type PbxRow = (i64, String, String, i64, String);

fn pbx_from_row(r: PbxRow) -> Pbx {
    Pbx {
        id: r.0,
        name: r.1,
        host: r.2,
        ssh_port: u16::try_from(r.3).unwrap_or(22),
        ssh_user: r.4,
    }
}

impl Workspace {
    pub async fn pbx_add(&self, actor: &Actor, input: &NewPbx) -> Result<Pbx> {
        actor.require_write()?;
        actor.require_msp_write()?;
        let name = PbxName::parse(input.name.trim())?;
        let host = Host::parse(&input.host)?;
        let port = input.ssh_port.unwrap_or(22);
        if port == 0 {
            return Err(ValidationError::new("port", "0", "a TCP port from 1 to 65535").into());
        }
        let user = LoginName::parse("user", input.ssh_user.as_deref().unwrap_or("root").trim())?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pbxes (name, host, ssh_port, ssh_user, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(name.as_str())
        .bind(host.as_str())
        .bind(i64::from(port))
        .bind(user.as_str())
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => {
                Error::Conflict(format!("a PBX named \"{}\" already exists", name.as_str()))
            }
            _ => db_error(e),
        })?;
        let pbx = Pbx {
            id,
            name: name.as_str().to_owned(),
            host: host.as_str().to_owned(),
            ssh_port: port,
            ssh_user: user.as_str().to_owned(),
        };
        let change = Change {
            action: "pbx.add",
            entity_type: "pbx",
            entity_id: id.to_string(),
            tenant_id: None,
        };
        record::<Pbx, Pbx>(&mut w, actor, now, change, None, Some(&pbx)).await?;
        w.commit().await?;
        Ok(pbx)
    }

    pub async fn pbx_list(&self, actor: &Actor) -> Result<Vec<Pbx>> {
        let rows: Vec<PbxRow> = if actor.sees_all_tenants() {
            sqlx::query_as("SELECT id, name, host, ssh_port, ssh_user FROM pbxes ORDER BY name")
                .fetch_all(self.store.pool())
                .await
        } else {
            // A tenant_admin sees only the PBXs its tenants are on.
            let ids = actor.tenant_ids();
            let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let sql = format!(
                "SELECT DISTINCT p.id, p.name, p.host, p.ssh_port, p.ssh_user FROM pbxes p \
                 JOIN tenants t ON t.pbx_id = p.id WHERE t.id IN ({}) ORDER BY p.name",
                marks.join(", ")
            );
            let mut q = sqlx::query_as(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(self.store.pool()).await
        }
        .map_err(db_error)?;
        Ok(rows.into_iter().map(pbx_from_row).collect())
    }

    pub(crate) async fn pbx_by_name(&self, name: &str) -> Result<Pbx> {
        let row: Option<PbxRow> =
            sqlx::query_as("SELECT id, name, host, ssh_port, ssh_user FROM pbxes WHERE name = $1")
                .bind(name.trim())
                .fetch_optional(self.store.pool())
                .await
                .map_err(db_error)?;
        row.map(pbx_from_row)
            .ok_or_else(|| Error::not_found("PBX", name))
    }
}
