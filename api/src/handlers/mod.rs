//! # Endpoint handlers, one module per resource: validate, act, answer in JSON.
//!
//! Shared pieces live outside: request input checks in [`crate::input`], the audit of movement
//! queries in [`crate::audit`], the answers' shapes in [`crate::answers`], errors in
//! [`crate::error`].

pub mod accounts;
pub mod admin;
pub mod alert_filter;
pub mod alerts;
pub mod cases;
pub mod health;
pub mod response;
pub mod spatial;
pub mod sse;
pub mod stations;
pub mod thefts;
pub mod track;
pub mod trackers;
pub mod vehicles;
pub mod watch;
