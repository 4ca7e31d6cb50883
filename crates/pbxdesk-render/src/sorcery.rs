//! Whether a PBX loads pbxdesk's trunk files at all. `sorcery.conf` decides where each PJSIP
//! object type comes from, and Asterisk reads it at start only. The common realtime setup maps
//! endpoint, aor, auth and identify to realtime alone; then objects in `pjsip.d/*.conf` are
//! silently ignored (seen on Asterisk 22.10.1: the carrier's INVITE got `No matching endpoint
//! found` while the apply reported success). A type with no line in sorcery.conf comes from
//! pjsip.conf (Asterisk's default); a type with lines needs a `config,pjsip.conf` one too, listed
//! before its realtime line (fixture `config/sorcery.conf.trunks`).

use crate::pbx::{Rendered, PJSIP_DIR};
use serde::{Deserialize, Serialize};

/// One object type whose file objects the PBX would not load, and the line that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SorceryGap {
    /// The sorcery.conf section (`res_pjsip`, `res_pjsip_endpoint_identifier_ip`, …).
    pub section: String,
    /// The object type (`endpoint`, `aor`, `auth`, `identify`, `registration`).
    pub object: String,
    /// The line to add to that section, before its realtime line.
    pub line: String,
}

/// The section of sorcery.conf that maps `object`.
fn section_of(object: &str) -> &'static str {
    match object {
        "identify" => "res_pjsip_endpoint_identifier_ip",
        "registration" => "res_pjsip_outbound_registration",
        _ => "res_pjsip",
    }
}

/// The object types pbxdesk writes into pjsip files, as `trunk_file` writes them.
pub const FILE_OBJECTS: [&str; 5] = ["endpoint", "aor", "auth", "identify", "registration"];

/// The object types the render's trunk files hold (`type = …` lines), in FILE_OBJECTS order.
pub fn file_objects(r: &Rendered) -> Vec<&'static str> {
    let mut seen = Vec::new();
    for (path, text) in &r.files {
        if !path.starts_with(PJSIP_DIR) {
            continue;
        }
        for line in text.lines() {
            if let Some(t) = line.trim().strip_prefix("type = ") {
                if let Some(o) = FILE_OBJECTS.iter().find(|o| **o == t.trim()) {
                    if !seen.contains(o) {
                        seen.push(*o);
                    }
                }
            }
        }
    }
    FILE_OBJECTS
        .iter()
        .copied()
        .filter(|o| seen.contains(o))
        .collect()
}

/// The gaps for `objects`, given the PBX's sorcery.conf (None: there is none, so every type
/// comes from pjsip.conf). A config mapping listed after the realtime one is a gap too: the
/// realtime lookup answers first.
pub fn file_object_gaps(sorcery_conf: Option<&str>, objects: &[&str]) -> Vec<SorceryGap> {
    let mut mappings: Vec<(String, String, String)> = Vec::new(); // section, object, wizard
    if let Some(text) = sorcery_conf {
        let mut section = String::new();
        for raw in text.lines() {
            let line = raw.split(';').next().unwrap_or("").trim();
            if let Some(rest) = line.strip_prefix('[') {
                section = rest
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim_start_matches('>').trim();
                mappings.push((
                    section.clone(),
                    k.trim().to_ascii_lowercase(),
                    v.to_ascii_lowercase(),
                ));
            }
        }
    }
    let mut gaps = Vec::new();
    for object in objects {
        let section = section_of(object);
        let wizards: Vec<&str> = mappings
            .iter()
            .filter(|(s, o, _)| s == section && o == object)
            .map(|(_, _, w)| w.as_str())
            .collect();
        if wizards.is_empty() {
            continue; // Asterisk's default: pjsip.conf
        }
        let is_config = |w: &&str| {
            let mut parts = w.split(',').map(str::trim);
            parts.next() == Some("config") && parts.next() == Some("pjsip.conf")
        };
        let config = wizards.iter().position(is_config);
        let realtime = wizards.iter().position(|w| !is_config(w));
        let ok = match (config, realtime) {
            (Some(c), Some(r)) => c < r,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !ok {
            gaps.push(SorceryGap {
                section: section.to_owned(),
                object: (*object).to_owned(),
                line: format!("{object} = config,pjsip.conf,criteria=type={object}"),
            });
        }
    }
    gaps
}

/// What to tell the technician: the lines to add, section by section, and the restart.
pub fn gaps_fix(gaps: &[SorceryGap]) -> String {
    let mut sections: Vec<&str> = gaps.iter().map(|g| g.section.as_str()).collect();
    sections.dedup();
    let mut out = String::from("in sorcery.conf, add before each type's realtime line: ");
    let parts: Vec<String> = sections
        .iter()
        .map(|s| {
            let lines: Vec<&str> = gaps
                .iter()
                .filter(|g| g.section == *s)
                .map(|g| g.line.as_str())
                .collect();
            format!("[{s}] {}", lines.join("; "))
        })
        .collect();
    out.push_str(&parts.join(" | "));
    out.push_str(
        "; then restart Asterisk (sorcery.conf is read at start only; a reload is not enough)",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALTIME_ONLY: &str = "[res_pjsip]\nendpoint = realtime,ps_endpoints\nauth = realtime,ps_auths\naor = realtime,ps_aors\ncontact = realtime,ps_contacts\n\n[res_pjsip_endpoint_identifier_ip]\nidentify = realtime,ps_endpoint_id_ips\n";

    #[test]
    fn realtime_only_mappings_hide_the_trunk_files() {
        let gaps = file_object_gaps(Some(REALTIME_ONLY), &FILE_OBJECTS);
        let objects: Vec<&str> = gaps.iter().map(|g| g.object.as_str()).collect();
        assert_eq!(objects, ["endpoint", "aor", "auth", "identify"]);
        assert_eq!(gaps[3].section, "res_pjsip_endpoint_identifier_ip");
        assert_eq!(
            gaps[0].line,
            "endpoint = config,pjsip.conf,criteria=type=endpoint"
        );
        let fix = gaps_fix(&gaps);
        assert!(fix.contains("restart Asterisk"), "{fix}");
        assert!(
            fix.contains("[res_pjsip] endpoint = config,pjsip.conf,criteria=type=endpoint; aor")
        );
    }

    #[test]
    fn file_first_mappings_and_no_sorcery_conf_load_them() {
        // The captured sorcery.conf.trunks (Asterisk 22.10.1): trunks loaded.
        let trunks = "[res_pjsip]\n; file objects first\nendpoint = config,pjsip.conf,criteria=type=endpoint\nendpoint = realtime,ps_endpoints\nauth = config,pjsip.conf,criteria=type=auth\nauth = realtime,ps_auths\naor = config,pjsip.conf,criteria=type=aor\naor = realtime,ps_aors\n\n[res_pjsip_endpoint_identifier_ip]\nidentify = config,pjsip.conf,criteria=type=identify\nidentify = realtime,ps_endpoint_id_ips\n";
        assert_eq!(file_object_gaps(Some(trunks), &FILE_OBJECTS), vec![]);
        assert_eq!(file_object_gaps(None, &FILE_OBJECTS), vec![]);
        assert_eq!(file_object_gaps(Some(""), &FILE_OBJECTS), vec![]);
        // After the realtime line, the realtime lookup answers first.
        let late = "[res_pjsip]\nendpoint = realtime,ps_endpoints\nendpoint = config,pjsip.conf,criteria=type=endpoint\n";
        assert_eq!(file_object_gaps(Some(late), &["endpoint"]).len(), 1);
        // Only what is asked about counts.
        assert_eq!(
            file_object_gaps(Some(REALTIME_ONLY), &["registration"]),
            vec![]
        );
    }
}
