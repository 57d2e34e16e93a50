//! A real SIGTERM reaches the shutdown callback through the reactor (own test binary: the
//! handler is process-wide).

use std::time::Duration;

#[test]
fn sigterm_runs_the_shutdown_callback() {
    let rt = wippy_rt::Builder::new()
        .workers(1)
        .pin(false)
        .build()
        .unwrap();
    let h = rt.handle();
    let (tx, rx) = crossbeam_channel::bounded(1);
    h.on_shutdown_signal(move || {
        let _ = tx.try_send(());
    });
    // The OS handler is installed synchronously by `on_shutdown_signal`.
    // SAFETY: `raise` has no memory-safety preconditions; SIGTERM is handled by signal-hook.
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "callback not run"
    );
    rt.shutdown(Duration::from_secs(1));
}
