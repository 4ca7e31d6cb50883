//! The desktop shell. Every command is a one-line call into `pbxdesk_core::Workspace`; the
//! TypeScript contract (ui/src/bindings.ts) is generated from these signatures by
//! tauri-specta, and a test fails when the committed file is stale.

use pbxdesk_core::domain::{TenantStatus, UserStatus};
use pbxdesk_core::model::{
    Device, NewDevice, NewPbx, NewTenant, NewUser, Pbx, RevealedDevice, Tenant, TenantPatch, User,
    UserPatch, UserSummary,
};
use pbxdesk_core::service::{KeySource, Location, OpenOptions};
use pbxdesk_core::{paths, Actor, ErrorCode, Workspace};
use serde::Serialize;
use specta_typescript::Typescript;
use std::path::PathBuf;
use tauri::{Manager, Runtime, State};
use tauri_specta::{collect_commands, Builder};

/// The one error shape the UI sees: a code to branch on, a message for the person, and the
/// input field it concerns (for showing the error next to that field).
#[derive(Debug, Serialize, specta::Type)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl From<pbxdesk_core::Error> for ApiError {
    fn from(e: pbxdesk_core::Error) -> Self {
        let field = match &e {
            pbxdesk_core::Error::Validation(v) => Some(v.field.clone()),
            _ => None,
        };
        ApiError {
            code: e.code(),
            message: e.to_string(),
            field,
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub struct AppState {
    ws: Workspace,
    actor: Actor,
    workspace_label: String,
}

#[derive(Debug, Serialize, specta::Type)]
pub struct AppInfo {
    pub workspace: String,
    pub operator: String,
    pub version: String,
}

#[tauri::command]
#[specta::specta]
async fn app_info(s: State<'_, AppState>) -> ApiResult<AppInfo> {
    Ok(AppInfo {
        workspace: s.workspace_label.clone(),
        operator: s.actor.name().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

#[tauri::command]
#[specta::specta]
async fn pbx_list(s: State<'_, AppState>) -> ApiResult<Vec<Pbx>> {
    Ok(s.ws.pbx_list(&s.actor).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_add(s: State<'_, AppState>, input: NewPbx) -> ApiResult<Pbx> {
    Ok(s.ws.pbx_add(&s.actor, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_list(s: State<'_, AppState>) -> ApiResult<Vec<Tenant>> {
    Ok(s.ws.tenant_list(&s.actor).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_create(s: State<'_, AppState>, input: NewTenant) -> ApiResult<Tenant> {
    Ok(s.ws.tenant_create(&s.actor, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_update(
    s: State<'_, AppState>,
    slug: String,
    patch: TenantPatch,
) -> ApiResult<Tenant> {
    Ok(s.ws.tenant_update(&s.actor, &slug, &patch).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_set_status(
    s: State<'_, AppState>,
    slug: String,
    status: TenantStatus,
) -> ApiResult<Tenant> {
    Ok(s.ws.tenant_set_status(&s.actor, &slug, status).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_list(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<UserSummary>> {
    Ok(s.ws.user_list(&s.actor, &tenant).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_show(s: State<'_, AppState>, id: i32) -> ApiResult<User> {
    Ok(s.ws.user_show(&s.actor, i64::from(id)).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_create(s: State<'_, AppState>, input: NewUser) -> ApiResult<User> {
    Ok(s.ws.user_create(&s.actor, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_update(s: State<'_, AppState>, id: i32, patch: UserPatch) -> ApiResult<User> {
    Ok(s.ws.user_update(&s.actor, i64::from(id), &patch).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_set_status(s: State<'_, AppState>, id: i32, status: UserStatus) -> ApiResult<User> {
    Ok(s.ws
        .user_set_status(&s.actor, i64::from(id), status)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn user_delete(s: State<'_, AppState>, id: i32) -> ApiResult<User> {
    Ok(s.ws.user_delete(&s.actor, i64::from(id)).await?)
}

#[tauri::command]
#[specta::specta]
async fn device_add(s: State<'_, AppState>, user_id: i32, input: NewDevice) -> ApiResult<Device> {
    Ok(s.ws
        .device_add(&s.actor, i64::from(user_id), &input)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn device_remove(s: State<'_, AppState>, id: i32) -> ApiResult<Device> {
    Ok(s.ws.device_remove(&s.actor, i64::from(id)).await?)
}

#[tauri::command]
#[specta::specta]
async fn device_reveal(s: State<'_, AppState>, id: i32) -> ApiResult<RevealedDevice> {
    Ok(s.ws.device_reveal(&s.actor, i64::from(id)).await?)
}

/// The command list, generic over the runtime so tests and the app share it.
pub fn specta_builder<R: Runtime>() -> Builder<R> {
    Builder::<R>::new().commands(collect_commands![
        app_info,
        pbx_list,
        pbx_add,
        tenant_list,
        tenant_create,
        tenant_update,
        tenant_set_status,
        user_list,
        user_show,
        user_create,
        user_update,
        user_set_status,
        user_delete,
        device_add,
        device_remove,
        device_reveal,
    ])
}

/// The TypeScript exporter settings.
pub fn typescript() -> Typescript {
    Typescript::default().header(
        "// Generated by tauri-specta from src-tauri/src/lib.rs; do not edit.\n// @ts-nocheck",
    )
}

/// Which workspace the app opens: PBXDESK_WORKSPACE or the OS data directory's default.
/// `--demo` (or PBXDESK_DEMO=1) fills an empty workspace with demo data.
struct Startup {
    workspace: PathBuf,
    demo: bool,
}

impl Startup {
    fn from_env() -> Startup {
        let workspace = std::env::var_os("PBXDESK_WORKSPACE")
            .map(PathBuf::from)
            .unwrap_or_else(paths::default_workspace);
        let demo = std::env::args().any(|a| a == "--demo")
            || std::env::var("PBXDESK_DEMO").is_ok_and(|v| v == "1");
        Startup { workspace, demo }
    }

    async fn open(self) -> pbxdesk_core::Result<AppState> {
        let key = KeySource::File(paths::key_file_for(&self.workspace));
        let ws = Workspace::open(OpenOptions::new(
            Location::Sqlite(self.workspace.clone()),
            key,
        ))
        .await?;
        let actor = ws.local_owner()?;
        if self.demo {
            pbxdesk_core::demo::seed(&ws, &actor).await?;
        }
        Ok(AppState {
            ws,
            actor,
            workspace_label: self.workspace.display().to_string(),
        })
    }
}

pub fn run() {
    let builder = specta_builder::<tauri::Wry>();
    let result = tauri::Builder::default()
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            let state = tauri::async_runtime::block_on(Startup::from_env().open())
                .map_err(|e| format!("cannot open the workspace: {e}"))?;
            app.manage(state);
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("pbxdesk: {e}");
        std::process::exit(1);
    }
}
