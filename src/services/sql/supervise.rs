//! Registering a kind's services with the supervisor, shared by the data kind managers.
//!
//! A manager calls [`register`] while handling a create/update (inside the registry
//! transaction, as `process.host` does) and [`remove`] for a delete. Without a supervisor
//! (embedders, unit tests) nothing is registered and the services start on first use.

use std::sync::Arc;

use wippy_rt::Error;

use crate::registry::EntryEvent;
use crate::system::System;
use crate::system::components::supervision::{LifecycleConfig, Service, ServiceSpec, Supervisor};

/// Register `service` for entry `id` as part of `ev`'s transaction.
///
/// # Errors
/// The supervisor's errors ("action received outside of transaction").
pub fn register(
    sys: &Arc<System>,
    ev: &EntryEvent,
    id: &str,
    service: Arc<dyn Service>,
    lifecycle: LifecycleConfig,
) -> Result<(), Error> {
    let Some(sup) = Supervisor::of(&sys.handle) else {
        return Ok(());
    };
    sup.register_in(
        ev.tx,
        ServiceSpec {
            id: id.to_string(),
            service,
            config: lifecycle,
            deps: Vec::new(),
        },
        Some(ev.entry.clone()),
    )
}

/// Remove the service of entry `id` as part of `ev`'s transaction.
///
/// # Errors
/// The supervisor's errors.
pub fn remove(sys: &Arc<System>, ev: &EntryEvent, id: &str) -> Result<(), Error> {
    match Supervisor::of(&sys.handle) {
        Some(sup) => sup.remove_in(ev.tx, id),
        None => Ok(()),
    }
}
