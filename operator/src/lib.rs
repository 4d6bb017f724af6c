//! The Taskyard operator: reconciles ImageTask, TextTask and HashTask resources by running
//! one runner Job per task generation and turning its result into status.

pub mod cache;
pub mod cleanup;
pub mod error;
pub mod events;
pub mod finish;
pub mod health;
pub mod housekeeping;
pub mod job;
pub mod jobindex;
pub mod jobstate;
pub mod leader;
pub mod logwriter;
pub mod memory;
pub mod metrics;
pub mod pacing;
pub mod queue;
pub mod reaper;
pub mod reconcile;
pub mod settings;
pub mod task;
pub mod validate;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "taskyard-operator";
