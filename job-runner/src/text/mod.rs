//! Readable text: decoding a document to UTF-8 and extracting the text of HTML.

pub mod decode;
pub mod extract;
