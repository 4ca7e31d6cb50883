//! Who is acting, and what they may do. Every service method asks here first.
//!
//! | role          | PBXs, tenants | users, devices        | reveal secrets | operators | audit        |
//! |---------------|---------------|-----------------------|----------------|-----------|--------------|
//! | msp_admin     | read, write   | read, write           | yes            | manage    | all          |
//! | technician    | read, write   | read, write           | yes            | -         | all          |
//! | tenant_admin  | read own      | read, write own       | own            | -         | own tenants  |
//! | auditor       | read          | read                  | no             | read      | all          |

use super::Workspace;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::secret::verify_password;
use crate::store::{operators, Backend};
use secrecy::SecretString;

/// The operator on whose behalf a service call runs. Only the workspace makes one (by login,
/// or as the owner of a laptop's own workspace), so it cannot be forged by a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    role: Role,
    /// For tenant_admin: the tenants it may act on.
    tenant_ids: Vec<i64>,
    /// Where its calls come from, for the audit ("api 192.0.2.7", "cli", "app", "phone").
    via: Option<String>,
}

impl Actor {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Where this actor's calls come from, as the audit records it.
    pub fn via(&self) -> Option<&str> {
        self.via.as_deref()
    }

    /// The same actor, its calls recorded as coming from `via` (a front end says which it is;
    /// the rights are unchanged). Control characters are dropped and it is cut at 80.
    pub fn from_source(mut self, via: &str) -> Actor {
        self.via = Some(via.chars().filter(|c| !c.is_control()).take(80).collect());
        self
    }

    /// The actor recorded for the first operator of a workspace, added without a login.
    pub(crate) fn bootstrap() -> Self {
        Actor {
            name: "bootstrap".into(),
            role: Role::MspAdmin,
            tenant_ids: Vec::new(),
            via: None,
        }
    }

    /// The actor of an automation token: `token:NAME` in the audit (an operator's name has no
    /// `:`), with the token's role and tenant.
    pub(crate) fn token(name: &str, role: Role, tenant_ids: Vec<i64>) -> Self {
        Actor {
            name: format!("token:{name}"),
            role,
            tenant_ids,
            via: None,
        }
    }

    /// What an end user's own changes run as (`self_service`): named `user:TENANT/EXT`, a
    /// tenant_admin of their tenant only. Only the `me_*` services make one, each with a patch
    /// of what a user may change; an end user's token never becomes an `Actor` otherwise.
    pub(crate) fn end_user(name: &str, tenant_id: i64) -> Self {
        Actor {
            name: name.to_owned(),
            role: Role::TenantAdmin,
            tenant_ids: vec![tenant_id],
            via: None,
        }
    }

    /// The actor recorded for a change made on a phone (feature codes): `phone:TENANT/EXT`.
    pub(crate) fn phone(tenant: &str, extension: i64) -> Self {
        Actor {
            name: format!("phone:{tenant}/{extension}"),
            role: Role::Auditor,
            tenant_ids: Vec::new(),
            via: Some("phone".into()),
        }
    }

    /// The actor recorded when pbxdesk itself pushes a change kept pending (a voicemail PIN
    /// pushed at a watcher's connect): the change was made, and audited, by its author.
    pub(crate) fn pending_push() -> Self {
        Actor {
            name: "pbxdesk:pending-push".into(),
            role: Role::Auditor,
            tenant_ids: Vec::new(),
            via: None,
        }
    }

    pub(crate) fn tenant_ids(&self) -> &[i64] {
        &self.tenant_ids
    }

    pub(crate) fn require_write(&self) -> Result<()> {
        if self.role == Role::Auditor {
            return Err(self.denied("change anything (auditors have read-only access)"));
        }
        Ok(())
    }

    /// PBXs, tenants: the MSP's own business.
    pub(crate) fn require_msp_write(&self) -> Result<()> {
        self.require_msp("manage PBXs or tenants")
    }

    /// What only the MSP's own roles (msp_admin, technician) may do.
    pub(crate) fn require_msp(&self, what: &str) -> Result<()> {
        match self.role {
            Role::MspAdmin | Role::Technician => Ok(()),
            _ => Err(self.denied(what)),
        }
    }

    pub(crate) fn require_admin(&self) -> Result<()> {
        match self.role {
            Role::MspAdmin => Ok(()),
            _ => Err(self.denied("manage operators")),
        }
    }

    pub(crate) fn sees_all_tenants(&self) -> bool {
        self.role != Role::TenantAdmin
    }

    /// A tenant_admin learns nothing about another tenant, not even that it exists: what it
    /// may not see is answered with `hidden`, the same "not found" a missing one gets.
    pub(crate) fn require_tenant(&self, tenant_id: i64, hidden: Error) -> Result<()> {
        if self.sees_all_tenants() || self.tenant_ids.contains(&tenant_id) {
            Ok(())
        } else {
            Err(hidden)
        }
    }

    pub(crate) fn require_reveal(&self) -> Result<()> {
        if self.role == Role::Auditor {
            return Err(self.denied("reveal secrets"));
        }
        Ok(())
    }

    fn denied(&self, what: &str) -> Error {
        Error::Forbidden(format!(
            "operator \"{}\" ({}) may not {what}",
            self.name, self.role
        ))
    }
}

impl Workspace {
    /// The person at the keyboard of a laptop's own SQLite workspace: its msp_admin, with no
    /// login (the workspace key file guards the secrets). Refused on a team workspace.
    pub fn local_owner(&self) -> Result<Actor> {
        if self.backend() != Backend::Sqlite {
            return Err(Error::Unauthenticated(
                "a team workspace needs a login: give --operator NAME (password on the prompt or \
                 PBXDESK_PASSWORD)"
                    .into(),
            ));
        }
        let user = std::env::var("USER").unwrap_or_else(|_| "owner".into());
        Ok(Actor {
            name: format!("local:{}", crate::error::printable(&user)),
            role: Role::MspAdmin,
            tenant_ids: Vec::new(),
            via: None,
        })
    }

    /// Checks an operator's password (argon2id) and returns the actor.
    pub async fn login(&self, username: &str, password: &SecretString) -> Result<Actor> {
        let row = operators::for_login(self.store.pool(), username).await?;
        let failed = || Error::Unauthenticated("unknown operator or wrong password".into());
        let Some(operators::LoginRow {
            id,
            password_hash: Some(hash),
            role,
            disabled,
        }) = row
        else {
            // Spend the same time as a real check so names cannot be probed by timing.
            verify_slowly(password, DUMMY_HASH.to_owned()).await?;
            return Err(failed());
        };
        if !verify_slowly(password, hash).await? {
            return Err(failed());
        }
        if disabled != 0 {
            return Err(Error::Unauthenticated(format!(
                "operator \"{username}\" is disabled"
            )));
        }
        self.operator_actor(id, username, &role).await
    }

    /// The actor of operator `id` as the store says now (its role and tenants read again).
    pub(crate) async fn operator_actor(
        &self,
        id: i64,
        username: &str,
        role: &str,
    ) -> Result<Actor> {
        let role = Role::parse(role)
            .map_err(|_| Error::Store("operator role on record is unknown".into()))?;
        let tenant_ids = operators::tenant_ids(self.store.pool(), id).await?;
        Ok(Actor {
            name: username.to_owned(),
            role,
            tenant_ids,
            via: None,
        })
    }
}

/// argon2id is meant to be slow (~20 ms of a core, and 19 MiB): every check runs on one
/// thread of its own, one at a time, at the lowest CPU priority (nice 19), so a flood of logins
/// queues here and takes only what the other requests of the app, the CLI or the API leave.
/// Past `VERIFY_QUEUE` checks waiting, a login is answered "busy" at once instead of queueing.
const VERIFY_QUEUE: usize = 256;

type VerifyJob = (SecretString, String, tokio::sync::oneshot::Sender<bool>);

fn verifier() -> Option<&'static std::sync::mpsc::SyncSender<VerifyJob>> {
    static VERIFIER: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<VerifyJob>>> =
        std::sync::OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<VerifyJob>(VERIFY_QUEUE);
            std::thread::Builder::new()
                .name("argon2-verify".into())
                .spawn(move || {
                    lower_this_threads_priority();
                    for (password, hash, answer) in rx {
                        let _ = answer.send(verify_password(&password, &hash));
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// nice 19 for the calling thread only (Linux schedules threads by their own nice value).
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(me), 19) {
            tracing::debug!(error = %e, "the argon2 thread keeps its priority");
        }
    }
}

pub(crate) async fn verify_slowly(password: &SecretString, hash: String) -> Result<bool> {
    let (answer, verdict) = tokio::sync::oneshot::channel();
    let Some(queue) = verifier() else {
        return Err(Error::Store("the password checker could not start".into()));
    };
    match queue.try_send((password.clone(), hash, answer)) {
        Ok(()) => Ok(verdict.await.unwrap_or(false)),
        Err(std::sync::mpsc::TrySendError::Full(_)) => Err(Error::Overloaded(
            "too many logins at once: try again in a moment".into(),
        )),
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
            Err(Error::Store("the password checker stopped".into()))
        }
    }
}

/// A valid argon2id hash of a random string, for the unknown-user path of `login`.
pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2k4mq0k4Y1lqfD1l0yL6o3aJ0T2a9bqz0c3n6m1n0wA";

#[cfg(test)]
mod tests {
    use super::DUMMY_HASH;
    use argon2::password_hash::PasswordHash;

    /// The unknown-user path only costs as much as a real check if the dummy hash parses
    /// (otherwise verification returns at once and operator names could be probed by timing).
    #[test]
    fn dummy_hash_is_a_real_argon2id_hash() {
        let h = PasswordHash::new(DUMMY_HASH).expect("parses");
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(h.hash.is_some());
    }
}
