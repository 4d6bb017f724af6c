//! The Taskyard gateway: the REST APIs of the five services Taskyard replaces, served on one
//! listener on top of tasks, with its own API and a page for people. Every request becomes a task or reads one, through a `Backend`:
//! the cluster (task resources, later) or local mode (tasks run in-process with the runner's
//! code against a directory store).

pub mod app;
pub mod backend;
pub mod legacy;
pub mod plugin_api;
pub mod reply;
pub mod settings;
pub mod tasks_api;
pub mod upload;
pub mod web;
