//! The extension allocator against a model of it: a seeded random run of creates (automatic and
//! explicit), deletes, the clock moving past and within the quarantine, and a range widened
//! and a country changed half-way; after every step the allocator's answer must be the model's
//! (the lowest number of the range that no live user holds, no user deleted within the
//! quarantine holds, and that is not an emergency number of the tenant's country). On both
//! engines. The allocator keeps a hint so its cost does not grow with the tenant; this is what
//! keeps that hint honest.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly by design

mod harness;

use harness::Harness;
use pbxdesk_core::model::{NewPbx, NewTenant, NewUser, TenantPatch};
use pbxdesk_core::OpenOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// What the allocator must answer, kept by the test itself.
struct Model {
    first: u32,
    last: u32,
    emergency: BTreeSet<u32>,
    live: BTreeMap<u32, i64>,
    /// Extension and when its user was deleted.
    deleted: Vec<(u32, i64)>,
}

impl Model {
    fn held(&self, n: u32, now: i64) -> bool {
        let q = OpenOptions::DEFAULT_QUARANTINE.as_millis() as i64;
        self.live.contains_key(&n)
            || self.emergency.contains(&n)
            || self.deleted.iter().any(|(e, at)| *e == n && *at > now - q)
    }

    fn lowest_free(&self, now: i64) -> Option<u32> {
        (self.first..=self.last).find(|n| !self.held(*n, now))
    }
}

/// The renderer's table of a country's emergency numbers (the allocator reads it too).
fn emergency(country: &str) -> BTreeSet<u32> {
    pbxdesk_render::snapshot::emergency_numbers(country)
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

async fn run(h: &Harness, seed: u64, steps: usize) {
    let ws = &h.ws;
    let me = harness::ws_admin(ws).await;
    ws.pbx_add(&me, &NewPbx::at("pbx1", "10.0.0.5"))
        .await
        .unwrap();
    ws.tenant_create(
        &me,
        &NewTenant {
            name: "Alloc".into(),
            slug: Some("alloc".into()),
            pbx: "pbx1".into(),
            ext_range: "100-160".into(),
            country: Some("CH".into()),
        },
    )
    .await
    .unwrap();
    let mut m = Model {
        first: 100,
        last: 160,
        emergency: emergency("CH"),
        live: BTreeMap::new(),
        deleted: Vec::new(),
    };
    assert!(m.emergency.contains(&112) && m.emergency.contains(&117));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut made = 0u32;
    for step in 0..steps {
        let now = ws.clock().now_ms();
        let at = format!("seed {seed}, step {step}");
        assert_eq!(
            ws.next_free_extension(&me, "alloc").await.unwrap(),
            m.lowest_free(now),
            "{at}: the preview"
        );
        if step == steps / 3 {
            // Wider at its start: numbers below the old first are free.
            ws.tenant_update(
                &me,
                "alloc",
                &TenantPatch {
                    ext_range: Some("90-170".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            (m.first, m.last) = (90, 170);
            continue;
        }
        if step == 2 * steps / 3 {
            // Another country, other emergency numbers (DE: 110 and 112).
            ws.tenant_update(
                &me,
                "alloc",
                &TenantPatch {
                    country: Some("DE".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            m.emergency = emergency("DE");
            continue;
        }
        let roll: u32 = rng.gen_range(0..100);
        made += 1;
        let email = format!("u{made}@alloc.example");
        if roll < 50 {
            let got = ws
                .user_create(
                    &me,
                    &NewUser {
                        tenant: "alloc".into(),
                        name: format!("U {made}"),
                        email,
                        ..Default::default()
                    },
                )
                .await;
            match (got, m.lowest_free(now)) {
                (Ok(u), Some(want)) => {
                    assert_eq!(u.extension, want, "{at}: automatic");
                    m.live.insert(want, u.id);
                }
                (Err(e), None) => assert!(e.to_string().contains("no free extension"), "{e}"),
                (got, want) => panic!(
                    "{at}: got {:?}, the model {want:?}",
                    got.map(|u| u.extension)
                ),
            }
        } else if roll < 62 {
            let n = rng.gen_range(m.first..=m.last);
            let got = ws
                .user_create(
                    &me,
                    &NewUser {
                        tenant: "alloc".into(),
                        name: format!("U {made}"),
                        email,
                        extension: Some(n.to_string()),
                        ..Default::default()
                    },
                )
                .await;
            assert_eq!(got.is_ok(), !m.held(n, now), "{at}: explicit {n}: {got:?}");
            if let Ok(u) = got {
                m.live.insert(n, u.id);
            }
        } else if roll < 88 {
            if m.live.is_empty() {
                continue;
            }
            let pick = rng.gen_range(0..m.live.len());
            let (&ext, &id) = m.live.iter().nth(pick).unwrap();
            ws.user_delete(&me, id).await.unwrap();
            m.live.remove(&ext);
            m.deleted.push((ext, now));
        } else if roll < 95 {
            ws.clock().advance(DAY * rng.gen_range(1..10));
        } else {
            // Past the quarantine of everything deleted so far.
            ws.clock().advance(DAY * 31);
        }
    }
    assert!(m.live.len() > 10, "the run filled the range enough to test");
}

#[tokio::test]
async fn the_allocator_agrees_with_its_model_on_sqlite() {
    for seed in [1, 2, 3] {
        let h = Harness::sqlite().await;
        run(&h, seed, 400).await;
    }
}

#[tokio::test]
async fn the_allocator_agrees_with_its_model_on_postgres() {
    let h = Harness::postgres().await;
    run(&h, 4, 400).await;
}
