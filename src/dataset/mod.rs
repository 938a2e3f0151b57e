//! Dataset on disk: layout, JSON sidecars, postcard frame index, verify, recover.

pub mod recover;
pub mod verify;
