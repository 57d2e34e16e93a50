//! `terminal.host` kind manager and CLI command execution (under construction).
