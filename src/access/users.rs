//! Placeholder: filled in by the users work.
