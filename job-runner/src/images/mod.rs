//! Images: finding them on a page, recognising their format, resizing them.

pub mod collect;
pub mod format;
pub mod resize;
