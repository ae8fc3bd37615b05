//! The bus and data log of a service deployed on its own, from its configuration.

use std::sync::Arc;

use mend_runtime::MendConfig;

use crate::{Bus, BusError, DataLog, DataLogError, JetStreamBus, JetStreamDataLog, SqliteDataLog};

/// Why [`open_configured`] failed, naming the setting to look at.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("failed to connect to NATS (MEND_NATS_URL)")]
    Nats(#[from] BusError),
    #[error("failed to open the data log in MEND_DATA_DIR")]
    DataLog(#[from] DataLogError),
}

/// With `MEND_NATS_URL` set: NATS JetStream as the bus and the data log. Without: no bus and
/// the SQLite data log in `MEND_DATA_DIR` (the caller says what it does without a bus).
pub async fn open_configured(
    config: &MendConfig,
) -> Result<(Option<Arc<dyn Bus>>, Arc<dyn DataLog>), OpenError> {
    match &config.nats {
        Some(nats) => {
            let jetstream = JetStreamBus::connect_configured(nats).await?;
            Ok((
                Some(Arc::new(jetstream.clone())),
                Arc::new(JetStreamDataLog::new(jetstream)),
            ))
        }
        None => Ok((None, Arc::new(SqliteDataLog::open(&config.data_dir)?))),
    }
}
