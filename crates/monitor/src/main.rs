//! `mend-monitor`: the monitor service as its own process, hosted by `mend_runtime::host`
//! (config → telemetry → bind → open → signals → serve within the shutdown grace).

fn main() -> std::process::ExitCode {
    mend_runtime::host::main::<mend_monitor::MendMonitor>()
}
