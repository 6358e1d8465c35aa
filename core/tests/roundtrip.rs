//! Property tests: every plaintext and context round-trips, in binary and text form, through
//! both backends; any other context is refused.

use phivault::envelope::{self, Envelope, Kek};
use phivault::{Backend, Context, Error, Key32};
use proptest::prelude::*;

fn context_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-z]{1,8}", ".{0,24}"), 0..5).prop_map(|pairs| {
        let mut seen = std::collections::HashSet::new();
        pairs
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_open_round_trips(pt in proptest::collection::vec(any::<u8>(), 0..2048),
                             pairs in context_strategy(),
                             key in any::<[u8; 32]>(),
                             version in 1u32..1000,
                             deterministic in any::<bool>()) {
        let ctx: Context = pairs.iter().cloned().collect();
        for &backend in Backend::AVAILABLE {
            let kek = Kek::new(version, Key32::from_slice(&key).expect("32"), backend).expect("kek");
            let ct = if deterministic {
                envelope::seal_deterministic("ring-1", &kek, &pt, &ctx)
            } else {
                envelope::seal(backend, "ring-1", &kek, &pt, &ctx)
            }.expect("seal");
            let env = Envelope::parse(&ct).expect("parse");
            prop_assert_eq!(env.key_version(), version);
            prop_assert_eq!(env.keyring(), "ring-1");
            let opened = envelope::open(backend, &env, &kek, &ctx).expect("open");
            prop_assert_eq!(opened.expose(), pt.as_slice());
            // text form
            let text = envelope::to_text(&ct).expect("text");
            let expected_prefix = format!("pv1:ring-1:{version}:");
            prop_assert!(text.starts_with(&expected_prefix));
            prop_assert_eq!(envelope::from_text(&text).expect("from text"), ct.clone());
            // any other context is refused
            let other = ctx.clone().with("zz-extra", "1");
            prop_assert!(matches!(envelope::open(backend, &env, &kek, &other), Err(Error::AuthenticationFailed)));
        }
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Envelope::parse(&bytes);
        let _ = envelope::from_text(&String::from_utf8_lossy(&bytes));
    }
}
