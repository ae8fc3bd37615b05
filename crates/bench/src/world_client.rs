//! A client side for a running stack fed from a synthetic world, shared by `mend demo` and
//! `mend bench-heal`: one OIP request per batch, and a batch's rows then labels through ingest.

use anyhow::{Context, Result, bail};
use mend_proto::inference::ModelInferRequest;
use mend_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mend_proto::ingest::v1 as ingest_pb;
use mend_worlds::{Generator, Sample};
use tonic::transport::Channel;

/// The OIP request for every row of `sample`, a tensor per feature, with id `request_id`.
pub fn request(model: &str, request_id: &str, g: &Generator, sample: &Sample) -> ModelInferRequest {
    let mut request = mend_client::oip::sample_request(model, &g.feature_names(), sample);
    request.id = request_id.to_owned();
    request
}

/// One OIP request for `model` with a tensor per feature; returns (model_version, predicted
/// labels), one label per row of `sample`.
pub async fn infer(
    client: &mut GrpcInferenceServiceClient<Channel>,
    model: &str,
    request_id: &str,
    g: &Generator,
    sample: &Sample,
) -> Result<(String, Vec<String>)> {
    let response = client
        .model_infer(request(model, request_id, g, sample))
        .await
        .context("inference request failed")?
        .into_inner();
    let labels = mend_client::oip::labels(&response);
    if labels.len() != sample.labels.len() {
        bail!(
            "the server answered {} labels for {} rows",
            labels.len(),
            sample.labels.len()
        );
    }
    Ok((response.model_version, labels))
}

/// How many of `predicted` are the sample's true labels.
pub fn correct(g: &Generator, sample: &Sample, predicted: &[String]) -> usize {
    let classes = g.class_names();
    sample
        .labels
        .iter()
        .zip(predicted)
        .filter(|(t, p)| classes[**t] == **p)
        .count()
}

/// Rows, then their labels, through ingest for `model`; ids `row-<first_id>..`, times from
/// `first_time`. Any rejected row or label is an error.
pub async fn send(
    ingest: &mut ingest_pb::ingest_client::IngestClient<Channel>,
    model: &str,
    g: &Generator,
    sample: &Sample,
    first_id: u64,
    first_time: i64,
) -> Result<()> {
    let (rows, labels) = g.to_records(sample, "row-", first_id, first_time);
    send_rows(ingest, model, &rows).await?;
    send_labels(ingest, model, &labels).await
}

/// Ingests `rows` of `model` as one batch; any rejected row is an error.
pub async fn send_rows(
    ingest: &mut ingest_pb::ingest_client::IngestClient<Channel>,
    model: &str,
    rows: &[mend_core::record::RowRecord],
) -> Result<()> {
    let batch = mend_client::ingest::row_batch(model, rows);
    let summary = ingest
        .ingest_rows(tokio_stream::iter(vec![batch]))
        .await
        .context("ingesting rows failed")?
        .into_inner();
    if summary.rejected > 0 {
        bail!(
            "ingest rejected {} rows: {:?}",
            summary.rejected,
            summary.rejected_rows.first()
        );
    }
    Ok(())
}

/// Ingests `labels` of `model` as one batch; any rejected label is an error.
pub async fn send_labels(
    ingest: &mut ingest_pb::ingest_client::IngestClient<Channel>,
    model: &str,
    labels: &[mend_core::record::LabelRecord],
) -> Result<()> {
    let batch = mend_client::ingest::label_batch(model, labels);
    let summary = ingest
        .ingest_labels(tokio_stream::iter(vec![batch]))
        .await
        .context("ingesting labels failed")?
        .into_inner();
    if summary.rejected > 0 {
        bail!("ingest rejected {} labels", summary.rejected);
    }
    Ok(())
}

/// A first model for a synthetic world: the schema inferred from `table` (labels in `label`)
/// and a model trained on it.
pub fn train_first(
    table: &mend_core::RawTable,
    settings: &mend_core::TrainSettings,
) -> Result<(mend_core::Schema, mend_core::Artifact)> {
    let schema = mend_core::Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &mend_core::SchemaOverride::default(),
    )?;
    let frame = mend_core::Frame::from_table(&schema, table, true)?;
    let model = mend_core::train(&schema, &frame, settings)?;
    Ok((schema, model))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
