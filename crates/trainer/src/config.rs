//! The trainer's own settings, read through `mend-runtime`'s config source: each from its
//! `MEND_TRAINER_*` variable, else the `[trainer]` table of the `MEND_CONFIG` file, else the
//! default here. Errors name the variable.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use mend_bus::ModelName;
use mend_core::{Algorithm, LogisticSettings, TrainSettings};
use mend_runtime::config::{ConfigError, ConfigSource};
use mend_runtime::{MendConfig, Secret};

use crate::follow_up::FollowUpPolicy;
use crate::gate::GatePolicy;
use crate::webhook::{HttpUrl, WebhookConfig};

/// Newest labeled rows in a training window, for every model without its own setting.
pub const MEND_TRAINER_WINDOW_ROWS: &str = "MEND_TRAINER_WINDOW_ROWS";
/// Per-model window sizes: `churn=50000,fraud=5000`.
pub const MEND_TRAINER_MODEL_WINDOW_ROWS: &str = "MEND_TRAINER_MODEL_WINDOW_ROWS";
/// Fewest labeled rows worth a retrain; fewer is an alert, not a model.
pub const MEND_TRAINER_MIN_ROWS: &str = "MEND_TRAINER_MIN_ROWS";
/// Share of the newest rows held out to compare candidate and champion, in (0, 1).
pub const MEND_TRAINER_HOLDOUT_FRACTION: &str = "MEND_TRAINER_HOLDOUT_FRACTION";
/// Labels that must be logged after the data a retrain read before a drift alarm may start
/// the next retrain of the same model (the cooldown, counted in data, so a stream heals the
/// same at any pace).
pub const MEND_TRAINER_COOLDOWN_LABELS: &str = "MEND_TRAINER_COOLDOWN_LABELS";
/// Most the label cooldown grows to after retrains for data drift alone were rejected in a
/// row (it doubles with each), as a multiple of `MEND_TRAINER_COOLDOWN_LABELS`.
pub const MEND_TRAINER_BACKOFF_MAX_FACTOR: &str = "MEND_TRAINER_BACKOFF_MAX_FACTOR";
/// A wall-clock guard after a retrain before the next one of the same model starts, in ms
/// (0: none; the cooldown that decides is `MEND_TRAINER_COOLDOWN_LABELS`).
pub const MEND_TRAINER_COOLDOWN_MS: &str = "MEND_TRAINER_COOLDOWN_MS";
/// How long a first trigger waits for duplicates to arrive and join its run, in ms.
pub const MEND_TRAINER_DEBOUNCE_MS: &str = "MEND_TRAINER_DEBOUNCE_MS";
/// Attempts of a failing retrain before it is given up with an alert.
pub const MEND_TRAINER_MAX_ATTEMPTS: &str = "MEND_TRAINER_MAX_ATTEMPTS";
/// Delay before the first retry; doubles with every further one, in ms.
pub const MEND_TRAINER_BACKOFF_MS: &str = "MEND_TRAINER_BACKOFF_MS";
/// The metric the gate compares (`accuracy`, `macro_f1`, `roc_auc`, `log_loss`, `brier`).
pub const MEND_TRAINER_METRIC: &str = "MEND_TRAINER_METRIC";
/// How much better than the champion a candidate must be on the metric.
pub const MEND_TRAINER_MARGIN: &str = "MEND_TRAINER_MARGIN";
/// Optional floor of the metric: a champion below it yields to a candidate above it.
pub const MEND_TRAINER_FLOOR: &str = "MEND_TRAINER_FLOOR";
/// Labeled rows the rollback guard watches after a promotion; 0 turns the guard off.
pub const MEND_TRAINER_GUARD_ROWS: &str = "MEND_TRAINER_GUARD_ROWS";
/// How much worse than its predecessor (live accuracy) a new champion may be.
pub const MEND_TRAINER_GUARD_MARGIN: &str = "MEND_TRAINER_GUARD_MARGIN";
/// How often the guard looks for new labels, in ms.
pub const MEND_TRAINER_GUARD_POLL_MS: &str = "MEND_TRAINER_GUARD_POLL_MS";
/// Labeled rows after a promotion for performance drift before the follow-up retrain that
/// checks whether performance keeps sliding; 0 turns follow-ups off.
pub const MEND_TRAINER_FOLLOW_UP_LABELS: &str = "MEND_TRAINER_FOLLOW_UP_LABELS";
/// The newest of those labeled rows a follow-up trains and judges on.
pub const MEND_TRAINER_FOLLOW_UP_WINDOW: &str = "MEND_TRAINER_FOLLOW_UP_WINDOW";
/// A follow-up candidate that beats the champion by at least this is followed up in turn.
pub const MEND_TRAINER_FOLLOW_UP_MARGIN: &str = "MEND_TRAINER_FOLLOW_UP_MARGIN";
/// Rejected follow-ups of one champion in a row before the chain ends (0: the first does).
pub const MEND_TRAINER_FOLLOW_UP_PATIENCE: &str = "MEND_TRAINER_FOLLOW_UP_PATIENCE";
/// Scheduled retrains: `churn=1h,fraud=30m` (units ms, s, m, h, d).
pub const MEND_TRAINER_SCHEDULE: &str = "MEND_TRAINER_SCHEDULE";
/// Comma-separated `http://` URLs every alert is POSTed to.
pub const MEND_TRAINER_WEBHOOKS: &str = "MEND_TRAINER_WEBHOOKS";
/// Key of the `X-Mend-Signature` HMAC-SHA256 of each webhook body.
pub const MEND_TRAINER_WEBHOOK_SECRET: &str = "MEND_TRAINER_WEBHOOK_SECRET";
/// Per-attempt timeout of a webhook POST, in ms.
pub const MEND_TRAINER_WEBHOOK_TIMEOUT_MS: &str = "MEND_TRAINER_WEBHOOK_TIMEOUT_MS";
/// Attempts per webhook and alert before the alert is redelivered later.
pub const MEND_TRAINER_WEBHOOK_ATTEMPTS: &str = "MEND_TRAINER_WEBHOOK_ATTEMPTS";
/// Durable consumer name; replicas sharing it share the work.
pub const MEND_TRAINER_DURABLE: &str = "MEND_TRAINER_DURABLE";
/// How long a trigger may stay unsettled before the bus redelivers it, in ms. A live trainer
/// keeps extending it while the run goes on; after a crash, it is how long the trigger waits
/// for the next trainer.
pub const MEND_TRAINER_ACK_WAIT_MS: &str = "MEND_TRAINER_ACK_WAIT_MS";
/// L2 strength of candidate models.
pub const MEND_TRAINER_L2: &str = "MEND_TRAINER_L2";
/// Past champions judged beside every candidate on the same held-out rows, newest first
/// (versions with another schema are skipped); the best of them all may be recalled. 0 turns
/// recall off.
pub const MEND_TRAINER_RECALL_VERSIONS: &str = "MEND_TRAINER_RECALL_VERSIONS";

/// Every variable above, for `--help` texts and docs.
pub const ALL: &[&str] = &[
    MEND_TRAINER_WINDOW_ROWS,
    MEND_TRAINER_MODEL_WINDOW_ROWS,
    MEND_TRAINER_MIN_ROWS,
    MEND_TRAINER_HOLDOUT_FRACTION,
    MEND_TRAINER_COOLDOWN_LABELS,
    MEND_TRAINER_BACKOFF_MAX_FACTOR,
    MEND_TRAINER_COOLDOWN_MS,
    MEND_TRAINER_DEBOUNCE_MS,
    MEND_TRAINER_MAX_ATTEMPTS,
    MEND_TRAINER_BACKOFF_MS,
    MEND_TRAINER_METRIC,
    MEND_TRAINER_MARGIN,
    MEND_TRAINER_FLOOR,
    MEND_TRAINER_GUARD_ROWS,
    MEND_TRAINER_GUARD_MARGIN,
    MEND_TRAINER_GUARD_POLL_MS,
    MEND_TRAINER_FOLLOW_UP_LABELS,
    MEND_TRAINER_FOLLOW_UP_WINDOW,
    MEND_TRAINER_FOLLOW_UP_MARGIN,
    MEND_TRAINER_FOLLOW_UP_PATIENCE,
    MEND_TRAINER_SCHEDULE,
    MEND_TRAINER_WEBHOOKS,
    MEND_TRAINER_WEBHOOK_SECRET,
    MEND_TRAINER_WEBHOOK_TIMEOUT_MS,
    MEND_TRAINER_WEBHOOK_ATTEMPTS,
    MEND_TRAINER_DURABLE,
    MEND_TRAINER_ACK_WAIT_MS,
    MEND_TRAINER_L2,
    MEND_TRAINER_RECALL_VERSIONS,
];

/// Defaults a user can count on.
pub mod defaults {
    pub const WINDOW_ROWS: usize = 20_000;
    pub const MIN_ROWS: usize = 100;
    pub const HOLDOUT_FRACTION: f64 = 0.2;
    pub const COOLDOWN_LABELS: usize = 1_000;
    pub const BACKOFF_MAX_FACTOR: usize = 32;
    pub const COOLDOWN_MS: u64 = 0;
    /// Short: the monitor publishes the alarms of one look together, and at 10,000 rows a
    /// second every 100 ms of waiting is 1,000 rows served by the old model (BENCHMARKS run 7).
    pub const DEBOUNCE_MS: u64 = 20;
    pub const MAX_ATTEMPTS: u32 = 4;
    pub const BACKOFF_MS: u64 = 1_000;
    pub const METRIC: &str = "accuracy";
    pub const MARGIN: f64 = 0.005;
    pub const GUARD_ROWS: usize = 500;
    pub const GUARD_MARGIN: f64 = 0.02;
    pub const GUARD_POLL_MS: u64 = 25;
    pub const FOLLOW_UP_LABELS: usize = 1_000;
    pub const FOLLOW_UP_WINDOW: usize = 1_000;
    pub const FOLLOW_UP_MARGIN: f64 = 0.0;
    pub const FOLLOW_UP_PATIENCE: u32 = 1;
    pub const RECALL_VERSIONS: usize = 10;
    pub use crate::webhook::{
        DEFAULT_ATTEMPTS as WEBHOOK_ATTEMPTS, DEFAULT_TIMEOUT_MS as WEBHOOK_TIMEOUT_MS,
    };
    pub const DURABLE: &str = "mend-trainer";
    pub const ACK_WAIT_MS: u64 = 60_000;
    /// Shorter would leave little room between the keep-alives of a run in progress.
    pub const MIN_ACK_WAIT_MS: u64 = 1_000;
}

/// How the rollback guard watches a new champion.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPolicy {
    /// Labeled rows after the promotion to judge on; 0: no guard.
    pub rows: usize,
    pub margin: f64,
    pub poll: Duration,
}

/// Everything the trainer needs beyond the shared runtime settings.
#[derive(Debug, Clone)]
pub struct TrainerConfig {
    pub window_rows: usize,
    pub model_window_rows: BTreeMap<ModelName, usize>,
    pub min_rows: usize,
    pub train: TrainSettings,
    /// Labels after the data the last retrain read before a drift alarm starts the next.
    pub cooldown_labels: usize,
    /// Most the label cooldown grows to (a multiple of it) after rejected retrains for data
    /// drift alone.
    pub backoff_max_factor: usize,
    /// A wall-clock guard after each retrain (zero: none).
    pub cooldown: Duration,
    pub debounce: Duration,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub gate: GatePolicy,
    pub guard: GuardPolicy,
    pub follow_up: FollowUpPolicy,
    pub schedules: BTreeMap<ModelName, Duration>,
    pub webhooks: WebhookConfig,
    pub durable: String,
    /// Redelivery delay of an unsettled trigger (extended while its run goes on).
    pub ack_wait: Duration,
    /// Past champions judged beside each candidate (0: no recall; see `crate::recall`).
    pub recall_versions: usize,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            window_rows: defaults::WINDOW_ROWS,
            model_window_rows: BTreeMap::new(),
            min_rows: defaults::MIN_ROWS,
            train: TrainSettings {
                holdout_fraction: defaults::HOLDOUT_FRACTION,
                ..TrainSettings::default()
            },
            cooldown_labels: defaults::COOLDOWN_LABELS,
            backoff_max_factor: defaults::BACKOFF_MAX_FACTOR,
            cooldown: Duration::from_millis(defaults::COOLDOWN_MS),
            debounce: Duration::from_millis(defaults::DEBOUNCE_MS),
            max_attempts: defaults::MAX_ATTEMPTS,
            backoff: Duration::from_millis(defaults::BACKOFF_MS),
            gate: GatePolicy {
                metric: defaults::METRIC.to_owned(),
                margin: defaults::MARGIN,
                floor: None,
            },
            guard: GuardPolicy {
                rows: defaults::GUARD_ROWS,
                margin: defaults::GUARD_MARGIN,
                poll: Duration::from_millis(defaults::GUARD_POLL_MS),
            },
            follow_up: FollowUpPolicy {
                labels: defaults::FOLLOW_UP_LABELS,
                window: defaults::FOLLOW_UP_WINDOW,
                margin: defaults::FOLLOW_UP_MARGIN,
                patience: defaults::FOLLOW_UP_PATIENCE,
                poll: Duration::from_millis(defaults::GUARD_POLL_MS),
            },
            schedules: BTreeMap::new(),
            webhooks: WebhookConfig::default(),
            durable: defaults::DURABLE.to_owned(),
            ack_wait: Duration::from_millis(defaults::ACK_WAIT_MS),
            recall_versions: defaults::RECALL_VERSIONS,
        }
    }
}

impl TrainerConfig {
    /// Reads the trainer settings from the same environment and file as `config`.
    pub fn from_mend(config: &MendConfig) -> Result<TrainerConfig, ConfigError> {
        TrainerConfig::from_source(config.source())
    }

    /// Reads the trainer settings from an environment and optional file.
    pub fn from_source(source: &ConfigSource) -> Result<TrainerConfig, ConfigError> {
        let at_least_one = |var: &str, key: &str, value: usize| {
            if value == 0 {
                return Err(source.invalid(var, key, "must be at least 1"));
            }
            Ok(value)
        };
        let window_rows = at_least_one(
            MEND_TRAINER_WINDOW_ROWS,
            "trainer.window_rows",
            source.parse_or(
                MEND_TRAINER_WINDOW_ROWS,
                "trainer.window_rows",
                defaults::WINDOW_ROWS,
            )?,
        )?;
        let model_window_rows: PerModel<usize> = source.parse_or(
            MEND_TRAINER_MODEL_WINDOW_ROWS,
            "trainer.model_window_rows",
            PerModel::default(),
        )?;
        if model_window_rows.0.values().any(|rows| *rows == 0) {
            return Err(source.invalid(
                MEND_TRAINER_MODEL_WINDOW_ROWS,
                "trainer.model_window_rows",
                "every window must hold at least 1 row",
            ));
        }
        let min_rows: usize = source.parse_or(
            MEND_TRAINER_MIN_ROWS,
            "trainer.min_rows",
            defaults::MIN_ROWS,
        )?;
        // `time_split` needs 4 rows to train on some and hold some out.
        if min_rows < 4 {
            return Err(source.invalid(
                MEND_TRAINER_MIN_ROWS,
                "trainer.min_rows",
                "must be at least 4 (rows to train on and to hold out)",
            ));
        }
        let holdout_fraction: f64 = source.parse_or(
            MEND_TRAINER_HOLDOUT_FRACTION,
            "trainer.holdout_fraction",
            defaults::HOLDOUT_FRACTION,
        )?;
        if !(holdout_fraction > 0.0 && holdout_fraction < 1.0) {
            return Err(source.invalid(
                MEND_TRAINER_HOLDOUT_FRACTION,
                "trainer.holdout_fraction",
                "must be a share strictly between 0 and 1, e.g. 0.2",
            ));
        }
        let l2: f64 = source.parse_or(
            MEND_TRAINER_L2,
            "trainer.l2",
            LogisticSettings::default().l2,
        )?;
        if !(l2.is_finite() && l2 >= 0.0) {
            return Err(source.invalid(
                MEND_TRAINER_L2,
                "trainer.l2",
                "must be a finite number >= 0",
            ));
        }
        let cooldown_labels: usize = source.parse_or(
            MEND_TRAINER_COOLDOWN_LABELS,
            "trainer.cooldown_labels",
            defaults::COOLDOWN_LABELS,
        )?;
        let backoff_max_factor = at_least_one(
            MEND_TRAINER_BACKOFF_MAX_FACTOR,
            "trainer.backoff_max_factor",
            source.parse_or(
                MEND_TRAINER_BACKOFF_MAX_FACTOR,
                "trainer.backoff_max_factor",
                defaults::BACKOFF_MAX_FACTOR,
            )?,
        )?;
        let cooldown = millis(
            source,
            MEND_TRAINER_COOLDOWN_MS,
            "trainer.cooldown_ms",
            defaults::COOLDOWN_MS,
        )?;
        let debounce = millis(
            source,
            MEND_TRAINER_DEBOUNCE_MS,
            "trainer.debounce_ms",
            defaults::DEBOUNCE_MS,
        )?;
        let max_attempts: u32 = source.parse_or(
            MEND_TRAINER_MAX_ATTEMPTS,
            "trainer.max_attempts",
            defaults::MAX_ATTEMPTS,
        )?;
        if max_attempts == 0 {
            return Err(source.invalid(
                MEND_TRAINER_MAX_ATTEMPTS,
                "trainer.max_attempts",
                "must be at least 1",
            ));
        }
        let backoff = millis(
            source,
            MEND_TRAINER_BACKOFF_MS,
            "trainer.backoff_ms",
            defaults::BACKOFF_MS,
        )?;
        let metric: String = source.parse_or(
            MEND_TRAINER_METRIC,
            "trainer.metric",
            defaults::METRIC.to_owned(),
        )?;
        if !crate::gate::KNOWN_METRICS.contains(&metric.as_str()) {
            return Err(source.invalid(
                MEND_TRAINER_METRIC,
                "trainer.metric",
                &format!("must be one of {}", crate::gate::KNOWN_METRICS.join(", ")),
            ));
        }
        let margin: f64 =
            source.parse_or(MEND_TRAINER_MARGIN, "trainer.margin", defaults::MARGIN)?;
        if !(margin.is_finite() && margin >= 0.0) {
            return Err(source.invalid(
                MEND_TRAINER_MARGIN,
                "trainer.margin",
                "must be a finite number >= 0",
            ));
        }
        let floor: Option<f64> = source.parse(MEND_TRAINER_FLOOR, "trainer.floor")?;
        if floor.is_some_and(|floor| !floor.is_finite()) {
            return Err(source.invalid(
                MEND_TRAINER_FLOOR,
                "trainer.floor",
                "must be a finite number",
            ));
        }
        let guard_rows: usize = source.parse_or(
            MEND_TRAINER_GUARD_ROWS,
            "trainer.guard_rows",
            defaults::GUARD_ROWS,
        )?;
        let guard_margin: f64 = source.parse_or(
            MEND_TRAINER_GUARD_MARGIN,
            "trainer.guard_margin",
            defaults::GUARD_MARGIN,
        )?;
        if !(guard_margin.is_finite() && guard_margin >= 0.0) {
            return Err(source.invalid(
                MEND_TRAINER_GUARD_MARGIN,
                "trainer.guard_margin",
                "must be a finite number >= 0",
            ));
        }
        let guard_poll = millis(
            source,
            MEND_TRAINER_GUARD_POLL_MS,
            "trainer.guard_poll_ms",
            defaults::GUARD_POLL_MS,
        )?;
        if guard_poll.is_zero() {
            return Err(source.invalid(
                MEND_TRAINER_GUARD_POLL_MS,
                "trainer.guard_poll_ms",
                "must be at least 1 ms",
            ));
        }
        let follow_up_labels: usize = source.parse_or(
            MEND_TRAINER_FOLLOW_UP_LABELS,
            "trainer.follow_up_labels",
            defaults::FOLLOW_UP_LABELS,
        )?;
        let follow_up_window = at_least_one(
            MEND_TRAINER_FOLLOW_UP_WINDOW,
            "trainer.follow_up_window",
            source.parse_or(
                MEND_TRAINER_FOLLOW_UP_WINDOW,
                "trainer.follow_up_window",
                defaults::FOLLOW_UP_WINDOW,
            )?,
        )?;
        let follow_up_patience: u32 = source.parse_or(
            MEND_TRAINER_FOLLOW_UP_PATIENCE,
            "trainer.follow_up_patience",
            defaults::FOLLOW_UP_PATIENCE,
        )?;
        let recall_versions: usize = source.parse_or(
            MEND_TRAINER_RECALL_VERSIONS,
            "trainer.recall_versions",
            defaults::RECALL_VERSIONS,
        )?;
        let follow_up_margin: f64 = source.parse_or(
            MEND_TRAINER_FOLLOW_UP_MARGIN,
            "trainer.follow_up_margin",
            defaults::FOLLOW_UP_MARGIN,
        )?;
        if !(follow_up_margin.is_finite() && follow_up_margin >= 0.0) {
            return Err(source.invalid(
                MEND_TRAINER_FOLLOW_UP_MARGIN,
                "trainer.follow_up_margin",
                "must be a finite number >= 0",
            ));
        }
        let schedules: PerModel<HumanDuration> = source.parse_or(
            MEND_TRAINER_SCHEDULE,
            "trainer.schedule",
            PerModel::default(),
        )?;
        if schedules
            .0
            .values()
            .any(|every| every.0 < Duration::from_secs(1))
        {
            return Err(source.invalid(
                MEND_TRAINER_SCHEDULE,
                "trainer.schedule",
                "every interval must be at least 1s",
            ));
        }
        let urls: UrlList = source.parse_or(
            MEND_TRAINER_WEBHOOKS,
            "trainer.webhooks",
            UrlList::default(),
        )?;
        let secret: Option<Secret> =
            source.secret(MEND_TRAINER_WEBHOOK_SECRET, "trainer.webhook_secret")?;
        let webhook_timeout = millis(
            source,
            MEND_TRAINER_WEBHOOK_TIMEOUT_MS,
            "trainer.webhook_timeout_ms",
            defaults::WEBHOOK_TIMEOUT_MS,
        )?;
        if webhook_timeout.is_zero() {
            return Err(source.invalid(
                MEND_TRAINER_WEBHOOK_TIMEOUT_MS,
                "trainer.webhook_timeout_ms",
                "must be at least 1 ms",
            ));
        }
        let webhook_attempts: u32 = source.parse_or(
            MEND_TRAINER_WEBHOOK_ATTEMPTS,
            "trainer.webhook_attempts",
            defaults::WEBHOOK_ATTEMPTS,
        )?;
        if webhook_attempts == 0 {
            return Err(source.invalid(
                MEND_TRAINER_WEBHOOK_ATTEMPTS,
                "trainer.webhook_attempts",
                "must be at least 1",
            ));
        }
        let durable: String = source.parse_or(
            MEND_TRAINER_DURABLE,
            "trainer.durable",
            defaults::DURABLE.to_owned(),
        )?;
        let durable_ok = !durable.is_empty()
            && durable.len() <= mend_bus::MAX_DURABLE_LEN - 9
            && durable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !durable_ok {
            return Err(source.invalid(
                MEND_TRAINER_DURABLE,
                "trainer.durable",
                "must be 1 to 39 characters of [A-Za-z0-9_-]",
            ));
        }
        let ack_wait = millis(
            source,
            MEND_TRAINER_ACK_WAIT_MS,
            "trainer.ack_wait_ms",
            defaults::ACK_WAIT_MS,
        )?;
        if ack_wait < Duration::from_millis(defaults::MIN_ACK_WAIT_MS) {
            return Err(source.invalid(
                MEND_TRAINER_ACK_WAIT_MS,
                "trainer.ack_wait_ms",
                "must be at least 1000 ms",
            ));
        }
        Ok(TrainerConfig {
            window_rows,
            model_window_rows: model_window_rows.0,
            min_rows,
            train: TrainSettings {
                holdout_fraction,
                algorithm: Algorithm::Logistic(LogisticSettings {
                    l2,
                    ..LogisticSettings::default()
                }),
                ..TrainSettings::default()
            },
            cooldown_labels,
            backoff_max_factor,
            cooldown,
            debounce,
            max_attempts,
            backoff,
            gate: GatePolicy {
                metric,
                margin,
                floor,
            },
            guard: GuardPolicy {
                rows: guard_rows,
                margin: guard_margin,
                poll: guard_poll,
            },
            follow_up: FollowUpPolicy {
                labels: follow_up_labels,
                window: follow_up_window,
                margin: follow_up_margin,
                patience: follow_up_patience,
                poll: guard_poll,
            },
            schedules: schedules
                .0
                .into_iter()
                .map(|(model, every)| (model, every.0))
                .collect(),
            webhooks: WebhookConfig {
                urls: urls.0,
                secret,
                timeout: webhook_timeout,
                attempts: webhook_attempts,
            },
            durable,
            ack_wait,
            recall_versions,
        })
    }

    /// The newest labeled rows a retrain of `model` reads when the trigger names no window.
    pub fn window_rows_for(&self, model: &ModelName) -> usize {
        self.model_window_rows
            .get(model)
            .copied()
            .unwrap_or(self.window_rows)
    }
}

fn millis(
    source: &ConfigSource,
    var: &str,
    key: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    let ms: u64 = source.parse_or(var, key, default)?;
    Ok(Duration::from_millis(ms))
}

/// `model=value,model=value`, for settings that differ per model.
#[derive(Debug, Clone, PartialEq)]
pub struct PerModel<T>(pub BTreeMap<ModelName, T>);

impl<T> Default for PerModel<T> {
    fn default() -> Self {
        PerModel(BTreeMap::new())
    }
}

impl<T> FromStr for PerModel<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut out = BTreeMap::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (model, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected `model=value`, got `{item}`"))?;
            let model = ModelName::new(model.trim()).map_err(|error| error.to_string())?;
            let value = value
                .trim()
                .parse::<T>()
                .map_err(|error| format!("`{item}`: {error}"))?;
            out.insert(model, value);
        }
        Ok(PerModel(out))
    }
}

/// A duration written for people: `500ms`, `30s`, `5m`, `1h`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{text}` has no unit (ms, s, m, h or d)"))?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` does not start with a whole number"))?;
        let millis_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => return Err(format!("unknown unit `{other}` (use ms, s, m, h or d)")),
        };
        Ok(HumanDuration(Duration::from_millis(
            number.saturating_mul(millis_per_unit),
        )))
    }
}

/// Comma-separated webhook URLs.
#[derive(Debug, Clone, Default, PartialEq)]
struct UrlList(Vec<HttpUrl>);

impl FromStr for UrlList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(HttpUrl::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(UrlList)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;

    use mend_runtime::config::Env;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<TrainerConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TrainerConfig::from_source(&ConfigSource::new(Env::from_map(map), None))
    }

    #[test]
    fn defaults_hold_without_variables() {
        let config = load(&[]).unwrap();
        assert_eq!(config.window_rows, 20_000);
        assert_eq!(config.gate.metric, "accuracy");
        assert!((config.gate.margin - 0.005).abs() < 1e-12);
        assert_eq!(config.gate.floor, None);
        assert!(config.webhooks.urls.is_empty());
        assert!(config.schedules.is_empty());
        assert_eq!(config.ack_wait, Duration::from_secs(60));
        assert_eq!(config.follow_up.labels, 1_000);
        assert_eq!(config.follow_up.window, 1_000);
        assert!(config.follow_up.margin.abs() < 1e-12);
        assert_eq!(config.follow_up.patience, 1);
        assert_eq!(config.recall_versions, 10);
        assert_eq!(
            load(&[(MEND_TRAINER_RECALL_VERSIONS, "0")])
                .unwrap()
                .recall_versions,
            0
        );
    }

    #[test]
    fn follow_ups_are_configurable_and_can_be_turned_off() {
        let config = load(&[
            (MEND_TRAINER_FOLLOW_UP_LABELS, "0"),
            (MEND_TRAINER_FOLLOW_UP_WINDOW, "300"),
            (MEND_TRAINER_FOLLOW_UP_MARGIN, "0.05"),
            (MEND_TRAINER_FOLLOW_UP_PATIENCE, "3"),
            (MEND_TRAINER_GUARD_POLL_MS, "250"),
        ])
        .unwrap();
        assert_eq!(config.follow_up.patience, 3);
        assert_eq!(config.follow_up.labels, 0);
        assert_eq!(config.follow_up.window, 300);
        assert!((config.follow_up.margin - 0.05).abs() < 1e-12);
        assert_eq!(config.follow_up.poll, Duration::from_millis(250));
    }

    #[test]
    fn per_model_windows_and_schedules_parse() {
        let config = load(&[
            (MEND_TRAINER_MODEL_WINDOW_ROWS, "churn=500, fraud=9000"),
            (MEND_TRAINER_SCHEDULE, "churn=90s,fraud=1h"),
            (
                MEND_TRAINER_WEBHOOKS,
                "http://127.0.0.1:9/hook, http://example.invalid/x",
            ),
        ])
        .unwrap();
        let churn = ModelName::new("churn").unwrap();
        let other = ModelName::new("other").unwrap();
        assert_eq!(config.window_rows_for(&churn), 500);
        assert_eq!(config.window_rows_for(&other), 20_000);
        assert_eq!(config.schedules[&churn], Duration::from_secs(90));
        assert_eq!(config.webhooks.urls.len(), 2);
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            (MEND_TRAINER_MARGIN, "-1"),
            (MEND_TRAINER_METRIC, "vibes"),
            (MEND_TRAINER_HOLDOUT_FRACTION, "1.5"),
            (MEND_TRAINER_SCHEDULE, "churn=5"),
            (MEND_TRAINER_WEBHOOKS, "https://secure.invalid/"),
            (MEND_TRAINER_MIN_ROWS, "2"),
            (MEND_TRAINER_COOLDOWN_MS, "soon"),
            (MEND_TRAINER_ACK_WAIT_MS, "10"),
            (MEND_TRAINER_FOLLOW_UP_WINDOW, "0"),
            (MEND_TRAINER_FOLLOW_UP_MARGIN, "-0.1"),
            (MEND_TRAINER_FOLLOW_UP_LABELS, "many"),
            (MEND_TRAINER_FOLLOW_UP_PATIENCE, "-1"),
            (MEND_TRAINER_RECALL_VERSIONS, "all"),
        ] {
            let error = load(&[(var, value)]).unwrap_err().to_string();
            assert!(error.contains(var), "{var}: {error}");
        }
    }
}
