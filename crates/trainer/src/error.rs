//! What can go wrong in the trainer, by concern.

use mend_bus::{BusError, DataLogError};
use mend_client::ClientError;
use mend_core::CoreError;
use mend_runtime::config::ConfigError;

/// A failed retrain step or a trainer that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error("invalid trainer settings: {0}")]
    Config(#[from] ConfigError),
    #[error("registry: {0}")]
    Registry(#[from] ClientError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("data log: {0}")]
    DataLog(#[from] DataLogError),
    #[error("model: {0}")]
    Core(#[from] CoreError),
    /// Too few labeled rows to train and judge a candidate: retrying now will not help.
    #[error("only {found} labeled rows in the window, at least {needed} are needed")]
    NotEnoughRows { found: usize, needed: usize },
    /// A trigger named a model the registry has no version of. Events are hints: the trainer
    /// never creates a model on the bus's word; the first version is registered by hand.
    #[error(
        "the registry knows no model named {model}; a trigger is only a hint, so nothing is \
         trained (train a first version with `mend train` and register it with \
         `mend models register`)"
    )]
    UnknownModel { model: String },
    #[error("training task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl TrainerError {
    /// Whether a later attempt of the same retrain may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            TrainerError::NotEnoughRows { .. }
                | TrainerError::UnknownModel { .. }
                | TrainerError::Config(_)
        )
    }
}
