use super::*;

#[test]
fn seconds_format() {
    assert_eq!(seconds(0), "0s");
    assert_eq!(seconds(30_000), "30s");
    assert_eq!(seconds(1500), "1.500s");
}
