//! The generator: determinism (same seed → same cases, case K alone = case K in sequence),
//! variety (every family, every malformed variant that applies), and safety.

use std::collections::BTreeSet;

use super::*;

const ALL: [Protocol; 5] = [
    Protocol::Quantix,
    Protocol::QuantixLegacy,
    Protocol::Fcexec,
    Protocol::Qga,
    Protocol::Volant,
];

fn target(protocol: Protocol, hvsock_port: Option<u32>) -> Target {
    Target {
        protocol,
        hvsock_port,
    }
}

/// FNV-1a over a case's shape and bytes.
fn hash(case: &Case, h: &mut u64) {
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            *h ^= u64::from(*b);
            *h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(case.description.as_bytes());
    for w in &case.writes {
        eat(&(w.len() as u64).to_le_bytes());
        eat(w);
    }
    eat(&[
        u8::from(case.half_close),
        u8::from(case.raw_handshake),
        u8::from(case.expect_reply),
    ]);
}

fn run_hash(g: &Generator, n: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    for i in 0..n {
        hash(&g.case(i), &mut h);
    }
    h
}

#[test]
fn the_same_seed_gives_the_same_cases_and_another_seed_others() {
    for p in ALL {
        let a = Generator::new(target(p.clone(), None), 42).expect("gen");
        let b = Generator::new(target(p.clone(), None), 42).expect("gen");
        let c = Generator::new(target(p.clone(), None), 43).expect("gen");
        assert_eq!(run_hash(&a, 200), run_hash(&b, 200), "{p}");
        assert_ne!(run_hash(&a, 200), run_hash(&c, 200), "{p}");
        // Case K on its own is case K of the sequence (what --case K relies on).
        let seq: Vec<Case> = (0..50).map(|i| a.case(i)).collect();
        for k in [0u64, 7, 49] {
            assert_eq!(b.case(k), seq[k as usize], "{p} case {k}");
        }
    }
}

/// Pinned so that a change to the generator is a deliberate one: it changes what every saved
/// finding's `--seed S --case K` runs. Update the constant with the change, and say so.
#[test]
fn the_cases_of_seed_1_are_pinned() {
    let g = Generator::new(target(Protocol::Quantix, None), 1).expect("gen");
    let mut h = 0xcbf2_9ce4_8422_2325;
    for i in 0..100 {
        hash(&g.case(i), &mut h);
    }
    assert_eq!(h, PINNED_QUANTIX_SEED_1, "got {h:#x}");
}

const PINNED_QUANTIX_SEED_1: u64 = 0x64c5_bf47_66a3_c74f;

#[test]
fn every_family_and_every_applicable_variant_appears() {
    for p in ALL {
        let g = Generator::new(target(p.clone(), Some(1024)), 7).expect("gen");
        let cases: Vec<Case> = (0..600).map(|i| g.case(i)).collect();
        let families: BTreeSet<&str> = cases.iter().map(|c| c.family.name()).collect();
        assert_eq!(families.len(), 4, "{p}: {families:?}");
        let variants: BTreeSet<String> = cases
            .iter()
            .filter_map(|c| c.description.strip_prefix("malformed:"))
            .map(|d| d.split(' ').next().unwrap_or("").to_string())
            .collect();
        let applicable = crate::fault::MalformedVariant::ALL
            .into_iter()
            .filter(|v| {
                let line = b"CONNECT 1024\n";
                crate::fault::malform_writes(*v, &p, b"\x00\x00\x00\x02{}\n").is_ok()
                    || crate::fault::malform_writes(*v, &p, line).is_ok()
            })
            .count();
        assert!(
            variants.len() >= applicable.min(5),
            "{p}: {variants:?} of {applicable}"
        );
        assert!(variants.contains("split_handshake"), "{p}: {variants:?}");
        for c in &cases {
            assert!(!c.writes.is_empty() && c.writes.iter().all(|w| !w.is_empty()));
            if c.input().len() < 1 << 20 {
                assert!(
                    super::super::safety::is_safe(g.target(), &c.input()),
                    "{c:?}"
                );
            }
            assert_eq!(c.expect_reply, c.family == Family::Valid);
        }
        assert!(cases.iter().any(|c| c.half_close));
    }
}

#[test]
fn handshake_variants_only_on_hvsock_and_unknown_protocols_are_refused() {
    let g = Generator::new(target(Protocol::Qga, None), 7).expect("gen");
    assert!((0..300).all(|i| !g.case(i).raw_handshake));
    let e = Generator::new(target(Protocol::Raw, None), 1).unwrap_err();
    assert!(e.to_string().contains("raw"));
}
