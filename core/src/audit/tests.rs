use super::*;

#[test]
fn every_outcome_has_its_own_word() {
    let mut words: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| Outcome::Denied(*r).code())
        .collect();
    words.extend([
        Outcome::Allowed.code(),
        Outcome::OwnJwks.code(),
        Outcome::CorsPreflight.code(),
        Outcome::PassThrough.code(),
    ]);
    let distinct: std::collections::BTreeSet<&str> = words.iter().copied().collect();
    assert_eq!(distinct.len(), words.len(), "{words:?}");
    assert_eq!(Outcome::Denied(Reason::RateLimited).code(), "rate_limited");
}

#[test]
fn the_access_log_reads_the_keys_the_filter_sets() {
    assert_eq!(
        wasm_filter_state(PRINCIPAL_KEY),
        "%FILTER_STATE(wasm.backstage_proxy.principal:PLAIN)%"
    );
}
