//! Prometheus TSDB blocks, read and written by a pure library.
//!
//! A key design decision in this crate is that it does no IO: every byte comes
//! through [`ByteSource`] / [`FileSet`], so the same code reads a data
//! directory natively (positioned reads), a `File` in a Web Worker
//! (`FileReaderSync` over `File.slice`) and a window of a `.tar`. Reads are
//! lazy: opening a block reads its `meta.json`, the index's TOC, symbol table
//! and postings offset table; a query then reads only the postings lists,
//! series entries and chunks it needs.
//!
//! Map: [`index`] (TOC, symbols, series, postings), [`postings`] (matchers →
//! series ids), [`chunks`] (segment files), [`chunkenc`] (XOR and friends),
//! [`tombstones`], [`meta`], [`block`] (one block), [`db`] (several, merged).
//!
//! Every decoder bounds-checks and returns [`TsdbError`] naming the file, the
//! section and the offset; nothing panics on input.

pub mod archive;
pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod error;
pub mod index;
pub mod meta;
pub mod postings;
pub mod source;
pub mod testing;
pub mod tombstones;
pub mod wal;
pub mod writer;

pub use block::Block;
pub use db::Db;
pub use error::{Corruption, SourceError, TsdbError};
pub use meta::BlockMeta;
pub use source::{ByteSource, CountingFileSet, FileSet, MemFileSet, ReadCounter};
