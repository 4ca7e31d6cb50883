//! The app's local API: `pbxdesk serve` inside the app, on 127.0.0.1 only (plain HTTP is
//! loopback-only anyway), for automation on the technician's own laptop. Off until switched
//! on; the choice is kept in the app's settings file and the server started again with the app.
//! Every request still logs in or carries a token: the server has no operator of its own.

use crate::settings::Settings;
use pbxdesk_core::Workspace;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The port offered first.
pub const DEFAULT_PORT: u16 = 8640;

/// What is kept between starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, specta::Type)]
pub struct LocalApiSetting {
    pub enabled: bool,
    pub port: u16,
}

impl Default for LocalApiSetting {
    fn default() -> Self {
        LocalApiSetting {
            enabled: false,
            port: DEFAULT_PORT,
        }
    }
}

/// What the window shows: the setting, where it answers, or why it does not.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct LocalApi {
    pub enabled: bool,
    pub port: u16,
    /// `http://127.0.0.1:PORT/api/v1` while it runs.
    pub url: Option<String>,
    /// Why it is not running although switched on (the port taken, …).
    pub error: Option<String>,
}

/// The server as it is, and where its setting lives.
pub struct LocalServer {
    file: PathBuf,
    setting: LocalApiSetting,
    running: Option<(String, tauri::async_runtime::JoinHandle<()>)>,
    error: Option<String>,
}

impl LocalServer {
    /// Reads the setting (none, or one that does not parse, is "off").
    pub fn load(file: PathBuf) -> LocalServer {
        let setting = Settings::load(&file).local_api;
        LocalServer {
            file,
            setting,
            running: None,
            error: None,
        }
    }

    pub fn view(&self) -> LocalApi {
        LocalApi {
            enabled: self.setting.enabled,
            port: self.setting.port,
            url: self.running.as_ref().map(|(u, _)| u.clone()),
            error: self.error.clone(),
        }
    }

    /// Starts the server if its setting says so (at the app's start).
    pub fn start_if_enabled(&mut self, ws: &Workspace) {
        if self.setting.enabled {
            self.start(ws);
        }
    }

    /// Applies a new setting: kept first (atomically), then the server stopped or (re)started.
    pub fn set(&mut self, ws: &Workspace, setting: LocalApiSetting) -> Result<(), String> {
        if setting.port < 1024 {
            return Err(format!(
                "port {}: 1024 to 65535 (ports below 1024 need root)",
                setting.port
            ));
        }
        self.save(&setting)?;
        self.setting = setting;
        self.stop();
        if self.setting.enabled {
            self.start(ws);
        }
        Ok(())
    }

    fn start(&mut self, ws: &Workspace) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.setting.port));
        match pbxdesk_api::bind(ws.clone(), addr, &pbxdesk_api::Tls::Off) {
            Ok(bound) => {
                let url = bound.url();
                let task = tauri::async_runtime::spawn(async move {
                    if let Err(e) = bound.run().await {
                        eprintln!("pbxdesk: the local API stopped: {e}");
                    }
                });
                self.running = Some((url, task));
                self.error = None;
            }
            Err(e) => self.error = Some(format!("cannot serve on {addr}: {e}")),
        }
    }

    fn stop(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
        self.error = None;
    }

    fn save(&self, setting: &LocalApiSetting) -> Result<(), String> {
        Settings::update(&self.file, |s| s.local_api = setting.clone())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}
