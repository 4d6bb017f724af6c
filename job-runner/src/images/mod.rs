//! Images: finding them on a page, recognising their format, resizing them.

pub mod collect;
pub mod decode;
pub mod format;
pub mod frames;
pub mod resize;
