//! Partition leases in JetStream's key-value bucket, as tracker shards use them: every partition
//! held by exactly one live holder, a fair share each, and a dead holder's partitions taken over
//! once its leases expire.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use tagwatch_cluster::lease::Leases;
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::{Bus, BusConfig};

const PARTITIONS: u16 = 12;
const TTL: Duration = Duration::from_secs(2);

async fn bus(nats: &NatsServer) -> Bus {
    Bus::connect(&nats.url(), BusConfig::default(), Some(PARTITIONS))
        .await
        .expect("bus")
}

/// Rounds for every holder until their holdings stop changing (bounded). A holder counts the
/// others only once each has had a round, so the first pass is never the last.
async fn settle(holders: &mut [&mut Leases]) {
    for pass in 0..10 {
        let mut changed = false;
        for holder in holders.iter_mut() {
            let round = holder.round().await.expect("round");
            changed |= !round.gained.is_empty() || !round.lost.is_empty();
        }
        if !changed && pass > 0 {
            return;
        }
    }
}

fn all() -> BTreeSet<u16> {
    (0..PARTITIONS).collect()
}

#[tokio::test]
async fn holders_share_the_partitions_fairly_and_never_hold_one_twice() {
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let bus = bus(&nats).await;
    let mut a = Leases::open(&bus, "shard-a", TTL).await.expect("a");
    let first = a.round().await.expect("round");
    assert_eq!(first.holders, 1);
    assert_eq!(a.held(), all(), "alone, it takes every partition");

    let mut b = Leases::open(&bus, "shard-b", TTL).await.expect("b");
    let mut c = Leases::open(&bus, "shard-c", TTL).await.expect("c");
    settle(&mut [&mut a, &mut b, &mut c]).await;
    let (ha, hb, hc) = (a.held(), b.held(), c.held());
    assert_eq!(
        [ha.len(), hb.len(), hc.len()],
        [4, 4, 4],
        "{ha:?} {hb:?} {hc:?}"
    );
    assert!(ha.is_disjoint(&hb) && hb.is_disjoint(&hc) && ha.is_disjoint(&hc));
    let union: BTreeSet<u16> = ha.union(&hb).chain(hc.iter()).copied().collect();
    assert_eq!(union, all());
}

#[tokio::test]
async fn a_dead_holders_partitions_are_taken_over_once_its_leases_expire() {
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let bus = bus(&nats).await;
    let mut a = Leases::open(&bus, "shard-a", TTL).await.expect("a");
    let mut b = Leases::open(&bus, "shard-b", TTL).await.expect("b");
    settle(&mut [&mut a, &mut b]).await;
    let had = b.held();
    assert_eq!(had.len(), 6);
    // b dies without a word: its leases and membership stop being renewed.
    drop(b);
    let mut took_over = false;
    for _ in 0..20 {
        tokio::time::sleep(TTL / 4).await;
        a.round().await.expect("round");
        if a.held() == all() {
            took_over = true;
            break;
        }
    }
    assert!(
        took_over,
        "a holds every partition within 5 s of b's leases expiring"
    );
}

#[tokio::test]
async fn an_orderly_stop_hands_its_partitions_over_at_the_next_round() {
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let bus = bus(&nats).await;
    let mut a = Leases::open(&bus, "shard-a", Duration::from_secs(60))
        .await
        .expect("a");
    let mut b = Leases::open(&bus, "shard-b", Duration::from_secs(60))
        .await
        .expect("b");
    settle(&mut [&mut a, &mut b]).await;
    assert_eq!(a.held().len(), 6);
    b.release_all().await;
    let round = a.round().await.expect("round");
    assert_eq!(round.holders, 1);
    assert_eq!(
        a.held(),
        all(),
        "taken at once, with no time to live to wait out"
    );
}

#[tokio::test]
async fn a_lease_renewed_by_another_is_reported_lost() {
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let bus = bus(&nats).await;
    let mut a = Leases::open(&bus, "shard-a", TTL).await.expect("a");
    a.round().await.expect("round");
    // Another holder overwrites one of a's leases (as after a's lease expired and was taken).
    let store = tagwatch_cluster::bus::key_value(&bus.jetstream, "tw_leases", 1, TTL)
        .await
        .expect("bucket");
    store.put("p.3", "shard-z".into()).await.expect("put");
    let round = a.round().await.expect("round");
    assert!(round.lost.contains(&3), "{round:?}");
    assert!(!a.held().contains(&3));
}

#[tokio::test]
async fn a_surplus_partition_stays_held_until_given_back() {
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let bus = bus(&nats).await;
    let long = Duration::from_secs(60);
    let mut a = Leases::open(&bus, "shard-a", long).await.expect("a");
    a.round().await.expect("round");
    assert_eq!(a.held(), all());
    let mut b = Leases::open(&bus, "shard-b", long).await.expect("b");
    b.round().await.expect("b joins");
    // a learns of b: half is beyond its share, still held until it has finished with them.
    let round = a.round_keeping_surplus().await.expect("round");
    assert_eq!(round.surplus.len(), 6, "{round:?}");
    assert!(round.lost.is_empty());
    let surplus: BTreeSet<u16> = round.surplus.iter().copied().collect();
    assert!(surplus.is_subset(&a.held()), "still held");
    b.round().await.expect("round");
    assert!(
        b.held().is_disjoint(&surplus),
        "nobody takes what a has not given back"
    );
    for &partition in &round.surplus {
        a.give_back(partition).await;
    }
    b.round().await.expect("round");
    assert!(surplus.is_subset(&b.held()), "taken once given back");
    assert!(a.held().is_disjoint(&b.held()));
}
