//! polewatch: edge daemon for pole-mounted licence-plate-reader cameras.
//!
//! Pure logic (`config` validation, `retention`, `store::pattern`, `hotlist`, `track`) is kept apart from I/O
//! (`store`, `ops`) and tested without it.

pub mod access;
pub mod alert;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod evidence;
pub mod hotlist;
pub mod ingest;
pub mod observe;
pub mod ops;
pub mod pipeline;
pub mod recognize;
pub mod retention;
pub mod store;
pub mod track;
pub mod uplink;
