//! `mend bench`, `mend bench-heal`, `mend demo` and `mend demo-offline`: thin commands over
//! mend-bench, which holds the benchmarks and demos and their flags. The runs on the real
//! services start them with `mend up`'s own start-up ([`launch`]).

use anyhow::Result;
use mend_bench::stack::{Launched, Listeners};
use mend_runtime::{MendConfig, Shutdown};

use crate::up;

pub use mend_bench::bench::BenchArgs;
pub use mend_bench::demo::DemoArgs;
pub use mend_bench::demo_offline::DemoArgs as OfflineDemoArgs;
pub use mend_bench::heal::HealArgs;

pub fn bench(args: BenchArgs, json: bool) -> Result<()> {
    mend_bench::bench::run(args, json)
}

pub fn bench_heal(args: HealArgs, json: bool) -> Result<()> {
    mend_bench::heal::run(args, json, launch)
}

pub fn demo(args: DemoArgs, json: bool) -> Result<()> {
    mend_bench::demo::run(args, json, launch)
}

pub fn demo_offline(args: OfflineDemoArgs, json: bool) -> Result<()> {
    mend_bench::demo_offline::run(args, json)
}

/// `mend up`'s start-up as mend-bench's stacks take it: every service's settings read and
/// checked from `config`, then registry, server, ingest, monitor and trainer started on
/// `listeners`.
fn launch(
    config: MendConfig,
    listeners: Listeners,
    registry_addr: String,
    shutdown: Shutdown,
) -> Launched {
    Box::pin(async move {
        let settings = up::Settings::from_config(config)?;
        let listeners = up::Listeners {
            registry: listeners.registry,
            server: listeners.server,
            ingest: listeners.ingest,
            http: listeners.http,
        };
        up::start_services(settings, listeners, &registry_addr, &shutdown).await
    })
}
