//! # Partition leases: which tracker shard applies which partition
//!
//! A shard applies a partition only while it holds the partition's lease, a key `p.<partition>`
//! in the `tw_leases` key-value bucket of JetStream. Nothing here is a protocol of its own: a
//! lease is taken with the bucket's create (which fails if another holds it), renewed with an
//! update that names the revision last written (which fails if the lease changed hands), and
//! released with a delete that names it too; a lease nobody renews disappears when its value is
//! older than the bucket's age limit (the lease's time to live). Each holder also keeps a key
//! `member.<holder>` alive the same way, so every holder counts the others and takes a fair
//! share: at most ⌈partitions ÷ holders⌉, giving back the rest, so a new shard gets its share and
//! a dead one's partitions are taken over once its leases expire.
//!
//! A holder must call [`Leases::round`] more often than the time to live (a third of it, say)
//! and stop applying any partition the round says it lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use crate::bus::{key_value, Bus};

/// The bucket of leases and members.
pub const LEASES_BUCKET: &str = "tw_leases";

/// What one round changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Taken this round: start applying them (after what was committed for them).
    pub gained: Vec<u16>,
    /// Lost or given back this round: stop applying them.
    pub lost: Vec<u16>,
    /// Holders alive, this one included.
    pub holders: usize,
    /// Held beyond this holder's share: to be given back (see [`Leases::round_keeping_surplus`]).
    pub surplus: Vec<u16>,
}

/// One holder's leases.
#[derive(Debug)]
pub struct Leases {
    store: kv::Store,
    holder: String,
    partitions: u16,
    /// Held partitions and the revision of the lease's last write.
    held: BTreeMap<u16, u64>,
}

fn lease_key(partition: u16) -> String {
    format!("p.{partition}")
}

fn member_key(holder: &str) -> String {
    format!("member.{holder}")
}

impl Leases {
    /// Joins the bucket as `holder` (letters, digits, `-` and `_`; unique among live holders).
    pub async fn open(bus: &Bus, holder: &str, ttl: Duration) -> Result<Self, String> {
        if holder.is_empty()
            || !holder
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "holder name {holder:?}: use letters, digits, - and _"
            ));
        }
        let store = key_value(&bus.jetstream, LEASES_BUCKET, bus.config.replicas, ttl).await?;
        Ok(Self {
            store,
            holder: holder.to_owned(),
            partitions: bus.partitions,
            held: BTreeMap::new(),
        })
    }

    /// The partitions held now.
    pub fn held(&self) -> BTreeSet<u16> {
        self.held.keys().copied().collect()
    }

    /// Renews what is held, counts the holders, gives back what is above a fair share and takes
    /// free partitions up to it.
    pub async fn round(&mut self) -> Result<Round, String> {
        let mut round = self.round_keeping_surplus().await?;
        for partition in std::mem::take(&mut round.surplus) {
            self.give_back(partition).await;
            round.lost.push(partition);
        }
        Ok(round)
    }

    /// [`Leases::round`], except that the partitions beyond this holder's share are not given
    /// back yet but listed in [`Round::surplus`] (still held, and not taken this round): the
    /// holder finishes with each (commits what it applied), then calls [`Leases::give_back`],
    /// so the next holder starts from everything committed.
    pub async fn round_keeping_surplus(&mut self) -> Result<Round, String> {
        let mut round = Round::default();
        self.store
            .put(member_key(&self.holder), self.holder.clone().into())
            .await
            .map_err(|e| e.to_string())?;
        for (partition, revision) in std::mem::take(&mut self.held) {
            match self
                .store
                .update(lease_key(partition), self.holder.clone().into(), revision)
                .await
            {
                Ok(revision) => {
                    self.held.insert(partition, revision);
                }
                // Expired and taken by another holder (or the update did not get through): it
                // is theirs now.
                Err(_) => round.lost.push(partition),
            }
        }
        round.holders = self.holders().await?.max(1);
        let share = usize::from(self.partitions).div_ceil(round.holders);
        // The highest ones beyond the share.
        round.surplus = self
            .held
            .keys()
            .rev()
            .take(self.held.len().saturating_sub(share))
            .copied()
            .collect();
        // Start from a place of one's own, so holders do not all contend for the same ones.
        let offset = usize::from(self.partitions) * self.seed() / 1_000;
        for i in 0..usize::from(self.partitions) {
            if self.held.len() >= share {
                break;
            }
            let Ok(partition) = u16::try_from((offset + i) % usize::from(self.partitions)) else {
                continue;
            };
            if self.held.contains_key(&partition) {
                continue;
            }
            if let Ok(revision) = self
                .store
                .create(lease_key(partition), self.holder.clone().into())
                .await
            {
                self.held.insert(partition, revision);
                round.gained.push(partition);
            }
        }
        Ok(round)
    }

    /// Gives one lease back: another holder may take it at its next round.
    pub async fn give_back(&mut self, partition: u16) {
        if let Some(revision) = self.held.remove(&partition) {
            let _ = self
                .store
                .delete_expect_revision(lease_key(partition), Some(revision))
                .await;
        }
    }

    /// Gives every lease back (an orderly stop): the others take them at their next round.
    pub async fn release_all(&mut self) {
        for (partition, revision) in std::mem::take(&mut self.held) {
            let _ = self
                .store
                .delete_expect_revision(lease_key(partition), Some(revision))
                .await;
        }
        let _ = self.store.delete(member_key(&self.holder)).await;
    }

    /// Live holders: members whose key has not expired.
    async fn holders(&self) -> Result<usize, String> {
        let mut keys = self.store.keys().await.map_err(|e| e.to_string())?;
        let mut members = 0;
        while let Some(key) = keys.next().await {
            if key.map_err(|e| e.to_string())?.starts_with("member.") {
                members += 1;
            }
        }
        Ok(members)
    }

    /// 0..1000 from the holder's name.
    fn seed(&self) -> usize {
        self.holder.bytes().fold(17usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % 1_000
    }
}
