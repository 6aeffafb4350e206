//! Benchmarks live in benches/; this library holds what the truth commands share.

pub mod city_feed;
pub mod http_load;
pub mod mobile_readers;
pub mod rule_truth;
