//! `process.host` kind manager (under construction).
