//! Seeded property tests on simulated histories, and a performance sanity
//! check. Failures print the seed and the history in the text format.

use super::super::History;
use super::generator::{MutationKind, Rng, SimConfig, mutate_one_read, simulate};
use super::{STATES_MAX, Verdict, check};

const SEEDS: u64 = 600;

#[test]
fn simulated_register_histories_are_linearizable() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed);
        let config = SimConfig::random_small(&mut rng);
        let history = simulate(config, &mut rng);
        let verdict = check(&history, STATES_MAX);
        assert_eq!(
            verdict,
            Verdict::Linearizable,
            "seed {seed}, {config:?}: {verdict}\n{history}"
        );
    }
}

#[test]
fn simulated_histories_with_one_impossible_read_are_rejected() {
    let mut kinds_seen = Vec::new();
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed);
        let config = SimConfig::random_small(&mut rng);
        let history = simulate(config, &mut rng);
        let Some((mutated, kind)) = mutate_one_read(&history, &mut rng) else {
            continue; // no completed read to mutate
        };
        let verdict = check(&mutated, STATES_MAX);
        assert!(
            verdict.violation().is_some(),
            "seed {seed}, {kind:?}: {verdict}\noriginal:\n{history}\nmutated:\n{mutated}"
        );
        kinds_seen.push(kind);
    }
    // Each kind of impossible value must actually be exercised.
    for kind in [
        MutationKind::NeverWritten,
        MutationKind::WrittenOnlyLater,
        MutationKind::Overwritten,
    ] {
        let count = kinds_seen.iter().filter(|&&seen| seen == kind).count();
        assert!(count >= 20, "{kind:?} exercised only {count} times");
    }
}

#[test]
fn text_dump_round_trips_and_preserves_the_verdict() {
    for seed in 0..200 {
        let mut rng = Rng::new(seed);
        let history = simulate(SimConfig::random_small(&mut rng), &mut rng);
        let text = history.to_string();
        let parsed: History = text.parse().expect("a dump parses");
        assert_eq!(parsed, history, "seed {seed}\n{text}");
        assert_eq!(parsed.to_string(), text);
        assert_eq!(check(&parsed, STATES_MAX), check(&history, STATES_MAX));
    }
}

#[test]
fn five_clients_with_400_ops_each_on_one_key_check_within_budget() {
    let mut rng = Rng::new(2024);
    let config = SimConfig {
        clients: 5,
        ops_per_client: 400,
        keys: 1,
        values: 5,
        indeterminate_percent: 2,
        duration_max_ns: 30,
    };
    let history = simulate(config, &mut rng);
    assert_eq!(history.len(), 2_000);
    let verdict = check(&history, STATES_MAX);
    assert_eq!(verdict, Verdict::Linearizable, "{verdict}");
}

#[test]
fn five_clients_with_400_ops_each_and_a_late_stale_read_are_rejected_within_budget() {
    // The search must backtrack through the whole history before it can
    // conclude, which is the expensive direction.
    let mut rng = Rng::new(7);
    let config = SimConfig {
        clients: 5,
        ops_per_client: 400,
        keys: 1,
        values: 5,
        indeterminate_percent: 0,
        duration_max_ns: 30,
    };
    let history = simulate(config, &mut rng);
    let mut text = history.to_string();
    // Append a read, invoked after everything returned, of a value no op
    // ever wrote.
    let last_returned_ns = history
        .operations()
        .iter()
        .filter_map(|op| op.returned_at_ns())
        .max()
        .unwrap_or(0);
    text.push_str(&format!(
        "999999 9 k0 {} read {} read:77\n",
        last_returned_ns + 1,
        last_returned_ns + 2
    ));
    let mutated: History = text.parse().expect("valid");
    let verdict = check(&mutated, STATES_MAX);
    assert!(verdict.violation().is_some(), "{verdict}");
}
