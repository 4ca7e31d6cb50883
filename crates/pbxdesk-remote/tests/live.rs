//! The live state against the real event streams of Asterisk 22.10.1 (`tests/fixtures/
//! asterisk22/ami/s9`, `s10`, `s12`, `s13`, `s16`, `s17`, `s19`): every byte a session received,
//! fed through the AMI parser, then each event applied in order.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

use pbxdesk_remote::ami::Message;
use pbxdesk_remote::live::{
    parse_odbc_show, parse_uptime, Change, ContactState, DeviceState, Health, LiveState,
};
use pbxdesk_remote::testkit::captured_messages;

/// Every message of a capture.
fn messages(name: &str) -> Vec<Message> {
    let out = captured_messages(name);
    assert!(!out.is_empty(), "{name} parsed to nothing");
    out
}

fn events(name: &str) -> Vec<Message> {
    messages(name)
        .into_iter()
        .filter(Message::is_event)
        .collect()
}

/// Applies the events in order, the n-th at n ms; what each changed.
fn replay(s: &mut LiveState, evs: &[Message]) -> Vec<(String, Option<Change>)> {
    evs.iter()
        .enumerate()
        .map(|(i, m)| {
            let kind = m.get("Event").unwrap_or("").to_owned();
            (kind, s.apply(m, i as i64))
        })
        .collect()
}

/// s9: register (NonQualified, then Reachable with its round trip), refresh (nothing),
/// unregister (Removed), register again, killed (Unreachable after the qualify timeout).
#[test]
fn a_phones_life_as_the_events_tell_it() {
    let evs = events("s9_events_phone_lifecycle.received_stream.raw");
    let mut s = LiveState::default();
    let mut seen = Vec::new();
    for (i, m) in evs.iter().enumerate() {
        let change = s.apply(m, i as i64);
        if m.get("Event") == Some("ContactStatus") || m.get("Event") == Some("DeviceStateChange") {
            let e = s.endpoints.get("acme-1000").cloned().unwrap_or_default();
            seen.push((
                m.get("Event").unwrap().to_owned(),
                e.contacts.first().map(|c| c.state),
                e.device_state,
                change,
            ));
        }
    }
    // The first registration: a new contact, not qualified yet; the watcher must read its
    // details (the event has no user agent or source address).
    assert_eq!(
        seen[0],
        (
            "ContactStatus".into(),
            Some(ContactState::NonQualified),
            None,
            Some(Change::NewContact("acme-1000".into()))
        )
    );
    // Then qualified: reachable with the captured round trip, and Not in use.
    let reachable = seen
        .iter()
        .position(|x| x.1 == Some(ContactState::Reachable))
        .unwrap();
    assert!(reachable < 3, "{seen:?}");
    // The unregister removes the contact and the device goes unavailable.
    let removed = seen
        .iter()
        .position(|x| x.0 == "ContactStatus" && x.1.is_none())
        .unwrap();
    assert!(removed > reachable);
    // By the end the phone was killed: its contact is known but unreachable, the device
    // unavailable, so it does not count as registered.
    let end = &s.endpoints["acme-1000"];
    assert_eq!(end.contacts.len(), 1, "{end:?}");
    assert_eq!(end.contacts[0].state, ContactState::Unreachable);
    assert_eq!(end.contacts[0].uri, "sip:acme-1000@127.0.0.1:5070");
    assert_eq!(end.device_state, Some(DeviceState::Unavailable));
    assert!(!end.registered());
}

#[test]
fn the_first_qualify_gives_the_round_trip_in_microseconds() {
    let evs = events("s9_events_phone_lifecycle.received_stream.raw");
    let mut s = LiveState::default();
    for (i, m) in evs.iter().enumerate() {
        s.apply(m, i as i64);
        if let Some(c) = s
            .endpoints
            .get("acme-1000")
            .and_then(|e| e.contacts.first())
        {
            if c.state == ContactState::Reachable {
                assert_eq!(c.rtt_us, Some(824), "s9's first answered OPTIONS");
                assert_eq!(
                    s.endpoints["acme-1000"].device_state, None,
                    "DeviceStateChange comes after"
                );
                return;
            }
        }
    }
    panic!("acme-1000 never became reachable");
}

/// s19: a contact that expires gives what an unregister gives.
#[test]
fn an_expired_contact_is_removed_like_an_unregistered_one() {
    let mut s = LiveState::default();
    s.load_contacts(
        &messages("s10_pjsip_registered_02_pjsipshowcontacts.response.raw"),
        0,
    );
    assert!(s.endpoints["acme-1001"].registered());
    assert!(s.endpoints["acme-1002"].registered());
    replay(
        &mut s,
        &events("s19_events_contact_expiry.received_stream.raw"),
    );
    for name in ["acme-1001", "acme-1002"] {
        let e = &s.endpoints[name];
        assert!(e.contacts.is_empty(), "{name}: {e:?}");
        assert_eq!(e.device_state, Some(DeviceState::Unavailable), "{name}");
        assert!(!e.registered());
    }
    // acme-1000 registered anew in that session and was qualified.
    let me = &s.endpoints["acme-1000"];
    assert!(me.registered(), "{me:?}");
}

/// s10: what the list gives that events do not: user agent, source, expiry, and `N/A` round
/// trips for an unreachable contact.
#[test]
fn the_contact_list_gives_the_details() {
    let mut s = LiveState::default();
    s.load_contacts(
        &messages("s10_pjsip_registered_02_pjsipshowcontacts.response.raw"),
        7,
    );
    s.load_endpoints(&messages(
        "s10_pjsip_registered_04_pjsipshowendpoints.response.raw",
    ));
    let c = &s.endpoints["acme-1001"].contacts[0];
    assert_eq!(c.state, ContactState::Reachable);
    assert_eq!(c.rtt_us, Some(571));
    assert_eq!(c.user_agent.as_deref(), Some("sipp-acme-phone/3.6.1"));
    assert_eq!(c.source.as_deref(), Some("127.0.0.1:5071"));
    assert!(c.expires_at.is_some());
    let gone = &s.endpoints["acme-1000"];
    assert_eq!(gone.contacts[0].state, ContactState::Unreachable);
    assert_eq!(gone.contacts[0].rtt_us, None, "RoundtripUsec: N/A");
    assert_eq!(gone.device_state, Some(DeviceState::Unavailable));
    assert_eq!(
        s.endpoints["acme-1001"].device_state,
        Some(DeviceState::NotInUse)
    );
}

/// s16 + s17: `Registry` events name no registration; they are matched by their URIs with
/// what the list said. The list's `AuthDetail` (with the password) is not kept anywhere.
#[test]
fn trunk_registrations_follow_registry_events() {
    let list = messages("s17_trunks_02_pjsipshowregistrationsoutbound.response.raw");
    assert!(
        list.iter().any(|m| m.get("Password").is_some()),
        "the capture carries the password"
    );
    let mut s = LiveState::default();
    s.load_registrations(&list, 0);
    assert_eq!(s.registrations["trunk-ok"].status, "Registered");
    assert_eq!(s.registrations["trunk-dead"].status, "Rejected");
    let kept = format!("{s:?}");
    for m in &list {
        if let Some(p) = m.get("Password").filter(|p| !p.is_empty()) {
            assert!(!kept.contains(p), "a trunk password was kept");
        }
    }
    // s16 starts from a restart: both unknown to the events until they register or fail.
    for r in s.registrations.values_mut() {
        r.status = "Unregistered".into();
    }
    let changes = replay(
        &mut s,
        &events("s16_events_trunk_registration.received_stream.raw"),
    );
    assert!(changes
        .iter()
        .any(|(k, c)| k == "Registry" && *c == Some(Change::Registration("trunk-ok".into()))));
    assert_eq!(s.registrations["trunk-ok"].status, "Registered");
    assert_eq!(s.registrations["trunk-dead"].status, "Rejected");
}

/// s12: a call from its first channel to its last hangup; s13: the same call as listed.
#[test]
fn a_call_from_start_to_hangup() {
    let evs = events("s12_events_call.received_stream.raw");
    let mut s = LiveState::default();
    let mut most = 0;
    let mut bridged = false;
    for (i, m) in evs.iter().enumerate() {
        s.apply(m, i as i64);
        if let Some(first) = s.channels.values().next() {
            let call = s.call(&first.linkedid.clone());
            most = most.max(call.len());
            if call.len() == 2 && call.iter().all(|c| c.bridge.is_some()) {
                bridged = true;
                assert_eq!(call[0].endpoint.as_deref(), Some("acme-1001"));
                assert_eq!(call[1].endpoint.as_deref(), Some("acme-1002"));
                assert!(call.iter().all(|c| c.state == "Up"), "{call:?}");
            }
        }
    }
    assert_eq!(most, 2, "two legs");
    assert!(bridged, "the legs were bridged");
    assert!(s.channels.is_empty(), "both hung up: {:?}", s.channels);
    assert_eq!(
        s.endpoints["acme-1002"].device_state,
        Some(DeviceState::NotInUse)
    );

    let mut listed = LiveState::default();
    listed.load_channels(
        &messages("s13_core_call_02_coreshowchannels.response.raw"),
        0,
    );
    assert_eq!(listed.channels.len(), 2);
    let linked: Vec<&str> = listed
        .channels
        .values()
        .map(|c| c.linkedid.as_str())
        .collect();
    assert_eq!(linked[0], linked[1], "one call");
    assert_eq!(listed.call(linked[0]).len(), 2);
    assert!(listed.channels.values().all(|c| c.bridge.is_some()));
}

/// The `Output:` lines of a captured Command answer.
fn output_lines(name: &str) -> Vec<String> {
    messages(name)[0].all("Output").map(str::to_owned).collect()
}

/// s11 and s13: CoreStatus and CoreSettings; s18: uptime, and `odbc show` with the database
/// up, just gone (stale: still one connection), after a failed query, and back.
#[test]
fn health_from_core_status_uptime_and_odbc() {
    let mut h = Health::default();
    let status = messages("s11_core_idle_02_corestatus.response.raw");
    let settings = messages("s11_core_idle_03_coresettings.response.raw");
    h.read_core(status.first(), settings.first());
    assert_eq!(h.version.as_deref(), Some("22.10.1"));
    assert_eq!(h.started.as_deref(), Some("2026-12-01 20:41:12"));
    assert_eq!(h.last_reload.as_deref(), Some("2026-12-01 20:43:48"));
    assert_eq!(h.channels, Some(0));
    let during_call = messages("s13_core_call_03_corestatus.response.raw");
    h.read_core(during_call.first(), None);
    assert_eq!(h.channels, Some(2), "one call, two channels");

    assert_eq!(
        parse_uptime(&output_lines("s18_health_02_command.response.raw")),
        Some(74)
    );
    let up = parse_odbc_show(&output_lines("s18_health_04_command.response.raw")).unwrap();
    assert_eq!(
        (up.name.as_str(), up.dsn.as_str()),
        ("asterisk", "asterisk-rt")
    );
    assert_eq!((up.active, up.max, up.last_fail.as_deref()), (1, 5, None));
    assert!(up.connected());
    // Just after the database went away the count is stale: still connected.
    let stale = parse_odbc_show(&output_lines("s18_health_06_command.response.raw")).unwrap();
    assert!(stale.connected());
    // After a failed query: none, and when it failed.
    let down = parse_odbc_show(&output_lines("s18_health_11_command.response.raw")).unwrap();
    assert!(!down.connected());
    assert_eq!(down.last_fail.as_deref(), Some("2026-12-01 20:50:40"));
    // Back: connected again, the failure's time kept.
    let back = parse_odbc_show(&output_lines("s18_health_14_command.response.raw")).unwrap();
    assert!(back.connected(), "{back:?}");
    assert!(back.last_fail.is_some());
}

#[test]
fn a_tenants_view_holds_only_its_own() {
    // s10 lists several phones; s13 a call between acme-1001 and acme-1002 (one linkedid).
    let mut s = LiveState::default();
    s.load_endpoints(&messages(
        "s10_pjsip_registered_04_pjsipshowendpoints.response.raw",
    ));
    s.load_channels(
        &messages("s13_core_call_02_coreshowchannels.response.raw"),
        0,
    );
    s.health.channels = Some(7);
    let all: Vec<String> = s.endpoints.keys().cloned().collect();
    assert!(all.len() > 1, "{all:?}");
    let mine: std::collections::BTreeSet<String> = ["acme-1001".to_owned()].into();
    let v = s.only(&mine);
    assert_eq!(v.endpoints.keys().collect::<Vec<_>>(), ["acme-1001"]);
    // Its call, with the other leg, and the count of its own channels only.
    assert_eq!(v.channels.len(), 2);
    assert_eq!(v.health.channels, Some(2));
    assert!(v.health.realtime_db.is_none());
    let none: std::collections::BTreeSet<String> = ["globex-2000".to_owned()].into();
    let v = s.only(&none);
    assert!(v.endpoints.is_empty() && v.channels.is_empty(), "{v:?}");
    assert_eq!(v.health.channels, Some(0));
}
