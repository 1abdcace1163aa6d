//! The frame path: frames from ingest are read by the recognizer and grouped per vehicle by the tracker
//! (`analyse`); each vehicle read is stored, matched against the hotlists in force and alerted on
//! (`reads`, `hotlists`, `alert`); a split track folds into the first alert (`recent`). Above the
//! components it drives, below the daemon (`ops`) and the front doors (`api`, `cli`) that start and
//! query it.

pub mod analyse;
pub mod hotlists;
pub mod reads;
pub mod recent;
pub mod snapshot;
