//! Project loading (under construction).

pub mod lines;
