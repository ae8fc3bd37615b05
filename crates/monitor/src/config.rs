//! The monitor's own settings, read through `mend-runtime`'s config source: each from its
//! `MEND_MONITOR_*` variable, else the `[monitor]` table of the `MEND_CONFIG` file, else the
//! default here. Errors name the variable.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use mend_bus::ModelName;
use mend_core::drift::DriftPolicy;
use mend_runtime::MendConfig;
use mend_runtime::config::{ConfigError, ConfigSource, random_instance, replica_instance};

use crate::detector::PageHinkleyConfig;
use crate::performance::TrendConfig;

/// Models to watch, comma separated (e.g. `churn,fraud`): an allow-list; unset, every model
/// with a champion is watched.
pub const MEND_MONITOR_MODELS: &str = "MEND_MONITOR_MODELS";
/// Rows per data window.
pub const MEND_MONITOR_WINDOW_ROWS: &str = "MEND_MONITOR_WINDOW_ROWS";
/// When set, a data window also closes once it spans this many ms of log time.
pub const MEND_MONITOR_WINDOW_MS: &str = "MEND_MONITOR_WINDOW_MS";
/// Labels per performance window.
pub const MEND_MONITOR_LABEL_WINDOW: &str = "MEND_MONITOR_LABEL_WINDOW";
/// How often the data log is polled for new entries, in ms.
pub const MEND_MONITOR_POLL_MS: &str = "MEND_MONITOR_POLL_MS";
/// How often the champion is re-checked without a promotion event, in ms.
pub const MEND_MONITOR_CHAMPION_REFRESH_MS: &str = "MEND_MONITOR_CHAMPION_REFRESH_MS";
/// Reports kept per model; older ones are deleted.
pub const MEND_MONITOR_REPORTS_KEPT: &str = "MEND_MONITOR_REPORTS_KEPT";
/// How far live accuracy may fall below the champion's holdout accuracy before it drifts.
pub const MEND_MONITOR_ACCURACY_TOLERANCE: &str = "MEND_MONITOR_ACCURACY_TOLERANCE";
/// Drifted features that make a window's data drift (the dataset share rule also applies).
pub const MEND_MONITOR_MIN_DRIFTED_FEATURES: &str = "MEND_MONITOR_MIN_DRIFTED_FEATURES";
/// Consecutive windows a feature must drift in before its drift counts (1: every window).
pub const MEND_MONITOR_CONFIRM_WINDOWS: &str = "MEND_MONITOR_CONFIRM_WINDOWS";
/// Recent row ids remembered for joining labels.
pub const MEND_MONITOR_JOIN_ROWS: &str = "MEND_MONITOR_JOIN_ROWS";
/// A JSON file with the drift policy (Evidently's defaults when unset).
pub const MEND_MONITOR_POLICY_FILE: &str = "MEND_MONITOR_POLICY_FILE";
/// This replica's name, which keys its promotion consumer. Default: `HOSTNAME`, else random.
pub const MEND_MONITOR_INSTANCE: &str = "MEND_MONITOR_INSTANCE";
/// Page-Hinkley `delta`: the change in the error rate tolerated without counting (>= 0).
pub const MEND_MONITOR_PH_DELTA: &str = "MEND_MONITOR_PH_DELTA";
/// Page-Hinkley `threshold` (lambda): the cumulative deviation that declares a change (> 0).
pub const MEND_MONITOR_PH_THRESHOLD: &str = "MEND_MONITOR_PH_THRESHOLD";
/// Page-Hinkley `alpha`: the forgetting factor of the cumulative sum (0 < alpha <= 1; 1 is
/// no forgetting).
pub const MEND_MONITOR_PH_ALPHA: &str = "MEND_MONITOR_PH_ALPHA";
/// Page-Hinkley `min_instances`: labels seen before a change may be declared (>= 1).
pub const MEND_MONITOR_PH_MIN_INSTANCES: &str = "MEND_MONITOR_PH_MIN_INSTANCES";

/// The accuracy-trend test: the champion's newest this many labels are compared against all
/// its older ones (two-proportion z-test, STEPD); 0 switches it off. Default 1000.
pub const MEND_MONITOR_TREND_WINDOW: &str = "MEND_MONITOR_TREND_WINDOW";
/// The z-score at which the trend test declares a slide (> 0). Default 4.
pub const MEND_MONITOR_TREND_Z: &str = "MEND_MONITOR_TREND_Z";

/// Every variable above, for `--help` texts and docs.
pub const ALL: &[&str] = &[
    MEND_MONITOR_MODELS,
    MEND_MONITOR_WINDOW_ROWS,
    MEND_MONITOR_WINDOW_MS,
    MEND_MONITOR_LABEL_WINDOW,
    MEND_MONITOR_POLL_MS,
    MEND_MONITOR_CHAMPION_REFRESH_MS,
    MEND_MONITOR_REPORTS_KEPT,
    MEND_MONITOR_ACCURACY_TOLERANCE,
    MEND_MONITOR_MIN_DRIFTED_FEATURES,
    MEND_MONITOR_CONFIRM_WINDOWS,
    MEND_MONITOR_JOIN_ROWS,
    MEND_MONITOR_POLICY_FILE,
    MEND_MONITOR_INSTANCE,
    MEND_MONITOR_PH_DELTA,
    MEND_MONITOR_PH_THRESHOLD,
    MEND_MONITOR_PH_ALPHA,
    MEND_MONITOR_PH_MIN_INSTANCES,
    MEND_MONITOR_TREND_WINDOW,
    MEND_MONITOR_TREND_Z,
];

/// Defaults: windows of 2,000 rows and 500 labels, polled every second, 200 reports kept.
/// Window rows and confirmation were chosen by measurement (`examples/monitor_defaults`):
/// against the smallest reference the demo keeps (a model trained on 2,000 rows: 1,600
/// profiled, 400 holdout), 2,000-row windows confirmed three times raised no data- or
/// prediction-drift alarm in 4,000,000 calm rows (10 models), and find a 0.5-std shift of one
/// feature after 6,000 rows. Confirmed twice they raised 1.5 prediction alarms per 1,000,000
/// calm rows while the prediction reference was the 400-row holdout alone (its histogram sat
/// close to the 0.1 distance on its own); since the reference covers all 2,000 rows, single
/// windows raise none (1,000,000 calm rows: 176 -> 0 at 1,000-row windows, 19 -> 0 at 2,000).
pub mod defaults {
    use std::time::Duration;

    pub const WINDOW_ROWS: usize = 2_000;
    pub const LABEL_WINDOW: usize = 500;
    /// Short, so that at thousands of rows a second drift is still found within a few
    /// hundred rows of where the data shows it (each poll reads only what is new; BENCHMARKS
    /// run 7 measured 25 ms against 100 ms at 10,000 rows/s).
    pub const POLL: Duration = Duration::from_millis(25);
    pub const CHAMPION_REFRESH: Duration = Duration::from_secs(60);
    pub const REPORTS_KEPT: usize = 200;
    /// Measured against a 400-row holdout baseline (a model trained on 2,000 rows): with
    /// 500-label windows a tolerance of 0.05 raised 46 alarms per 1,000,000 calm labels
    /// (the baseline's own sampling error is ~0.018), 0.1 none; a flipped concept is found by
    /// Page-Hinkley within a few hundred labels either way.
    pub const ACCURACY_TOLERANCE: f64 = 0.1;
    pub const MIN_DRIFTED_FEATURES: usize = 1;
    /// Three windows in a row: at Evidently's thresholds single calm 2,000-row windows
    /// against a 1,600-row reference raise 2.5-3 data-drift alarms per 1,000,000 rows
    /// (measured); confirmed twice, 0; three times, 0. (Prediction drift, against a 400-row
    /// holdout reference: 21, 1.5 and 0; against the whole 2,000 rows: 0 already.)
    pub const CONFIRM_WINDOWS: u32 = 3;
    pub const JOIN_ROWS: usize = 100_000;
    /// Entries read per kind per data-log read, so a long backlog is read in bounded pieces.
    pub const READ_CHUNK: u64 = 5_000;
}

/// What the monitor needs beyond the shared runtime settings.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub models: Vec<ModelName>,
    pub window_rows: usize,
    /// Windows by time as well as by rows (whichever comes first); `None`: by rows only.
    pub window_duration: Option<Duration>,
    pub label_window: usize,
    pub poll_interval: Duration,
    pub champion_refresh: Duration,
    pub reports_kept: usize,
    pub accuracy_tolerance: f64,
    pub min_drifted_features: usize,
    pub confirm_windows: u32,
    pub join_rows: usize,
    pub read_chunk: u64,
    pub policy: DriftPolicy,
    /// The Page-Hinkley detector on the error stream (`MEND_MONITOR_PH_*`; mend's measured
    /// defaults, not River's: see [`crate::detector`]).
    pub page_hinkley: PageHinkleyConfig,
    /// The accuracy-trend test on live labels (`MEND_MONITOR_TREND_*`).
    pub trend: TrendConfig,
    /// Reports and the saved positions live here (`MEND_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Names this replica's durable promotion consumer (`mend-monitor-<instance>`).
    pub instance: String,
    /// `MEND_TLS_*`: the reports are data, so the HTTP port follows them.
    pub tls: mend_runtime::config::TlsConfig,
}

impl MonitorConfig {
    /// Defaults for `models`, storing under `data_dir`.
    pub fn new(models: Vec<ModelName>, data_dir: impl Into<PathBuf>) -> Self {
        MonitorConfig {
            models,
            window_rows: defaults::WINDOW_ROWS,
            window_duration: None,
            label_window: defaults::LABEL_WINDOW,
            poll_interval: defaults::POLL,
            champion_refresh: defaults::CHAMPION_REFRESH,
            reports_kept: defaults::REPORTS_KEPT,
            accuracy_tolerance: defaults::ACCURACY_TOLERANCE,
            min_drifted_features: defaults::MIN_DRIFTED_FEATURES,
            confirm_windows: defaults::CONFIRM_WINDOWS,
            join_rows: defaults::JOIN_ROWS,
            read_chunk: defaults::READ_CHUNK,
            policy: DriftPolicy::default(),
            page_hinkley: PageHinkleyConfig::default(),
            trend: TrendConfig::default(),
            data_dir: data_dir.into(),
            instance: random_instance(),
            tls: mend_runtime::config::TlsConfig::default(),
        }
    }

    /// Reads the monitor settings from the same environment and file as `config`.
    pub fn from_mend(config: &MendConfig) -> Result<MonitorConfig, ConfigError> {
        let mut monitor = MonitorConfig::from_source(config.source(), config.data_dir.clone())?;
        monitor.tls = config.tls.clone();
        Ok(monitor)
    }

    /// Reads the monitor settings from an environment and optional file.
    pub fn from_source(
        source: &ConfigSource,
        data_dir: PathBuf,
    ) -> Result<MonitorConfig, ConfigError> {
        let mut config = MonitorConfig::new(Vec::new(), data_dir);
        if let Some(list) = source.parse::<ModelList>(MEND_MONITOR_MODELS, "monitor.models")? {
            config.models = list.0;
        }
        config.window_rows = at_least_one(
            source,
            MEND_MONITOR_WINDOW_ROWS,
            "monitor.window_rows",
            defaults::WINDOW_ROWS,
        )?;
        if let Some(ms) = source.parse::<u64>(MEND_MONITOR_WINDOW_MS, "monitor.window_ms")? {
            if ms == 0 {
                return Err(source.invalid(
                    MEND_MONITOR_WINDOW_MS,
                    "monitor.window_ms",
                    "must be at least 1",
                ));
            }
            config.window_duration = Some(Duration::from_millis(ms));
        }
        config.label_window = at_least_one(
            source,
            MEND_MONITOR_LABEL_WINDOW,
            "monitor.label_window",
            defaults::LABEL_WINDOW,
        )?;
        config.poll_interval = Duration::from_millis(at_least_one(
            source,
            MEND_MONITOR_POLL_MS,
            "monitor.poll_ms",
            defaults::POLL.as_millis() as usize,
        )? as u64);
        config.champion_refresh = Duration::from_millis(at_least_one(
            source,
            MEND_MONITOR_CHAMPION_REFRESH_MS,
            "monitor.champion_refresh_ms",
            defaults::CHAMPION_REFRESH.as_millis() as usize,
        )? as u64);
        config.reports_kept = at_least_one(
            source,
            MEND_MONITOR_REPORTS_KEPT,
            "monitor.reports_kept",
            defaults::REPORTS_KEPT,
        )?;
        config.min_drifted_features = at_least_one(
            source,
            MEND_MONITOR_MIN_DRIFTED_FEATURES,
            "monitor.min_drifted_features",
            defaults::MIN_DRIFTED_FEATURES,
        )?;
        config.confirm_windows = at_least_one(
            source,
            MEND_MONITOR_CONFIRM_WINDOWS,
            "monitor.confirm_windows",
            defaults::CONFIRM_WINDOWS as usize,
        )?
        .min(u32::MAX as usize) as u32;
        config.join_rows = at_least_one(
            source,
            MEND_MONITOR_JOIN_ROWS,
            "monitor.join_rows",
            defaults::JOIN_ROWS,
        )?;
        let tolerance: f64 = source.parse_or(
            MEND_MONITOR_ACCURACY_TOLERANCE,
            "monitor.accuracy_tolerance",
            defaults::ACCURACY_TOLERANCE,
        )?;
        if !(0.0..=1.0).contains(&tolerance) {
            return Err(source.invalid(
                MEND_MONITOR_ACCURACY_TOLERANCE,
                "monitor.accuracy_tolerance",
                "must be between 0 and 1",
            ));
        }
        config.accuracy_tolerance = tolerance;
        config.page_hinkley = page_hinkley(source)?;
        config.trend = trend(source)?;
        if let Some(path) = source.readable_file(MEND_MONITOR_POLICY_FILE, "monitor.policy_file")? {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            config.policy = DriftPolicy::from_json(&text).map_err(|error| {
                source.invalid(
                    MEND_MONITOR_POLICY_FILE,
                    "monitor.policy_file",
                    &error.to_string(),
                )
            })?;
        }
        config.instance = replica_instance(
            source,
            MEND_MONITOR_INSTANCE,
            "monitor.instance",
            mend_bus::max_instance_len(crate::follow::CONSUMER_PREFIX),
        )?;
        Ok(config)
    }
}

/// The `MEND_MONITOR_PH_*` settings over mend's defaults. Values that would make the
/// detector meaningless (a negative delta, a threshold of zero or less, which every value
/// crosses, a forgetting factor outside (0, 1]) are refused by name.
fn page_hinkley(source: &ConfigSource) -> Result<PageHinkleyConfig, ConfigError> {
    let defaults = PageHinkleyConfig::default();
    let delta: f64 = source.parse_or(MEND_MONITOR_PH_DELTA, "monitor.ph_delta", defaults.delta)?;
    if !(delta.is_finite() && delta >= 0.0) {
        return Err(source.invalid(
            MEND_MONITOR_PH_DELTA,
            "monitor.ph_delta",
            "must be a number >= 0",
        ));
    }
    let threshold: f64 = source.parse_or(
        MEND_MONITOR_PH_THRESHOLD,
        "monitor.ph_threshold",
        defaults.threshold,
    )?;
    // `inf` is allowed: it switches the detector off (the rolling accuracy still judges).
    if threshold.is_nan() || threshold <= 0.0 {
        return Err(source.invalid(
            MEND_MONITOR_PH_THRESHOLD,
            "monitor.ph_threshold",
            "must be a number > 0 (inf switches the detector off)",
        ));
    }
    let alpha: f64 = source.parse_or(MEND_MONITOR_PH_ALPHA, "monitor.ph_alpha", defaults.alpha)?;
    if !(alpha > 0.0 && alpha <= 1.0) {
        return Err(source.invalid(
            MEND_MONITOR_PH_ALPHA,
            "monitor.ph_alpha",
            "must be greater than 0 and at most 1",
        ));
    }
    let min_instances = at_least_one(
        source,
        MEND_MONITOR_PH_MIN_INSTANCES,
        "monitor.ph_min_instances",
        defaults.min_instances as usize,
    )? as u64;
    Ok(PageHinkleyConfig {
        min_instances,
        delta,
        threshold,
        alpha,
    })
}

/// The `MEND_MONITOR_TREND_*` settings: a window of 0 switches the test off; the z-score
/// must be a number > 0.
fn trend(source: &ConfigSource) -> Result<TrendConfig, ConfigError> {
    let defaults = TrendConfig::default();
    let window: usize = source.parse_or(
        MEND_MONITOR_TREND_WINDOW,
        "monitor.trend_window",
        defaults.window,
    )?;
    let z: f64 = source.parse_or(MEND_MONITOR_TREND_Z, "monitor.trend_z", defaults.z)?;
    if !(z.is_finite() && z > 0.0) {
        return Err(source.invalid(
            MEND_MONITOR_TREND_Z,
            "monitor.trend_z",
            "must be a number > 0",
        ));
    }
    Ok(TrendConfig { window, z })
}

fn at_least_one(
    source: &ConfigSource,
    var: &str,
    file_key: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    let value: usize = source.parse_or(var, file_key, default)?;
    if value == 0 {
        return Err(source.invalid(var, file_key, "must be at least 1"));
    }
    Ok(value)
}

/// `churn,fraud`: valid model names, at least one.
struct ModelList(Vec<ModelName>);

impl FromStr for ModelList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let models = text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| ModelName::new(name).map_err(|error| error.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if models.is_empty() {
            return Err("name at least one model".to_owned());
        }
        Ok(ModelList(models))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use mend_runtime::config::Env;

    use super::*;

    fn source(vars: &[(&str, &str)]) -> ConfigSource {
        ConfigSource::new(vars.iter().copied().collect::<Env>(), None)
    }

    #[test]
    fn defaults_and_overrides() {
        let config =
            MonitorConfig::from_source(&source(&[("HOSTNAME", "monitor-0")]), PathBuf::from("d"))
                .unwrap();
        assert_eq!(config.window_rows, defaults::WINDOW_ROWS);
        assert_eq!(config.instance, "monitor-0");
        assert!(config.models.is_empty());
        let config = MonitorConfig::from_source(
            &source(&[
                (MEND_MONITOR_MODELS, "churn, fraud"),
                (MEND_MONITOR_WINDOW_ROWS, "200"),
                (MEND_MONITOR_ACCURACY_TOLERANCE, "0.1"),
            ]),
            PathBuf::from("d"),
        )
        .unwrap();
        let names: Vec<&str> = config.models.iter().map(ModelName::as_str).collect();
        assert_eq!(names, ["churn", "fraud"]);
        assert_eq!(config.window_rows, 200);
        assert!((config.accuracy_tolerance - 0.1).abs() < 1e-12);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            (MEND_MONITOR_WINDOW_ROWS, "0"),
            (MEND_MONITOR_WINDOW_MS, "0"),
            (MEND_MONITOR_MODELS, "bad name!"),
            (MEND_MONITOR_ACCURACY_TOLERANCE, "2"),
            (MEND_MONITOR_POLL_MS, "soon"),
            (MEND_MONITOR_INSTANCE, "a.b"),
            (MEND_MONITOR_PH_DELTA, "-0.1"),
            (MEND_MONITOR_PH_DELTA, "NaN"),
            (MEND_MONITOR_PH_THRESHOLD, "0"),
            (MEND_MONITOR_PH_THRESHOLD, "-5"),
            (MEND_MONITOR_PH_THRESHOLD, "NaN"),
            (MEND_MONITOR_PH_ALPHA, "0"),
            (MEND_MONITOR_PH_ALPHA, "1.5"),
            (MEND_MONITOR_PH_ALPHA, "often"),
            (MEND_MONITOR_PH_MIN_INSTANCES, "0"),
            (MEND_MONITOR_TREND_Z, "0"),
            (MEND_MONITOR_TREND_Z, "inf"),
            (MEND_MONITOR_TREND_WINDOW, "-1"),
        ] {
            let error = MonitorConfig::from_source(&source(&[(var, value)]), PathBuf::from("d"))
                .unwrap_err();
            assert_eq!(error.var(), var, "{error}");
        }
    }

    #[test]
    fn page_hinkley_settings_default_to_the_measured_values_and_take_rivers() {
        let config = MonitorConfig::from_source(&source(&[]), PathBuf::from("d")).unwrap();
        assert_eq!(config.page_hinkley, PageHinkleyConfig::default());
        assert_eq!(
            (
                config.page_hinkley.delta,
                config.page_hinkley.threshold,
                config.page_hinkley.alpha,
                config.page_hinkley.min_instances
            ),
            (0.02, 75.0, 1.0, 30),
            "mend's measured defaults"
        );
        // River's defaults, which a user may choose.
        let config = MonitorConfig::from_source(
            &source(&[
                (MEND_MONITOR_PH_DELTA, "0.005"),
                (MEND_MONITOR_PH_THRESHOLD, "50"),
                (MEND_MONITOR_PH_ALPHA, "0.9999"),
                (MEND_MONITOR_PH_MIN_INSTANCES, "30"),
            ]),
            PathBuf::from("d"),
        )
        .unwrap();
        assert_eq!(
            config.page_hinkley,
            PageHinkleyConfig {
                min_instances: 30,
                delta: 0.005,
                threshold: 50.0,
                alpha: 0.9999,
            }
        );
        // A delta of 0 is allowed (no tolerance), and so is alpha exactly 1.
        let config = MonitorConfig::from_source(
            &source(&[
                (MEND_MONITOR_PH_DELTA, "0"),
                (MEND_MONITOR_PH_ALPHA, "1"),
                (MEND_MONITOR_PH_THRESHOLD, "inf"),
            ]),
            PathBuf::from("d"),
        )
        .unwrap();
        assert_eq!(config.page_hinkley.delta, 0.0);
        assert_eq!(config.page_hinkley.alpha, 1.0);
        assert!(
            config.page_hinkley.threshold.is_infinite(),
            "inf switches the detector off"
        );
    }

    #[test]
    fn the_trend_test_is_on_by_default_and_configurable() {
        let config = MonitorConfig::from_source(&source(&[]), PathBuf::from("d")).unwrap();
        assert_eq!(
            config.trend,
            TrendConfig {
                window: 1_000,
                z: 4.0
            }
        );
        let config = MonitorConfig::from_source(
            &source(&[
                (MEND_MONITOR_TREND_WINDOW, "0"),
                (MEND_MONITOR_TREND_Z, "4"),
            ]),
            PathBuf::from("d"),
        )
        .unwrap();
        assert_eq!(config.trend, TrendConfig { window: 0, z: 4.0 }, "0 is off");
    }

    #[test]
    fn page_hinkley_settings_come_from_the_config_file() {
        let file = mend_runtime::config::ConfigFile::parse(
            std::path::Path::new("mend.toml"),
            "[monitor]\nph_delta = 0.005\nph_threshold = 50\nph_alpha = 0.9999\nph_min_instances = 40\n",
        )
        .unwrap();
        let source = ConfigSource::new(Env::default(), Some(file));
        let config = MonitorConfig::from_source(&source, PathBuf::from("d")).unwrap();
        assert_eq!(
            config.page_hinkley,
            PageHinkleyConfig {
                min_instances: 40,
                delta: 0.005,
                threshold: 50.0,
                alpha: 0.9999,
            }
        );
    }
}
