//! Images: finding them on a page, recognising their format, resizing them.

pub mod collect;
pub mod cpu;
pub mod decode;
pub mod format;
pub mod frames;
pub mod resize;
pub mod scans;
pub mod turbo;
