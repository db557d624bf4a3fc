use super::*;
use crate::shared_data::InMemory;

#[test]
fn instances_get_the_lowest_free_slots_and_reuse_released_ones() {
    let mut shared = InMemory::default();
    let a = claim(&mut shared, 11, 0).unwrap();
    let b = claim(&mut shared, 22, 0).unwrap();
    assert_eq!((a.index, b.index), (0, 1));
    a.release(&mut shared);
    let c = claim(&mut shared, 33, 10).unwrap();
    assert_eq!(c.index, 0, "a released slot is the next one given");
    // Twelve configuration pushes, two workers, each old instance gone
    // before the next push: the names never pass two.
    let mut live = vec![b, c];
    for push in 0..12u64 {
        for s in live.drain(..) {
            s.release(&mut shared);
        }
        for w in 0..2u64 {
            live.push(claim(&mut shared, 100 + push * 2 + w, 20 + push).unwrap());
        }
        assert!(live.iter().all(|s| s.index < 2), "push {push}: {live:?}");
    }
}

#[test]
fn a_lease_expires_unless_renewed_and_a_lost_slot_is_noticed() {
    let mut shared = InMemory::default();
    let a = claim(&mut shared, 1, 0).unwrap();
    assert!(a.renew(&mut shared, LEASE_MS - 1));
    // Renewed: still held at the first lease's end.
    assert_eq!(claim(&mut shared, 2, LEASE_MS + 1).unwrap().index, 1);
    // Not renewed: taken over once the lease ran out, and the old owner
    // finds out at its next renewal.
    let c = claim(&mut shared, 3, 2 * LEASE_MS).unwrap();
    assert_eq!(c.index, 0);
    assert!(!a.renew(&mut shared, 2 * LEASE_MS + 1));
    // Releasing a slot that is no longer ours leaves the new owner alone.
    a.release(&mut shared);
    assert!(c.renew(&mut shared, 2 * LEASE_MS + 2));
}

#[test]
fn slots_are_bounded_and_garbage_is_free() {
    let mut shared = InMemory::default();
    for i in 0..SLOTS {
        assert_eq!(claim(&mut shared, u64::from(i) + 1, 0).unwrap().index, i);
    }
    assert!(claim(&mut shared, 999, 1).is_none());
    let mut shared = InMemory::default();
    shared.set("backstage_proxy/slot/0", b"not-a-lease", None);
    assert_eq!(claim(&mut shared, 5, 0).unwrap().index, 0);
}
