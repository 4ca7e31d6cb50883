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
use crate::store::WriteTx;
use secrecy::ExposeSecret;
use sqlx::AnyConnection;

const DEFAULT_CODECS: &[Codec] = &[Codec::Opus, Codec::G722, Codec::Ulaw, Codec::Alaw];

/// How many devices one extension's automatic SIP usernames reach (`base`, `base-2`, …).
const USERNAME_CANDIDATES: usize = USERNAME_BATCHES[0] + USERNAME_BATCHES[1] + USERNAME_BATCHES[2];
/// How many of those are asked for at a time.
const USERNAME_BATCHES: [usize; 3] = [1, 7, 92];

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
        let pbx_id = devices::pbx_of_tenant(&mut *w.tx, tenant.id).await?;
        let username = match input
            .sip_username
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(u) => SipUsername::parse(u)?,
            None => {
                let base = format!("{}-{}", tenant.slug, extension);
                // `base`, then `base-2`, `base-3`, …: a user's further phones.
                let candidates: Vec<String> = (1..=USERNAME_CANDIDATES)
                    .map(|n| {
                        if n == 1 {
                            base.clone()
                        } else {
                            format!("{base}-{n}")
                        }
                    })
                    .collect();
                // Asked a few at a time, the first alone: nearly every extension has one phone,
                // and a long IN list was seen to cost PostgreSQL 25 ms to plan and run.
                let mut name = None;
                let mut asked = 0;
                for batch in USERNAME_BATCHES {
                    let ask = &candidates[asked..asked + batch];
                    asked += batch;
                    let taken = devices::usernames_taken(&mut *w.tx, pbx_id, ask).await?;
                    name = ask.iter().find(|c| !taken.contains(c)).cloned();
                    if name.is_some() {
                        break;
                    }
                }
                let name = name.ok_or_else(|| {
                        Error::Conflict(format!(
                            "{base} already has {USERNAME_CANDIDATES} devices; give the new one a SIP username"
                        ))
                    })?;
                SipUsername::parse(&name)?
            }
        };
        let password = self.cipher.seal(
            Purpose::SipPassword,
            generate_sip_password().expose_secret(),
        )?;
        let id = devices::insert(
            &mut *w.tx,
            devices::NewDeviceRow {
                user_id,
                pbx_id,
                label: label.as_str(),
                sip_username: username.as_str(),
                sip_password: password,
                transport: transport.as_str(),
                codecs: codecs_to_string(&codecs),
                nat: input.nat.unwrap_or(true),
                now,
            },
        )
        .await?;
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
        let mut ids = devices::ids_by_username(self.store.pool(), r).await?;
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
        let tenant_id = devices::tenant_of(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("device", id))?;
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
        if !devices::delete(&mut *w.tx, id).await? {
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

    /// Gives a device a new random SIP password (a phone's leaked or forgotten one) and shows
    /// it once. The PBX gets it at the next apply; until then the phone keeps the old one.
    /// Audited, never with the password.
    pub async fn device_new_password(&self, actor: &Actor, id: i64) -> Result<RevealedDevice> {
        actor.require_write()?;
        actor.require_reveal()?;
        let (device, tenant_id) = self.device_get(actor, id).await?;
        let password = generate_sip_password();
        let sealed = self.seal_for_row("devices", "sip_password", id, password.expose_secret())?;
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        devices::set_password(&mut *w.tx, id, sealed, now).await?;
        let change = Change {
            action: "device.new_password",
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

    /// The device's SIP password in clear, for provisioning a phone by hand. Audited.
    pub async fn device_reveal(&self, actor: &Actor, id: i64) -> Result<RevealedDevice> {
        actor.require_reveal()?;
        let (device, tenant_id) = self.device_get(actor, id).await?;
        let sealed = devices::sealed_password(self.store.pool(), id).await?;
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
