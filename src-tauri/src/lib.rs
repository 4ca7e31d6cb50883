//! The desktop shell. Every command is a one-line call into `pbxdesk_core::Workspace`; the
//! TypeScript contract (ui/src/bindings.ts) is generated from these signatures by
//! tauri-specta, and a test fails when the committed file is stale.

mod local_api;
pub mod settings;
pub mod update;

use local_api::{LocalApi, LocalApiSetting, LocalServer};
use pbxdesk_core::domain::{TenantStatus, UserStatus};
use pbxdesk_core::model::{
    AuditFilter, AuditPage, CheckLine, Device, Did, DidPatch, ExportKind, ExportedFile, ImportKey,
    ImportProgress, ImportReport, NewDevice, NewDid, NewPbx, NewPolicy, NewRingGroup, NewTenant,
    NewTrunk, NewUser, Pbx, PbxPatch, Policy, PolicyPatch, RevealedDevice, RingGroup,
    RingGroupPatch, Tenant, TenantPatch, Trunk, TrunkPatch, User, UserPatch, UserSummary,
};
use pbxdesk_core::service::{
    ApplyOptions, ApplyRecord, ApplyReport, ApplySource, ApplyStep, FleetLine, FleetProgress,
    FleetReport, Live, Location, OpenOptions, PbxDiff, Progress,
};
use pbxdesk_core::FieldProblem;
use pbxdesk_core::{Actor, ErrorCode, Workspace};
use pbxdesk_render::Trace;
use secrecy::SecretString;
use serde::Serialize;
use specta_typescript::Typescript;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tauri::ipc::Channel;
use tauri::{Manager, Runtime, State};
use tauri_specta::{collect_commands, Builder};
use tokio::sync::{oneshot, RwLock};

/// The one error shape the UI sees: a code to branch on, a message for the person, and the
/// input field it concerns (for showing the error next to that field).
#[derive(Debug, Serialize, specta::Type)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Why an apply was refused (code `refused`): the app offers what fixes it.
    pub refusal: Option<pbxdesk_core::Refusal>,
    /// Every input field that is wrong (code `validation`), each with what is wrong with it,
    /// worded for showing next to that field.
    pub fields: Vec<FieldProblem>,
}

impl From<pbxdesk_core::Error> for ApiError {
    fn from(e: pbxdesk_core::Error) -> Self {
        let field = e.fields().first().map(|v| v.field.clone());
        let refusal = match &e {
            pbxdesk_core::Error::Refused(r) => Some(r.clone()),
            _ => None,
        };
        let fields = e.field_problems();
        ApiError {
            code: e.code(),
            message: e.to_string(),
            field,
            refusal,
            fields,
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The shortest time between two live updates of one view: a change after a quiet spell goes at
/// once; one within this of the last waits for the rest of it (the bar from an AMI event to the
/// window is 100 ms).
const LIVE_EVERY: Duration = Duration::from_millis(50);

pub struct AppState {
    ws: Workspace,
    /// The logged-in operator: the local owner on a laptop's own workspace, nobody until a
    /// login on a team workspace.
    actor: RwLock<Option<Actor>>,
    workspace_label: String,
    team: bool,
    /// The live views open in the window, by id: dropping one's sender ends it.
    /// A view that ends by itself (the window stopped taking its updates) removes itself.
    views: Arc<tokio::sync::Mutex<HashMap<u32, oneshot::Sender<()>>>>,
    next_view: AtomicU32,
    /// The API on 127.0.0.1 for local automation (off unless switched on).
    local_api: tokio::sync::Mutex<LocalServer>,
    /// The app's settings file (the local API's switch, the workspace of the next start).
    settings_file: PathBuf,
    /// Signed self-updates (tauri-plugin-updater through the app's handle); set once the app
    /// is built.
    updater: Option<Arc<dyn update::AppUpdater>>,
}

impl AppState {
    fn updater(&self) -> Result<Arc<dyn update::AppUpdater>, update::UpdateError> {
        self.updater
            .clone()
            .ok_or_else(|| update::UpdateError::Setting("the updater is not running".into()))
    }

    async fn current_actor(&self) -> ApiResult<Actor> {
        let actor = self.actor.read().await.clone();
        actor.map(|a| a.from_source("app")).ok_or_else(|| ApiError {
            code: ErrorCode::Unauthenticated,
            message: "log in to the team workspace first".into(),
            field: None,
            refusal: None,
            fields: Vec::new(),
        })
    }

    /// Sends a watched state to the window now and after each change, at most every
    /// `LIVE_EVERY` (a storm of events is one update), until `live_unwatch`, a log-in or
    /// log-out, or the window stops taking them. The view's id.
    async fn open_view(
        &self,
        mut rx: tokio::sync::watch::Receiver<Live>,
        to: Channel<Live>,
    ) -> u32 {
        let id = self.next_view.fetch_add(1, Ordering::Relaxed);
        let (stop_tx, mut stop) = oneshot::channel::<()>();
        self.views.lock().await.insert(id, stop_tx);
        let views = self.views.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                let now = rx.borrow_and_update().clone();
                if to.send(now).is_err() {
                    break;
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { break },
                    _ = &mut stop => break,
                }
                tokio::time::sleep(LIVE_EVERY).await;
            }
            // Gone from the map, so its watcher (held by `rx`) stops with its last view.
            views.lock().await.remove(&id);
        });
        id
    }

    /// Ends every live view (whose state the operator logging out or in may not see).
    async fn close_views(&self) {
        self.views.lock().await.clear();
    }

    async fn info(&self) -> AppInfo {
        AppInfo {
            workspace: self.workspace_label.clone(),
            operator: self
                .actor
                .read()
                .await
                .as_ref()
                .map(|a| a.name().to_owned()),
            team: self.team,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[derive(Debug, Serialize, specta::Type)]
pub struct AppInfo {
    pub workspace: String,
    /// None until an operator has logged in (team workspaces only).
    pub operator: Option<String>,
    /// A shared PostgreSQL workspace.
    pub team: bool,
    pub version: String,
}

#[tauri::command]
#[specta::specta]
async fn app_info(s: State<'_, AppState>) -> ApiResult<AppInfo> {
    Ok(s.info().await)
}

#[tauri::command]
#[specta::specta]
async fn login(s: State<'_, AppState>, username: String, password: String) -> ApiResult<AppInfo> {
    let actor = s.ws.login(&username, &SecretString::from(password)).await?;
    s.close_views().await;
    *s.actor.write().await = Some(actor);
    Ok(s.info().await)
}

#[tauri::command]
#[specta::specta]
async fn logout(s: State<'_, AppState>) -> ApiResult<AppInfo> {
    if s.team {
        s.close_views().await;
        *s.actor.write().await = None;
    }
    Ok(s.info().await)
}

/// Which workspace the app opens at its next start.
#[derive(Debug, Serialize, specta::Type)]
pub struct WorkspaceChoice {
    /// The file chosen in the app; none: the OS data folder's.
    pub chosen: Option<String>,
    /// PBXDESK_WORKSPACE or PBXDESK_DATABASE_URL is set, and wins over the choice.
    pub overridden_by_environment: bool,
}

/// A settings file that could not be written, as the window sees it.
fn not_kept(message: String) -> ApiError {
    ApiError {
        code: ErrorCode::Internal,
        message: format!("cannot keep the setting: {message}"),
        field: None,
        refusal: None,
        fields: Vec::new(),
    }
}

fn workspace_choice(file: &std::path::Path) -> WorkspaceChoice {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    WorkspaceChoice {
        chosen: settings::Settings::load(file)
            .workspace
            .map(|p| p.display().to_string()),
        overridden_by_environment: set("PBXDESK_WORKSPACE") || set("PBXDESK_DATABASE_URL"),
    }
}

#[tauri::command]
#[specta::specta]
async fn workspace_choice_get(s: State<'_, AppState>) -> ApiResult<WorkspaceChoice> {
    s.current_actor().await?;
    Ok(workspace_choice(&s.settings_file))
}

/// Chooses the SQLite workspace file the app opens from its next start (empty: the default);
/// a file that does not exist yet becomes a new workspace there.
#[tauri::command]
#[specta::specta]
async fn workspace_choose(s: State<'_, AppState>, path: String) -> ApiResult<WorkspaceChoice> {
    s.current_actor().await?;
    let chosen = if path.trim().is_empty() {
        None
    } else {
        Some(settings::workspace_path(&path).map_err(pbxdesk_core::Error::from)?)
    };
    settings::Settings::update(&s.settings_file, |st| st.workspace = chosen).map_err(not_kept)?;
    Ok(workspace_choice(&s.settings_file))
}

/// Starts the app again (to open the workspace chosen for the next start).
#[tauri::command]
#[specta::specta]
fn app_restart() {
    // What `AppHandle::restart` does, without a handle (the commands are generic over the
    // runtime); the environment carries the AppImage's path when run from one.
    tauri::process::restart(&tauri::Env::default());
}

/// The update server as set, and what this copy can do with an update.
#[derive(Debug, Serialize, specta::Type)]
pub struct UpdateSetup {
    /// The manifest's address (none: updates are off).
    pub endpoint: Option<String>,
    pub ca_file: Option<String>,
    pub installed: String,
    pub install_kind: update::InstallKind,
}

/// Bytes of an update downloaded so far, and of the whole when the server says (u32, a number
/// for the UI rather than a BigInt: a package is some 100 MB).
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct UpdateProgress {
    pub downloaded: u32,
    pub total: Option<u32>,
}

fn update_setup(file: &std::path::Path) -> UpdateSetup {
    let u = settings::Settings::load(file).updates;
    UpdateSetup {
        endpoint: u.endpoint,
        ca_file: u.ca_file.map(|p| p.display().to_string()),
        installed: env!("CARGO_PKG_VERSION").to_owned(),
        install_kind: update::install_kind(),
    }
}

#[tauri::command]
#[specta::specta]
async fn updates_get(s: State<'_, AppState>) -> ApiResult<UpdateSetup> {
    s.current_actor().await?;
    Ok(update_setup(&s.settings_file))
}

/// Sets the update server (an empty endpoint turns updates off) and, when its certificate is
/// issued by a CA of the MSP's own, that CA's PEM file.
#[tauri::command]
#[specta::specta]
async fn updates_set(
    s: State<'_, AppState>,
    endpoint: String,
    ca_file: String,
) -> ApiResult<UpdateSetup> {
    s.current_actor().await?;
    let updates = update::settings_from(&endpoint, &ca_file)?;
    settings::Settings::update(&s.settings_file, |st| st.updates = updates).map_err(not_kept)?;
    Ok(update_setup(&s.settings_file))
}

/// Asks the update server what it offers; installs nothing.
#[tauri::command]
#[specta::specta]
async fn update_check(s: State<'_, AppState>) -> ApiResult<pbxdesk_core::update::UpdateNews> {
    s.current_actor().await?;
    let src = update::Source::from_settings(&settings::Settings::load(&s.settings_file).updates)?;
    Ok(s.updater()?.check(&src).await?.news)
}

/// Downloads `version` (the one the technician agreed to), checks its signature and installs
/// it; it runs after a restart. Anything else offered meanwhile is refused.
#[tauri::command]
#[specta::specta]
async fn update_install(
    s: State<'_, AppState>,
    version: String,
    progress: Channel<UpdateProgress>,
) -> ApiResult<String> {
    s.current_actor().await?;
    let src = update::Source::from_settings(&settings::Settings::load(&s.settings_file).updates)?;
    let mut last = 0u64;
    let updater = s.updater()?;
    let report = Box::new(move |got: u64, total: Option<u64>| {
        // A line for each 256 KiB is plenty for a progress bar.
        if got - last >= 256 * 1024 || Some(got) == total {
            last = got;
            let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            let _ = progress.send(UpdateProgress {
                downloaded: n(got),
                total: total.map(n),
            });
        }
    });
    let verified = updater.fetch(&src, &version, report).await?;
    let kind = update::install_kind();
    // dpkg or the AppImage swap blocks: off the async runtime.
    let installed = tokio::task::spawn_blocking(move || update::install(verified, kind))
        .await
        .map_err(|e| ApiError {
            code: ErrorCode::Internal,
            message: format!("the install stopped: {e}"),
            field: None,
            refusal: None,
            fields: Vec::new(),
        })??;
    Ok(installed)
}

/// The window painted `screen` ("app": the first screen with the workspace's data; "users":
/// a tenant's users list). For the start-up bench only: when PBXDESK_STARTUP_MARK names a file,
/// a JSON line with the time and the process's resident memory is added to it; otherwise
/// nothing happens.
#[tauri::command]
#[specta::specta]
fn startup_painted(screen: String) {
    startup_mark(&screen);
}

/// Adds a start-up mark (see `startup_painted`); the backend marks the end of its setup too.
fn startup_mark(screen: &str) {
    let Some(file) = std::env::var_os("PBXDESK_STARTUP_MARK") else {
        return;
    };
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let line = serde_json::json!({
        "screen": screen.chars().filter(char::is_ascii_alphanumeric).take(16).collect::<String>(),
        "at_unix_ms": at_ms as u64,
        "pid": std::process::id(),
        "rss_kb": rss_kb,
    });
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The local API's setting and state.
#[tauri::command]
#[specta::specta]
async fn local_api_get(s: State<'_, AppState>) -> ApiResult<LocalApi> {
    s.current_actor().await?;
    Ok(s.local_api.lock().await.view())
}

/// Switches the local API on or off, or moves it to another port; kept for the next start.
#[tauri::command]
#[specta::specta]
async fn local_api_set(s: State<'_, AppState>, setting: LocalApiSetting) -> ApiResult<LocalApi> {
    s.current_actor().await?;
    let mut server = s.local_api.lock().await;
    server.set(&s.ws, setting).map_err(|message| ApiError {
        code: ErrorCode::Validation,
        fields: vec![FieldProblem {
            field: "port".into(),
            message: message.clone(),
        }],
        message,
        field: Some("port".into()),
        refusal: None,
    })?;
    Ok(server.view())
}

#[tauri::command]
#[specta::specta]
async fn pbx_list(s: State<'_, AppState>) -> ApiResult<Vec<Pbx>> {
    Ok(s.ws.pbx_list(&s.current_actor().await?).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_add(s: State<'_, AppState>, input: NewPbx) -> ApiResult<Pbx> {
    Ok(s.ws.pbx_add(&s.current_actor().await?, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_show(s: State<'_, AppState>, name: String) -> ApiResult<Pbx> {
    Ok(s.ws.pbx_show(&s.current_actor().await?, &name).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_remove(s: State<'_, AppState>, name: String) -> ApiResult<Pbx> {
    Ok(s.ws.pbx_remove(&s.current_actor().await?, &name).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_update(s: State<'_, AppState>, name: String, patch: PbxPatch) -> ApiResult<Pbx> {
    Ok(s.ws
        .pbx_update(&s.current_actor().await?, &name, &patch)
        .await?)
}

/// The host key the PBX offers now, to show before pinning it.
#[tauri::command]
#[specta::specta]
async fn pbx_probe_host_key(s: State<'_, AppState>, name: String) -> ApiResult<String> {
    Ok(s.ws
        .pbx_probe_host_key(&s.current_actor().await?, &name)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_trust(s: State<'_, AppState>, name: String, fingerprint: String) -> ApiResult<Pbx> {
    Ok(s.ws
        .pbx_trust(&s.current_actor().await?, &name, &fingerprint)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_check(s: State<'_, AppState>, name: String) -> ApiResult<Vec<CheckLine>> {
    Ok(s.ws.pbx_check(&s.current_actor().await?, &name).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_list(s: State<'_, AppState>) -> ApiResult<Vec<Tenant>> {
    Ok(s.ws.tenant_list(&s.current_actor().await?).await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_create(s: State<'_, AppState>, input: NewTenant) -> ApiResult<Tenant> {
    Ok(s.ws
        .tenant_create(&s.current_actor().await?, &input)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_update(
    s: State<'_, AppState>,
    slug: String,
    patch: TenantPatch,
) -> ApiResult<Tenant> {
    Ok(s.ws
        .tenant_update(&s.current_actor().await?, &slug, &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn tenant_set_status(
    s: State<'_, AppState>,
    slug: String,
    status: TenantStatus,
) -> ApiResult<Tenant> {
    Ok(s.ws
        .tenant_set_status(&s.current_actor().await?, &slug, status)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn user_list(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<UserSummary>> {
    Ok(s.ws.user_list(&s.current_actor().await?, &tenant).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_show(s: State<'_, AppState>, id: i32) -> ApiResult<User> {
    Ok(s.ws
        .user_show(&s.current_actor().await?, i64::from(id))
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn user_create(s: State<'_, AppState>, input: NewUser) -> ApiResult<User> {
    Ok(s.ws.user_create(&s.current_actor().await?, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn user_update(s: State<'_, AppState>, id: i32, patch: UserPatch) -> ApiResult<User> {
    Ok(s.ws
        .user_update(&s.current_actor().await?, i64::from(id), &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn user_set_status(s: State<'_, AppState>, id: i32, status: UserStatus) -> ApiResult<User> {
    Ok(s.ws
        .user_set_status(&s.current_actor().await?, i64::from(id), status)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn user_delete(s: State<'_, AppState>, id: i32) -> ApiResult<User> {
    Ok(s.ws
        .user_delete(&s.current_actor().await?, i64::from(id))
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn device_add(s: State<'_, AppState>, user_id: i32, input: NewDevice) -> ApiResult<Device> {
    Ok(s.ws
        .device_add(&s.current_actor().await?, i64::from(user_id), &input)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn device_remove(s: State<'_, AppState>, id: i32) -> ApiResult<Device> {
    Ok(s.ws
        .device_remove(&s.current_actor().await?, i64::from(id))
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn device_reveal(s: State<'_, AppState>, id: i32) -> ApiResult<RevealedDevice> {
    Ok(s.ws
        .device_reveal(&s.current_actor().await?, i64::from(id))
        .await?)
}

/// A new SIP password for a device, shown once (the PBX gets it at the next apply).
#[tauri::command]
#[specta::specta]
async fn device_new_password(s: State<'_, AppState>, id: i32) -> ApiResult<RevealedDevice> {
    Ok(s.ws
        .device_new_password(&s.current_actor().await?, i64::from(id))
        .await?)
}

/// The command list, generic over the runtime so tests and the app share it.
#[tauri::command]
#[specta::specta]
async fn ring_group_list(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<RingGroup>> {
    Ok(s.ws
        .ring_group_list(&s.current_actor().await?, &tenant)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn ring_group_create(s: State<'_, AppState>, input: NewRingGroup) -> ApiResult<RingGroup> {
    Ok(s.ws
        .ring_group_create(&s.current_actor().await?, &input)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn ring_group_update(
    s: State<'_, AppState>,
    tenant: String,
    extension: u32,
    patch: RingGroupPatch,
) -> ApiResult<RingGroup> {
    Ok(s.ws
        .ring_group_update(&s.current_actor().await?, &tenant, extension, &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn ring_group_delete(
    s: State<'_, AppState>,
    tenant: String,
    extension: u32,
) -> ApiResult<RingGroup> {
    Ok(s.ws
        .ring_group_delete(&s.current_actor().await?, &tenant, extension)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn did_list(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<Did>> {
    Ok(s.ws.did_list(&s.current_actor().await?, &tenant).await?)
}

#[tauri::command]
#[specta::specta]
async fn did_add(s: State<'_, AppState>, input: NewDid) -> ApiResult<Did> {
    Ok(s.ws.did_add(&s.current_actor().await?, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn did_update(s: State<'_, AppState>, number: String, patch: DidPatch) -> ApiResult<Did> {
    Ok(s.ws
        .did_update(&s.current_actor().await?, &number, &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn did_remove(s: State<'_, AppState>, number: String) -> ApiResult<Did> {
    Ok(s.ws.did_remove(&s.current_actor().await?, &number).await?)
}

#[tauri::command]
#[specta::specta]
async fn trunk_list(s: State<'_, AppState>, pbx: String) -> ApiResult<Vec<Trunk>> {
    Ok(s.ws
        .trunk_list(&s.current_actor().await?, Some(&pbx))
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn trunk_add(s: State<'_, AppState>, input: NewTrunk) -> ApiResult<Trunk> {
    Ok(s.ws.trunk_add(&s.current_actor().await?, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn trunk_update(
    s: State<'_, AppState>,
    pbx: String,
    name: String,
    patch: TrunkPatch,
) -> ApiResult<Trunk> {
    Ok(s.ws
        .trunk_update(&s.current_actor().await?, &pbx, &name, &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn trunk_remove(s: State<'_, AppState>, pbx: String, name: String) -> ApiResult<Trunk> {
    Ok(s.ws
        .trunk_remove(&s.current_actor().await?, &pbx, &name)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn policy_list(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<Policy>> {
    Ok(s.ws.policy_list(&s.current_actor().await?, &tenant).await?)
}

#[tauri::command]
#[specta::specta]
async fn policy_add(s: State<'_, AppState>, input: NewPolicy) -> ApiResult<Policy> {
    Ok(s.ws.policy_add(&s.current_actor().await?, &input).await?)
}

#[tauri::command]
#[specta::specta]
async fn policy_update(
    s: State<'_, AppState>,
    tenant: String,
    name: String,
    patch: PolicyPatch,
) -> ApiResult<Policy> {
    Ok(s.ws
        .policy_update(&s.current_actor().await?, &tenant, &name, &patch)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn policy_remove(s: State<'_, AppState>, tenant: String, name: String) -> ApiResult<Policy> {
    Ok(s.ws
        .policy_remove(&s.current_actor().await?, &tenant, &name)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_diff(s: State<'_, AppState>, name: String) -> ApiResult<PbxDiff> {
    Ok(s.ws.pbx_diff(&s.current_actor().await?, &name).await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_apply(
    s: State<'_, AppState>,
    name: String,
    options: ApplyOptions,
    source: ApplySource,
    progress: tauri::ipc::Channel<ApplyStep>,
) -> ApiResult<ApplyReport> {
    // Each step goes to the window as it ends (the live progress of the Apply wizard).
    let on: Progress = std::sync::Arc::new(move |step: &ApplyStep| {
        let _ = progress.send(step.clone());
    });
    Ok(s.ws
        .pbx_apply_with(&s.current_actor().await?, &name, &options, source, Some(on))
        .await?)
}

/// Imports a tenant's users from the text of a CSV file (a dry run first, to preview); the
/// write's progress goes to the window.
#[tauri::command]
#[specta::specta]
async fn users_import(
    s: State<'_, AppState>,
    tenant: String,
    csv: String,
    key: ImportKey,
    dry_run: bool,
    progress: Channel<ImportProgress>,
) -> ApiResult<ImportReport> {
    let on = move |p: ImportProgress| {
        let _ = progress.send(p);
    };
    Ok(s.ws
        .users_import(
            &s.current_actor().await?,
            &tenant,
            csv.as_bytes(),
            key,
            dry_run,
            &on,
        )
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn dids_import(
    s: State<'_, AppState>,
    tenant: String,
    csv: String,
    dry_run: bool,
    progress: Channel<ImportProgress>,
) -> ApiResult<ImportReport> {
    let on = move |p: ImportProgress| {
        let _ = progress.send(p);
    };
    Ok(s.ws
        .dids_import(
            &s.current_actor().await?,
            &tenant,
            csv.as_bytes(),
            dry_run,
            &on,
        )
        .await?)
}

/// Exports a tenant's users or numbers (no secret) to a new file in the Downloads folder.
#[tauri::command]
#[specta::specta]
async fn export_to_downloads(
    s: State<'_, AppState>,
    tenant: String,
    what: ExportKind,
) -> ApiResult<ExportedFile> {
    let dir = pbxdesk_core::paths::export_dir();
    Ok(s.ws
        .export_to_folder(&s.current_actor().await?, &tenant, what, &dir)
        .await?)
}

/// A page of the audit log (newest first), filtered.
#[tauri::command]
#[specta::specta]
async fn audit_page(s: State<'_, AppState>, filter: AuditFilter) -> ApiResult<AuditPage> {
    Ok(s.ws.audit_page(&s.current_actor().await?, &filter).await?)
}

/// The audit entries of a filter as CSV, to a new file in the Downloads folder.
#[tauri::command]
#[specta::specta]
async fn audit_export_to_downloads(
    s: State<'_, AppState>,
    filter: AuditFilter,
) -> ApiResult<ExportedFile> {
    let dir = pbxdesk_core::paths::export_dir();
    Ok(s.ws
        .audit_export_to_folder(&s.current_actor().await?, &filter, &dir)
        .await?)
}

/// The PBXs whose render differs from their last apply (offline).
#[tauri::command]
#[specta::specta]
async fn pbx_pending(s: State<'_, AppState>) -> ApiResult<Vec<String>> {
    Ok(s.ws.pbx_pending(&s.current_actor().await?).await?)
}

/// Applies every pending PBX, `parallel` at a time; each PBX's line goes to the window as its
/// apply ends (the Fleet view).
#[tauri::command]
#[specta::specta]
async fn pbx_apply_pending(
    s: State<'_, AppState>,
    options: ApplyOptions,
    parallel: u32,
    progress: tauri::ipc::Channel<FleetLine>,
) -> ApiResult<FleetReport> {
    let on: FleetProgress = std::sync::Arc::new(move |line: &FleetLine| {
        let _ = progress.send(line.clone());
    });
    Ok(s.ws
        .pbx_apply_pending(
            &s.current_actor().await?,
            &options,
            usize::try_from(parallel).unwrap_or(usize::MAX),
            Some(on),
        )
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_apply_history(
    s: State<'_, AppState>,
    name: String,
    limit: u32,
) -> ApiResult<Vec<ApplyRecord>> {
    Ok(s.ws
        .pbx_apply_history(&s.current_actor().await?, &name, limit)
        .await?)
}

#[tauri::command]
#[specta::specta]
async fn pbx_trace(
    s: State<'_, AppState>,
    name: String,
    number: String,
    from: Option<String>,
) -> ApiResult<Trace> {
    Ok(s.ws
        .pbx_trace(&s.current_actor().await?, &name, &number, from.as_deref())
        .await?)
}

/// Watches a PBX (the dashboard): its state goes to `updates` at once and after each change.
/// The view's id, for `live_unwatch`.
#[tauri::command]
#[specta::specta]
async fn pbx_watch(s: State<'_, AppState>, name: String, updates: Channel<Live>) -> ApiResult<u32> {
    let rx = s.ws.pbx_watch(&s.current_actor().await?, &name).await?;
    Ok(s.open_view(rx, updates).await)
}

/// Watches one tenant's devices, trunks and calls (the status dots of its users list).
#[tauri::command]
#[specta::specta]
async fn tenant_watch(
    s: State<'_, AppState>,
    tenant: String,
    updates: Channel<Live>,
) -> ApiResult<u32> {
    let rx =
        s.ws.tenant_watch(&s.current_actor().await?, &tenant)
            .await?;
    Ok(s.open_view(rx, updates).await)
}

/// Ends a live view; the PBX's watcher stops with its last view.
#[tauri::command]
#[specta::specta]
async fn live_unwatch(s: State<'_, AppState>, id: u32) -> ApiResult<()> {
    s.views.lock().await.remove(&id);
    Ok(())
}

#[tauri::command]
#[specta::specta]
async fn device_list_of_tenant(s: State<'_, AppState>, tenant: String) -> ApiResult<Vec<Device>> {
    Ok(s.ws
        .device_list_of_tenant(&s.current_actor().await?, &tenant)
        .await?)
}

pub fn specta_builder<R: Runtime>() -> Builder<R> {
    Builder::<R>::new().commands(collect_commands![
        app_info,
        login,
        logout,
        pbx_list,
        pbx_add,
        pbx_show,
        pbx_remove,
        pbx_update,
        pbx_probe_host_key,
        pbx_trust,
        pbx_check,
        pbx_diff,
        pbx_apply,
        pbx_pending,
        pbx_apply_pending,
        pbx_apply_history,
        pbx_trace,
        pbx_watch,
        tenant_watch,
        live_unwatch,
        audit_page,
        audit_export_to_downloads,
        users_import,
        dids_import,
        export_to_downloads,
        did_list,
        did_add,
        did_update,
        did_remove,
        trunk_list,
        trunk_add,
        trunk_update,
        trunk_remove,
        policy_list,
        policy_add,
        policy_update,
        policy_remove,
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
        device_list_of_tenant,
        device_reveal,
        device_new_password,
        local_api_get,
        local_api_set,
        workspace_choice_get,
        workspace_choose,
        app_restart,
        updates_get,
        updates_set,
        update_check,
        update_install,
        ring_group_list,
        ring_group_create,
        ring_group_update,
        ring_group_delete,
        startup_painted,
    ])
}

/// The TypeScript exporter settings.
pub fn typescript() -> Typescript {
    Typescript::default().header(
        "// Generated by tauri-specta from src-tauri/src/lib.rs; do not edit.\n// @ts-nocheck",
    )
}

/// Which workspace the app opens. PBXDESK_DATABASE_URL: a team workspace on PostgreSQL (key
/// from PBXDESK_PASSPHRASE or PBXDESK_KEY_FILE, else the data directory's team.key; operators
/// log in). Otherwise PBXDESK_WORKSPACE or the OS data directory's SQLite file. `--demo` (or
/// PBXDESK_DEMO=1) fills an empty laptop workspace with demo data.
struct Startup {
    options: OpenOptions,
    demo: bool,
}

impl Startup {
    /// From the environment, else the workspace the settings name (chosen in the app).
    fn from_env(settings: &settings::Settings) -> Startup {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let demo = std::env::args().any(|a| a == "--demo")
            || var("PBXDESK_DEMO").is_some_and(|v| v == "1");
        let options = OpenOptions::choose(
            var("PBXDESK_DATABASE_URL").map(SecretString::from),
            var("PBXDESK_WORKSPACE")
                .map(PathBuf::from)
                .or_else(|| settings.workspace.clone()),
            var("PBXDESK_KEY_FILE").map(PathBuf::from),
            var("PBXDESK_PASSPHRASE").map(SecretString::from),
        );
        Startup { options, demo }
    }

    /// Opens the workspace; `settings` is the app's settings file (the local API's switch).
    async fn open(self, settings: PathBuf) -> pbxdesk_core::Result<AppState> {
        let team = matches!(self.options.location, Location::Postgres(_));
        let label = self.options.label();
        let ws = Workspace::open(self.options).await?;
        let actor = if team { None } else { Some(ws.local_owner()?) };
        if let (true, Some(owner)) = (self.demo, &actor) {
            pbxdesk_core::demo::seed(&ws, owner).await?;
        }
        Ok(AppState {
            ws,
            actor: RwLock::new(actor),
            workspace_label: label,
            team,
            views: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            next_view: AtomicU32::new(1),
            local_api: tokio::sync::Mutex::new(LocalServer::load(settings.clone())),
            settings_file: settings,
            updater: None,
        })
    }
}

/// The app's settings file: PBXDESK_SETTINGS, else `settings.json` in the OS config folder of
/// the app's identifier (where Tauri's `app_config_dir` is; a test holds the two together).
fn settings_file(identifier: &str, env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    match env.filter(|v| !v.is_empty()) {
        Some(f) => Some(PathBuf::from(f)),
        None => directories::BaseDirs::new()
            .map(|d| d.config_dir().join(identifier).join("settings.json")),
    }
}

pub fn run() {
    startup_mark("main");
    let context = tauri::generate_context!();
    let settings = settings_file(
        &context.config().identifier,
        std::env::var_os("PBXDESK_SETTINGS"),
    );
    // The workspace opens on a thread of its own while Tauri builds the window: the main
    // thread waiting in `setup` holds the web view back, and the open took a quarter second
    // of a start.
    let opening = settings.clone().map(|settings| {
        std::thread::spawn(move || {
            let startup = Startup::from_env(&settings::Settings::load(&settings));
            tauri::async_runtime::block_on(startup.open(settings))
        })
    });
    let builder = specta_builder::<tauri::Wry>();
    let result = tauri::Builder::default()
        // The updater's Rust side only: the window reaches it through the commands above,
        // never through the plugin's own (no capability grants them).
        .plugin(tauri_plugin_updater::Builder::new().build())
        .invoke_handler(builder.invoke_handler())
        // A page (re)load leaves no one to read the views the page before opened: they end
        // (and with their last view, the PBX's watcher and its AMI connection).
        .on_page_load(|webview, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Started {
                let app = webview.app_handle().clone();
                tauri::async_runtime::spawn(async move {
                    if let Some(s) = app.try_state::<AppState>() {
                        s.close_views().await;
                    }
                });
            }
        })
        .setup(move |app| {
            builder.mount_events(app);
            let opening = opening.ok_or("the OS has no config folder for the app's settings")?;
            let mut state = opening
                .join()
                .map_err(|_| "opening the workspace stopped")?
                .map_err(|e| format!("cannot open the workspace: {e}"))?;
            state.updater = Some(Arc::new(app.handle().clone()));
            startup_mark("setup");
            tauri::async_runtime::block_on(async {
                state.local_api.lock().await.start_if_enabled(&state.ws);
            });
            app.manage(state);
            Ok(())
        })
        .run(context);
    if let Err(e) = result {
        eprintln!("pbxdesk: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use pbxdesk_core::service::{KeySource, Location};

    async fn state(dir: &std::path::Path) -> AppState {
        let options = OpenOptions::new(
            Location::Sqlite(dir.join("ws.sqlite")),
            KeySource::File(dir.join("ws.key")),
        );
        Startup {
            options,
            demo: false,
        }
        .open(dir.join("settings.json"))
        .await
        .unwrap()
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Whether something answers `GET /api/v1/openapi.json` on the port with the document.
    async fn answers(port: u16) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        let req = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        c.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out.starts_with("HTTP/1.1 200") && out.contains("\"openapi\"")
    }

    /// The local API: off by default; switched on it answers on 127.0.0.1 and is kept so the
    /// next start serves it again; a port taken is said, not fatal; off, it stops answering.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_local_api_starts_on_loopback_when_switched_on_and_again_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path()).await;
        let off = s.local_api.lock().await.view();
        assert!(!off.enabled && off.url.is_none(), "{off:?}");
        let port = free_port();
        let on = LocalApiSetting {
            enabled: true,
            port,
        };
        let view = {
            let mut server = s.local_api.lock().await;
            server.set(&s.ws, on.clone()).unwrap();
            server.view()
        };
        assert_eq!(
            view.url.as_deref(),
            Some(format!("http://127.0.0.1:{port}/api/v1").as_str())
        );
        assert!(answers(port).await, "switched on: it answers");
        let err = s
            .local_api
            .lock()
            .await
            .set(
                &s.ws,
                LocalApiSetting {
                    enabled: true,
                    port: 80,
                },
            )
            .unwrap_err();
        assert!(err.contains("1024"), "{err}");
        assert!(answers(port).await, "a refused setting changes nothing");
        drop(s);
        tokio::time::sleep(Duration::from_millis(100)).await;

        // The next start serves it again; a port someone else holds is said in the view.
        let s = state(dir.path()).await;
        s.local_api.lock().await.start_if_enabled(&s.ws);
        assert!(answers(port).await, "started again with the app");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        let view = {
            let mut server = s.local_api.lock().await;
            server
                .set(
                    &s.ws,
                    LocalApiSetting {
                        enabled: true,
                        port: busy,
                    },
                )
                .unwrap();
            server.view()
        };
        assert!(view.url.is_none() && view.error.is_some(), "{view:?}");
        s.local_api
            .lock()
            .await
            .set(
                &s.ws,
                LocalApiSetting {
                    enabled: false,
                    port,
                },
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!answers(port).await, "switched off: nothing answers");
    }

    /// The settings file the app finds before Tauri runs is the one in Tauri's config folder.
    #[test]
    fn the_settings_file_is_in_tauris_config_folder() {
        let app = tauri::test::mock_app();
        let id = app.config().identifier.clone();
        assert_eq!(
            settings_file(&id, None).unwrap(),
            app.path().app_config_dir().unwrap().join("settings.json")
        );
        assert_eq!(
            settings_file(&id, Some("/tmp/s.json".into())).unwrap(),
            PathBuf::from("/tmp/s.json")
        );
    }

    /// A view whose window stopped taking updates (a page reloaded, a window gone) leaves the
    /// map by itself, so nothing keeps its PBX's watcher alive; `close_views` ends the rest.
    #[tokio::test]
    async fn a_view_the_window_stopped_taking_leaves_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path()).await;
        let (tx, rx) = tokio::sync::watch::channel(Live::default());
        let taken = Arc::new(AtomicU32::new(0));
        let seen = taken.clone();
        // Takes the first update, then fails as a channel of a page that is gone does.
        let gone = Channel::new(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(())
            } else {
                Err(tauri::Error::WebviewNotFound)
            }
        });
        let id = s.open_view(rx.clone(), gone).await;
        let kept = s.open_view(rx, Channel::new(|_| Ok(()))).await;
        assert_eq!(s.views.lock().await.len(), 2);
        // A change once the dying view took its first state (a change before it would be
        // the state it starts with).
        let t = std::time::Instant::now();
        while taken.load(Ordering::SeqCst) == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the view never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx.send_modify(|l| l.events += 1);
        let t = std::time::Instant::now();
        while s.views.lock().await.contains_key(&id) {
            assert!(t.elapsed() < Duration::from_secs(5), "the dead view stayed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(s.views.lock().await.contains_key(&kept));
        s.close_views().await;
        let t = std::time::Instant::now();
        // Its task ends too: the last receiver goes, and the sender sees it.
        while !tx.is_closed() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "a closed view kept running"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(s.views.lock().await.is_empty());
    }
}
