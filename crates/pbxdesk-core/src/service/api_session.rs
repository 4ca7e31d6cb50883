//! The HTTP API's sessions. An operator's login (argon2id, as everywhere) gives a short-lived
//! access token and a refresh token that renews it once; the store keeps only their SHA-256,
//! so every `pbxdesk serve` on the same workspace takes them. Each request's token is looked up
//! and its operator read again: a role changed or an operator disabled counts at the next call.

use super::{Actor, Workspace};
use crate::error::{Error, Result};
use crate::secret::{api_token_hash, generate_api_token, AUTOMATION_TOKEN_PREFIX};
use crate::store::api_sessions::{self, SessionRow};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// How long an access token is good for.
pub const ACCESS_TTL_MS: i64 = 15 * 60 * 1000;
/// How long a refresh token is good for (used once: each refresh gives a new pair).
pub const REFRESH_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a login or a refresh gives, shown once. The tokens are secrets: never logged.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokens {
    /// The bearer token for `Authorization: Bearer …`.
    pub access_token: String,
    /// Gives a new pair at `POST /api/v1/auth/refresh`, once.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is good for.
    pub expires_in: u64,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

fn unknown_token() -> Error {
    Error::Unauthenticated("the token is unknown or has expired: log in again".into())
}

impl Workspace {
    /// Logs an operator in for the API: its password checked (argon2id, one at a time on the
    /// blocking pool), then a new access and refresh token.
    pub async fn api_login(&self, username: &str, password: &SecretString) -> Result<ApiTokens> {
        self.login(username, password).await?;
        let id = api_sessions::operator_id(self.store.pool(), username).await?;
        self.api_tokens_for(id).await
    }

    /// Who a bearer token stands for: the operator of an access token, or an automation token
    /// (`pbxt_…`, see `api_token`), its calls recorded as coming from `via` ("api ADDRESS").
    pub async fn api_actor(&self, token: &str, via: &str) -> Result<Actor> {
        if token.starts_with(AUTOMATION_TOKEN_PREFIX) {
            return self.api_token_actor(token, via).await;
        }
        let row = self.api_session(token, "access").await?;
        Ok(self
            .operator_actor(row.operator_id, &row.username, &row.role)
            .await?
            .from_source(via))
    }

    /// A new pair for a refresh token, which is used up.
    pub async fn api_refresh(&self, refresh_token: &str) -> Result<ApiTokens> {
        let row = self.api_session(refresh_token, "refresh").await?;
        let mut w = self.store.begin_write().await?;
        let gone = api_sessions::end(&mut *w.tx, &api_token_hash(refresh_token), None).await?;
        w.commit().await?;
        // Two refreshes at once: only the one that removed it goes on.
        if !gone {
            return Err(unknown_token());
        }
        self.api_tokens_for(row.operator_id).await
    }

    /// Ends an access token (a logout).
    pub async fn api_logout(&self, access_token: &str) -> Result<()> {
        let mut w = self.store.begin_write().await?;
        api_sessions::end(&mut *w.tx, &api_token_hash(access_token), Some("access")).await?;
        w.commit().await
    }

    async fn api_session(&self, token: &str, kind: &str) -> Result<SessionRow> {
        let row =
            api_sessions::live(self.store.pool(), &api_token_hash(token), kind, self.now()).await?;
        match row {
            Some(r) if r.disabled == 0 => Ok(r),
            Some(r) => Err(Error::Unauthenticated(format!(
                "operator \"{}\" is disabled",
                r.username
            ))),
            None => Err(unknown_token()),
        }
    }

    async fn api_tokens_for(&self, operator_id: i64) -> Result<ApiTokens> {
        let (access, refresh) = (generate_api_token(), generate_api_token());
        let now = self.now();
        let mut w = self.store.begin_write().await?;
        // Expired sessions go as new ones come: the table holds only live ones and a few more.
        let sessions = [
            (
                api_token_hash(access.expose_secret()),
                "access",
                now + ACCESS_TTL_MS,
            ),
            (
                api_token_hash(refresh.expose_secret()),
                "refresh",
                now + REFRESH_TTL_MS,
            ),
        ];
        api_sessions::add(&mut w.tx, operator_id, &sessions, now).await?;
        w.commit().await?;
        Ok(ApiTokens {
            access_token: access.expose_secret().to_owned(),
            refresh_token: refresh.expose_secret().to_owned(),
            token_type: "Bearer".into(),
            expires_in: u64::try_from(ACCESS_TTL_MS / 1000).unwrap_or(0),
        })
    }
}
