//! The parts of pbxdesk that talk to a live PBX. Nothing here knows about the workspace or
//! about Tauri; callers pass validated values in and get typed results out.

pub mod ami;
pub mod astdb;
pub mod live;
pub mod realtime;
pub mod ssh;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tunnel;
pub mod watch;
