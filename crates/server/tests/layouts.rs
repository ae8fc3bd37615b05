//! Both input layouts, typed and raw contents, give identical answers, equal to what
//! `Artifact::predict_proba` (what `mend predict` runs) gives on the same rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Rows, Setup, answer, start, tensor, train, wants};
use mend_proto::inference::InferTensorContents;
use mend_server::InMemoryModelSource;

/// What `mend predict` says for the rows: f32 probabilities and labels.
fn expected(artifact: &mend_core::Artifact, rows: &Rows) -> (Vec<f32>, Vec<String>) {
    let proba = artifact.predict_proba(&rows.frame()).unwrap();
    let labels = artifact
        .labels_of(&proba)
        .into_iter()
        .map(str::to_owned)
        .collect();
    (proba.iter().map(|&p| p as f32).collect(), labels)
}

#[tokio::test]
async fn per_feature_layout_typed_and_raw_match_predict() {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(5, 2, 2, 11);
    source.promote("churn", trained.bytes.clone());
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    let rows = Rows::draw(&mut trained.generator, 257, 99);
    server
        .wait_for_champion(&rows.per_feature("churn", false), 1)
        .await;

    let typed = client
        .model_infer(rows.per_feature("churn", false))
        .await
        .unwrap()
        .into_inner();
    let raw = client
        .model_infer(rows.per_feature("churn", true))
        .await
        .unwrap()
        .into_inner();
    // Raw inputs get raw outputs, typed inputs typed ones (the OIP/MLServer rule).
    assert!(typed.raw_output_contents.is_empty());
    assert!(typed.outputs.iter().all(|o| o.contents.is_some()));
    assert_eq!(raw.raw_output_contents.len(), 2);
    assert!(raw.outputs.iter().all(|o| o.contents.is_none()));
    assert_eq!(typed.outputs[0].shape, vec![257, 2]);
    assert_eq!(typed.outputs[1].shape, vec![257]);

    let (probabilities, labels) = expected(&trained.artifact, &rows);
    let typed = answer(&typed);
    assert_eq!(typed, answer(&raw));
    assert_eq!(typed.version, "1");
    assert_eq!(typed.probabilities, probabilities);
    assert_eq!(typed.labels, labels);
    assert!(labels.iter().any(|l| l == "yes") && labels.iter().any(|l| l == "no"));
    server.stop().await;
}

#[tokio::test]
async fn matrix_layout_fp32_fp64_typed_and_raw_match_predict() {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(4, 0, 3, 12);
    source.promote("iris", trained.bytes.clone());
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    let rows = Rows::draw(&mut trained.generator, 100, 5);
    server
        .wait_for_champion(&rows.matrix("iris", false, false), 1)
        .await;

    let (probabilities, labels) = expected(&trained.artifact, &rows);
    let mut answers = Vec::new();
    for (raw, fp64) in [(false, false), (true, false), (false, true), (true, true)] {
        let response = client
            .model_infer(rows.matrix("iris", raw, fp64))
            .await
            .unwrap();
        answers.push(answer(response.get_ref()));
    }
    // The per-feature layout of the same rows answers the same.
    for raw in [false, true] {
        let response = client
            .model_infer(rows.per_feature("iris", raw))
            .await
            .unwrap();
        answers.push(answer(response.get_ref()));
    }
    for got in &answers {
        assert_eq!(got.probabilities, probabilities);
        assert_eq!(got.labels, labels);
        assert_eq!(got.probabilities.len(), 300);
    }
    server.stop().await;
}

#[tokio::test]
async fn numeric_datatypes_and_requested_outputs() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(2, 0, 2, 13);
    source.promote("tiny", trained.bytes.clone());
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    let rows = Rows {
        numeric: vec![vec![1.0, 0.0, -3.0], vec![0.0, 1.0, 2.0]],
        categorical: Vec::new(),
    };
    server
        .wait_for_champion(&rows.per_feature("tiny", false), 1)
        .await;
    let (probabilities, labels) = expected(&trained.artifact, &rows);

    // x0 as INT64, x1 as BOOL / INT32 / FP64: same values, same answers.
    let x0 = tensor(
        "x0",
        "INT64",
        vec![3, 1],
        Some(InferTensorContents {
            int64_contents: vec![1, 0, -3],
            ..Default::default()
        }),
    );
    let x1_variants = [
        tensor(
            "x1",
            "INT32",
            vec![3],
            Some(InferTensorContents {
                int_contents: vec![0, 1, 2],
                ..Default::default()
            }),
        ),
        tensor(
            "x1",
            "FP64",
            vec![3],
            Some(InferTensorContents {
                fp64_contents: vec![0.0, 1.0, 2.0],
                ..Default::default()
            }),
        ),
    ];
    for x1 in x1_variants {
        let mut request = common::request("tiny", vec![x0.clone(), x1], Vec::new());
        request.id = "req-7".into();
        let response = client.model_infer(request).await.unwrap().into_inner();
        assert_eq!(response.id, "req-7");
        assert_eq!(response.model_name, "tiny");
        let got = answer(&response);
        assert_eq!(
            (got.probabilities, got.labels),
            (probabilities.clone(), labels.clone())
        );
    }
    // BOOL and raw INT32 / BOOL.
    let bools = common::request(
        "tiny",
        vec![
            tensor(
                "x0",
                "BOOL",
                vec![2],
                Some(InferTensorContents {
                    bool_contents: vec![true, false],
                    ..Default::default()
                }),
            ),
            tensor(
                "x1",
                "BOOL",
                vec![2],
                Some(InferTensorContents {
                    bool_contents: vec![false, true],
                    ..Default::default()
                }),
            ),
        ],
        Vec::new(),
    );
    let raw_bools = common::request(
        "tiny",
        vec![
            tensor("x0", "INT32", vec![2], None),
            tensor("x1", "BOOL", vec![2], None),
        ],
        vec![
            Bytes::from(
                [1i32, 0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            Bytes::from_static(&[0, 1]),
        ],
    );
    let a = answer(client.model_infer(bools).await.unwrap().get_ref());
    let b = answer(client.model_infer(raw_bools).await.unwrap().get_ref());
    assert_eq!(a.probabilities, b.probabilities);
    assert_eq!(a.probabilities[..2], probabilities[..2]);

    // Only the requested outputs, in the requested order.
    let mut only_label = rows.per_feature("tiny", false);
    wants(&mut only_label, &["label"]);
    let response = client.model_infer(only_label).await.unwrap().into_inner();
    assert_eq!(response.outputs.len(), 1);
    assert_eq!(response.outputs[0].name, "label");
    let mut both = rows.per_feature("tiny", true);
    wants(&mut both, &["label", "probabilities", "label"]);
    let response = client.model_infer(both).await.unwrap().into_inner();
    let names: Vec<&str> = response.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, vec!["label", "probabilities"]);
    assert_eq!(response.raw_output_contents.len(), 2);
    let got = answer(&response);
    assert_eq!((got.probabilities, got.labels), (probabilities, labels));
    server.stop().await;
}

#[tokio::test]
async fn missing_values_are_imputed_when_the_schema_allows_them() {
    let source = Arc::new(InMemoryModelSource::new());
    let trained = train(2, 1, 2, 14);
    source.promote("m", trained.bytes.clone());
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    let rows = Rows {
        numeric: vec![vec![f64::NAN, 1.0], vec![0.5, f64::NAN]],
        categorical: vec![vec!["".into(), " blue ".into()]],
    };
    server
        .wait_for_champion(
            &Rows {
                numeric: vec![vec![0.0], vec![0.0]],
                categorical: vec![vec!["red".into()]],
            }
            .per_feature("m", false),
            1,
        )
        .await;
    let frame = mend_core::Frame {
        columns: vec![
            mend_core::Column::Numeric(vec![f64::NAN, 1.0]),
            mend_core::Column::Numeric(vec![0.5, f64::NAN]),
            mend_core::Column::Categorical(vec![None, Some("blue".into())]),
        ],
        ..rows.frame()
    };
    let proba = trained.artifact.predict_proba(&frame).unwrap();
    let got = answer(
        client
            .model_infer(rows.per_feature("m", false))
            .await
            .unwrap()
            .get_ref(),
    );
    let want: Vec<f32> = proba.iter().map(|&p| p as f32).collect();
    assert_eq!(got.probabilities, want);
    server.stop().await;
}

#[tokio::test]
async fn a_named_version_answers_and_is_cached() {
    let source = Arc::new(InMemoryModelSource::new());
    let mut trained = train(3, 0, 2, 15);
    source.promote("m", trained.bytes.clone());
    source.promote("m", common::variant(&trained.artifact, 2.0));
    let server = start(Setup::new(Arc::clone(&source))).await;
    let mut client = server.client().await;
    let rows = Rows::draw(&mut trained.generator, 10, 1);
    server
        .wait_for_champion(&rows.matrix("m", false, false), 2)
        .await;
    let fetches = source.artifact_fetches();

    let (probabilities, _) = expected(&trained.artifact, &rows);
    for _ in 0..3 {
        let mut request = rows.matrix("m", true, false);
        request.model_version = "1".into();
        let got = answer(client.model_infer(request).await.unwrap().get_ref());
        assert_eq!(got.version, "1");
        assert_eq!(got.probabilities, probabilities);
    }
    // One download for three requests.
    assert_eq!(source.artifact_fetches(), fetches + 1);
    let champion = answer(
        client
            .model_infer(rows.matrix("m", false, false))
            .await
            .unwrap()
            .get_ref(),
    );
    assert_eq!(champion.version, "2");
    assert_ne!(champion.probabilities, probabilities);
    server.stop().await;
}
