//! The boot component that installs every data service (`services.data`).
//!
//! Load phase (dispatcher open, app context writable, entries not loaded): the kind managers
//! of `db.sql.*` (and, as they land, `store.*`, `queue.*`, `env.*`, `fs.*`), their dispatcher
//! job commands and the process-exit hook of [`super::owners`]. Stop: every database is
//! closed (transactions rolled back) after the supervisor stopped the services.

use std::sync::Arc;
use std::time::Instant;

use wippy_rt::Error;

use crate::boot::{BootCx, Component};

/// See the module docs.
#[derive(Debug, Default)]
pub struct DataComponent;

impl Component for DataComponent {
    fn name(&self) -> &'static str {
        "services.data"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &[
            "registry",
            "supervisor",
            "dispatcher",
            "functions",
            "lua.engine",
        ]
    }

    fn load(&self, cx: &BootCx<'_>) -> Result<(), Error> {
        super::install(cx.system, cx.dir)?;
        Ok(())
    }

    fn stop(&self, cx: &BootCx<'_>, deadline: Instant) -> Result<(), Error> {
        if let Some(m) = super::manager(cx.system) {
            m.shutdown(&cx.system.registry, deadline);
        }
        Ok(())
    }
}

/// The component, boxed for the boot list.
pub fn component() -> Arc<dyn Component> {
    Arc::new(DataComponent)
}
