//! Code shared by the Taskyard operator and runner.

pub mod hashlog;
pub mod keys;
pub mod netpolicy;
pub mod setting;
pub mod status;
pub mod store;
