use super::audit::{record, Change};
use super::tenant::TenantKey;
use super::{retry_busy, Actor, Workspace};
use crate::domain::{
    codecs_to_string, parse_codecs, Codec, DisplayName, Extension, SipUsername, Transport,
    UserStatus,
};
use crate::error::{Error, Result};
use crate::model::{Device, NewDevice, RevealedDevice};
use crate::secret::{generate_sip_password, Purpose};
use crate::store::devices::{self, DeviceRow};
use crate::store::{classify, db_error, DbFailure, WriteTx};
use secrecy::ExposeSecret;
use sqlx::AnyConnection;

const DEFAULT_CODECS: &[Codec] = &[Codec::Opus, Codec::G722, Codec::Ulaw, Codec::Alaw];

impl Workspace {
    pub(crate) async fn devices_of(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
    ) -> Result<Vec<Device>> {
        devices::of_user(conn, user_id)
            .await?
            .into_iter()
            .map(DeviceRow::into_device)
            .collect()
    }

    /// Inserts a device with a fresh SIP password. Its username is the one asked for, or
    /// "<tenant>-<extension>" (then "-2", "-3", … for further devices): tenant slugs are unique,
    /// so generated names never collide across tenants of a PBX.
    pub(crate) async fn insert_device(
        &self,
        w: &mut WriteTx<'_>,
        user_id: i64,
        tenant: &TenantKey,
        extension: Extension,
        input: &NewDevice,
        now: i64,
    ) -> Result<Device> {
        let label = DisplayName::parse("label", input.label.as_deref().unwrap_or("Phone"))?;
        let transport = input.transport.unwrap_or(Transport::Udp);
        let codecs = match input.codecs.as_deref() {
            Some(c) => parse_codecs(c)?,
            None => DEFAULT_CODECS.to_vec(),
        };
        let pbx_id: i64 = sqlx::query_scalar("SELECT pbx_id FROM tenants WHERE id = $1")
            .bind(tenant.id)
            .fetch_one(&mut *w.tx)
            .await
            .map_err(db_error)?;
        let username = match input
            .sip_username
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(u) => SipUsername::parse(u)?,
            None => {
                let base = format!("{}-{}", tenant.slug, extension);
                let taken: Vec<String> = sqlx::query_scalar(
                    "SELECT sip_username FROM devices WHERE pbx_id = $1 AND (sip_username = $2 OR sip_username LIKE $3)",
                )
                .bind(pbx_id)
                .bind(&base)
                .bind(format!("{base}-%"))
                .fetch_all(&mut *w.tx)
                .await
                .map_err(db_error)?;
                let name = (1..)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}-{n}")
                        }
                    })
                    .find(|c| !taken.contains(c))
                    .unwrap_or(base);
                SipUsername::parse(&name)?
            }
        };
        let password = self.cipher.seal(
            Purpose::SipPassword,
            generate_sip_password().expose_secret(),
        )?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO devices (user_id, pbx_id, label, sip_username, sip_password, transport, codecs, nat, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(user_id)
        .bind(pbx_id)
        .bind(label.as_str())
        .bind(username.as_str())
        .bind(password)
        .bind(transport.as_str())
        .bind(codecs_to_string(&codecs))
        .bind(input.nat.unwrap_or(true))
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| match classify(&e) {
            DbFailure::UniqueViolation(_) => Error::Conflict(format!(
                "SIP username \"{username}\" is already used on this PBX (usernames are unique across all its tenants)"
            )),
            _ => db_error(e),
        })?;
        self.bind_row_secrets(&mut w.tx, "devices", id).await?;
        Ok(Device {
            id,
            user_id,
            label: label.as_str().to_owned(),
            sip_username: username.as_str().to_owned(),
            transport,
            codecs,
            nat: input.nat.unwrap_or(true),
        })
    }

    pub async fn device_add(
        &self,
        actor: &Actor,
        user_id: i64,
        input: &NewDevice,
    ) -> Result<Device> {
        actor.require_write()?;
        let user = self.user_show(actor, user_id).await?;
        if user.status == UserStatus::Deleted {
            return Err(Error::Conflict(format!("user {user_id} is deleted")));
        }
        let tenant = self.tenant_key(actor, &user.tenant).await?;
        let ext = Extension::from_number(i64::from(user.extension)).map_err(Error::from)?;
        retry_busy(|| async {
            let now = self.now();
            let mut w = self.store.begin_write().await?;
            let device = self
                .insert_device(&mut w, user_id, &tenant, ext, input, now)
                .await?;
            let change = Change {
                action: "device.add",
                entity_type: "device",
                entity_id: device.sip_username.clone(),
                tenant_id: Some(tenant.id),
            };
            record::<Device, Device>(&mut w, actor, now, change, None, Some(&device)).await?;
            w.commit().await?;
            Ok(device)
        })
        .await
    }

    pub async fn device_list(&self, actor: &Actor, user_id: i64) -> Result<Vec<Device>> {
        Ok(self.user_show(actor, user_id).await?.devices)
    }

    /// Every device of a tenant's users (deleted users' excluded), by user: what the users list
    /// needs to show each device's live status.
    pub async fn device_list_of_tenant(&self, actor: &Actor, tenant: &str) -> Result<Vec<Device>> {
        let tenant = self.tenant_key(actor, tenant).await?;
        devices::of_tenant(self.store.pool(), tenant.id)
            .await?
            .into_iter()
            .map(DeviceRow::into_device)
            .collect()
    }

    /// Finds a device by SIP username or, failing that, by id.
    pub async fn device_resolve(&self, actor: &Actor, reference: &str) -> Result<i64> {
        let r = reference.trim();
        // A SIP username may be all digits ("100"): a name match wins over an id.
        let mut ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM devices WHERE sip_username = $1")
                .bind(r)
                .fetch_all(self.store.pool())
                .await
                .map_err(db_error)?;
        if ids.is_empty() {
            if let Ok(id) = r.parse::<i64>() {
                ids.push(id);
            }
        }
        match ids.as_slice() {
            [] => Err(Error::not_found("device", r)),
            [id] => {
                self.device_get(actor, *id).await?;
                Ok(*id)
            }
            _ => Err(Error::Conflict(format!(
                "SIP username \"{r}\" exists on several PBXs; give the device id (see `device list`)"
            ))),
        }
    }

    /// A device and the id of its tenant, after the access check.
    async fn device_get(&self, actor: &Actor, id: i64) -> Result<(Device, i64)> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT t.id, t.slug FROM devices d JOIN users u ON u.id = d.user_id JOIN tenants t ON t.id = u.tenant_id \
             WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(db_error)?;
        let (tenant_id, _slug) = row.ok_or_else(|| Error::not_found("device", id))?;
        actor.require_tenant(tenant_id, Error::not_found("device", id))?;
        let device = devices::by_id(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("device", id))?
            .into_device()?;
        Ok((device, tenant_id))
    }

    pub async fn device_remove(&self, actor: &Actor, id: i64) -> Result<Device> {
        actor.require_write()?;
        let (device, tenant_id) = self.device_get(actor, id).await?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM devices WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("device", id));
        }
        let change = Change {
            action: "device.remove",
            entity_type: "device",
            entity_id: device.sip_username.clone(),
            tenant_id: Some(tenant_id),
        };
        record::<Device, Device>(&mut w, actor, now, change, Some(&device), None).await?;
        w.commit().await?;
        Ok(device)
    }

    /// The device's SIP password in clear, for provisioning a phone by hand. Audited.
    pub async fn device_reveal(&self, actor: &Actor, id: i64) -> Result<RevealedDevice> {
        actor.require_reveal()?;
        let (device, tenant_id) = self.device_get(actor, id).await?;
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT sip_password FROM devices WHERE id = $1")
            .bind(id)
            .fetch_one(self.store.pool())
            .await
            .map_err(db_error)?;
        let password = self.unseal("devices", "sip_password", id, &sealed)?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        let change = Change {
            action: "device.reveal",
            entity_type: "device",
            entity_id: device.sip_username.clone(),
            tenant_id: Some(tenant_id),
        };
        record::<Device, Device>(&mut w, actor, now, change, None, None).await?;
        w.commit().await?;
        Ok(RevealedDevice {
            device,
            sip_password: password.expose_secret().to_owned(),
        })
    }
}
