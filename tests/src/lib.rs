//! Test support shared by Taskyard's integration and end-to-end tests: the local cluster's
//! environment, a fixture web server, kubectl, and independent digests.

pub mod cluster;
pub mod containers;
pub mod daemons;
pub mod drill;
pub mod drill_load;
pub mod e2e;
pub mod files;
pub mod gateway;
pub mod helm;
pub mod http;
pub mod images;
pub mod kubectl;
pub mod local_run;
pub mod partition;
pub mod plugin;
pub mod sts;
