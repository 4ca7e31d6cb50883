#![allow(clippy::unwrap_used, clippy::panic)]
//! Trunk files: the transport is rendered (a TLS trunk must not run over UDP), IPv6 hosts are
//! written as SIP URIs need them, and Debug never shows a trunk password.

mod common;

use common::*;
use pbxdesk_render::render_pbx;

fn file(s: &pbxdesk_render::Snapshot, name: &str) -> String {
    let r = render_pbx(s);
    assert!(
        !r.findings
            .iter()
            .any(|f| f.is_error() && f.entity.contains(name)),
        "{:?}",
        r.findings
    );
    r.files[&format!("pjsip.d/pbxdesk/trunk-{name}.conf")].clone()
}

#[test]
fn the_transport_is_rendered() {
    let mut s = golden_snapshot();
    let k = s.trunks.iter_mut().find(|k| k.name == "sipcall").unwrap();
    k.transport = "tls".into();
    k.port = 5061;
    let text = file(&s, "sipcall");
    assert!(text.contains("transport = transport-tls"), "{text}");
    assert!(
        text.contains("contact = sip:sip.sipcall.example.net:5061;transport=tls"),
        "{text}"
    );
    assert!(
        text.contains("server_uri = sip:sip.sipcall.example.net:5061;transport=tls"),
        "{text}"
    );
    // Endpoint and registration both name the transport.
    assert_eq!(
        text.matches("transport = transport-tls").count(),
        2,
        "{text}"
    );
    let k = s.trunks.iter_mut().find(|k| k.name == "sipcall").unwrap();
    k.transport = "udp".into();
    let text = file(&s, "sipcall");
    assert!(
        !text.contains("transport"),
        "UDP is Asterisk's default: {text}"
    );
}

#[test]
fn ipv6_hosts_are_accepted_and_written_in_brackets() {
    let mut s = golden_snapshot();
    let k = s.trunks.iter_mut().find(|k| k.name == "sipcall").unwrap();
    k.host = "2001:db8::10".into();
    let text = file(&s, "sipcall");
    assert!(text.contains("contact = sip:[2001:db8::10]:5060"), "{text}");
    assert!(
        text.contains("client_uri = sip:sipcall-user@[2001:db8::10]:5060"),
        "{text}"
    );
    // IP authentication matches the bare address.
    let k = s.trunks.iter_mut().find(|k| k.name == "sipcall").unwrap();
    k.register = false;
    let text = file(&s, "sipcall");
    assert!(text.contains("match = 2001:db8::10"), "{text}");
    // What still cannot be written is refused, not written.
    for bad in ["host:5060", "user@host", "[::1]", "a b"] {
        let mut s = golden_snapshot();
        s.trunks
            .iter_mut()
            .find(|k| k.name == "sipcall")
            .unwrap()
            .host = bad.into();
        let r = render_pbx(&s);
        assert!(
            !r.files.contains_key("pjsip.d/pbxdesk/trunk-sipcall.conf"),
            "{bad}"
        );
        assert!(r.findings.iter().any(|f| f.code == "trunk.value"), "{bad}");
    }
}

#[test]
fn debug_never_shows_a_secret() {
    let s = golden_snapshot();
    let r = render_pbx(&s);
    let text = format!("{s:?} {r:?} {:?}", r.realtime);
    for secret in ["sipcall-Secret-1", "pw-100-a", "1009"] {
        assert!(!text.contains(secret), "{secret} in Debug output");
    }
    assert!(text.contains("<redacted>"));
}
