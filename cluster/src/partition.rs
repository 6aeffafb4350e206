//! # Partitions: which tracker shard's stream a vehicle's detections go to
//!
//! First step of the cluster path (`tagwatch gateway`): a verified frame's detections are split
//! by the partition of their vehicle. The partition count is fixed when the cluster is created
//! (see [`crate::bus`]); the hash is fixed too, written out here rather than borrowed from a
//! hasher whose output may change between releases, because gateways of different versions
//! must agree on it for as long as the stream keeps messages.
//!
//! Tags that a watch rule must see together (a vehicle and its paired companion) are grouped:
//! every tag of a group goes to the partition of the group's smallest tag.

use std::collections::HashMap;
use tagwatch_model::{StationId, TagId};

/// The partition of a grouping key among `count`.
pub fn partition_of(key: TagId, count: u16) -> u16 {
    spread(key.0, count)
}

/// The partition that watches a station's health (`station_silent`, clock skew, heartbeats):
/// every frame of the station reaches it, at least as a part without records.
pub fn station_partition(station: StationId, count: u16) -> u16 {
    spread(station.0, count)
}

/// SplitMix64's finalizer: every bit of the key moves every bit of the result, so consecutive
/// keys spread evenly.
fn spread(key: u32, count: u16) -> u16 {
    let mut x = u64::from(key).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    // `count` is at least 1 (checked where the cluster is created).
    u16::try_from(x % u64::from(count.max(1))).unwrap_or(0)
}

/// The groups of tags that must share a partition, from the companion pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// A grouped tag's key: the smallest tag of its group (ungrouped tags are absent).
    key: HashMap<TagId, TagId>,
}

impl Groups {
    /// Groups from (tag, companion) pairs: tags joined by any chain of pairs form one group.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (TagId, TagId)>) -> Self {
        let mut parent: HashMap<TagId, TagId> = HashMap::new();
        fn root(parent: &mut HashMap<TagId, TagId>, tag: TagId) -> TagId {
            let mut at = tag;
            while let Some(&up) = parent.get(&at) {
                if up == at {
                    break;
                }
                at = up;
            }
            // Path compression: the next look-up is one step.
            let mut walk = tag;
            while walk != at {
                let up = parent.insert(walk, at).unwrap_or(at);
                walk = up;
            }
            at
        }
        for (a, b) in pairs {
            parent.entry(a).or_insert(a);
            parent.entry(b).or_insert(b);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            // The smaller tag is the root, so a group's key does not depend on pair order.
            let (low, high) = if ra <= rb { (ra, rb) } else { (rb, ra) };
            parent.insert(high, low);
        }
        let tags: Vec<TagId> = parent.keys().copied().collect();
        let key = tags
            .into_iter()
            .map(|tag| (tag, root(&mut parent, tag)))
            .collect();
        Self { key }
    }

    /// The key `tag` is partitioned by: its group's smallest tag, or itself.
    pub fn key(&self, tag: TagId) -> TagId {
        self.key.get(&tag).copied().unwrap_or(tag)
    }

    /// The partition of `tag` among `count`.
    pub fn partition(&self, tag: TagId, count: u16) -> u16 {
        partition_of(self.key(tag), count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_hash_is_the_one_written_down() {
        // Gateways of every version must agree: these values are part of the cluster's format.
        let got: Vec<u16> = [1, 2, 3, 1_000_000, u32::MAX]
            .iter()
            .map(|&t| partition_of(TagId(t), 64))
            .collect();
        assert_eq!(got, PINNED);
    }

    // Computed apart from this code (SplitMix64 by hand, in Python) when the format was fixed.
    const PINNED: [u16; 5] = [1, 14, 45, 39, 0];

    #[test]
    fn tags_spread_evenly_over_the_partitions() {
        let mut counts = [0u32; 64];
        for tag in 1..=64_000 {
            counts[usize::from(partition_of(TagId(tag), 64))] += 1;
        }
        // 1,000 expected each; a fair hash stays well within ±20 %.
        assert!(
            counts.iter().all(|&c| (800..=1_200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_chain_of_pairs_is_one_group_keyed_by_its_smallest_tag() {
        let groups = Groups::from_pairs([
            (TagId(9), TagId(5)),
            (TagId(5), TagId(7)),
            (TagId(20), TagId(30)),
        ]);
        for tag in [5, 7, 9] {
            assert_eq!(groups.key(TagId(tag)), TagId(5));
        }
        assert_eq!(groups.key(TagId(30)), TagId(20));
        assert_eq!(groups.key(TagId(11)), TagId(11), "unpaired: itself");
    }

    proptest! {
        #[test]
        fn paired_tags_share_a_partition_whatever_the_order_of_the_pairs(
            pairs in proptest::collection::vec((1u32..60, 1u32..60), 0..40),
            count in 1u16..100,
        ) {
            let pairs: Vec<(TagId, TagId)> =
                pairs.into_iter().map(|(a, b)| (TagId(a), TagId(b))).collect();
            let groups = Groups::from_pairs(pairs.iter().copied());
            let reversed = Groups::from_pairs(pairs.iter().rev().map(|&(a, b)| (b, a)));
            prop_assert_eq!(&groups, &reversed);
            for &(a, b) in &pairs {
                prop_assert_eq!(groups.partition(a, count), groups.partition(b, count));
                prop_assert!(groups.key(a) <= a && groups.key(b) <= b);
            }
            for tag in 1..60 {
                prop_assert!(groups.partition(TagId(tag), count) < count);
            }
        }
    }
}
