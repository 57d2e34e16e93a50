//! Start a process entry and wait for its result: the one "exec" of the test supports.

use std::time::Duration;

use wippy::rt::{Error, Value};
use wippy::system::System;
use wippy::system::process_manager::{ProcessManager, StartRequest};

/// Start entry `id` on `host` with `input` through the process manager of `sys` and wait up
/// to `timeout` for its result (an `Internal` error naming `id` on timeout).
pub fn exec(
    sys: &std::sync::Arc<System>,
    host: &str,
    id: &str,
    input: Vec<Value>,
    timeout: Duration,
) -> Result<Value, Error> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    ProcessManager::of(sys)
        .expect("process manager")
        .start_watched(
            StartRequest {
                host: host.into(),
                source: id.into(),
                input,
                ..StartRequest::default()
            },
            Box::new(move |r| {
                let _ = tx.send(r.clone());
            }),
        )?;
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(Error::internal(format!(
            "test timeout: {id} did not finish in {timeout:?}"
        )))
    })
}
