#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The static pipeline end to end: CSV → schema → frame → train → artifact → predict.

use mend_core::*;
use mend_worlds::{Generator, Regime, SyntheticSpec, table_to_csv};

/// Default settings of a run training the logistic family with `settings`.
fn logistic(settings: LogisticSettings) -> TrainSettings {
    TrainSettings {
        algorithm: Algorithm::Logistic(settings),
        ..TrainSettings::default()
    }
}

fn synthetic_csv(rows: usize, spec: SyntheticSpec) -> String {
    let mut g = Generator::new(spec);
    let s = g.sample(rows, &Regime::default());
    table_to_csv(&g.to_table(&s, true, 0, 1_000))
}

/// The table and the schema inferred from it (label `label`, no override).
fn infer(csv: &str) -> (RawTable, Schema) {
    let table = read_csv(csv.as_bytes()).unwrap();
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .unwrap();
    (table, schema)
}

fn load(csv: &str) -> (Schema, Frame) {
    let (table, schema) = infer(csv);
    let frame = Frame::from_table(&schema, &table, true).unwrap();
    (schema, frame)
}

#[test]
fn schema_is_inferred_from_csv() {
    let (schema, frame) = load(&synthetic_csv(200, SyntheticSpec::default()));
    assert_eq!(schema.id_column.as_deref(), Some("id"));
    assert_eq!(schema.time_column.as_deref(), Some("time"));
    assert_eq!(schema.features.len(), 6);
    assert_eq!(
        schema.features[5],
        Feature {
            name: "c0".into(),
            kind: FeatureKind::Categorical
        }
    );
    assert!(
        schema.features[..5]
            .iter()
            .all(|f| f.kind == FeatureKind::Numeric)
    );
    assert_eq!(schema.classes, vec!["no", "yes"]);
    assert_eq!(frame.len(), 200);
}

/// A column is categorical only when most of its present values are not numbers: one stray
/// word in 5,000 numbers keeps it numeric (and the frame names the cell), while a column of
/// words with a few numbers among them is categorical.
#[test]
fn a_few_bad_cells_do_not_make_a_numeric_column_categorical() {
    let cells = |numbers: usize, words: usize| -> Vec<String> {
        (0..numbers)
            .map(|i| format!("{}.5", i % 17))
            .chain((0..words).map(|i| format!("w{i}")))
            .chain(["".to_owned(), "NA".to_owned()])
            .collect()
    };
    assert_eq!(
        schema::infer_kind(cells(5_000, 1).iter()),
        FeatureKind::Numeric
    );
    assert_eq!(
        schema::infer_kind(cells(50, 50).iter()),
        FeatureKind::Numeric
    );
    assert_eq!(
        schema::infer_kind(cells(3, 200).iter()),
        FeatureKind::Categorical
    );
    assert_eq!(schema::infer_kind(cells(0, 0).iter()), FeatureKind::Numeric);

    let mut csv = String::from("x,label\n");
    for i in 0..500 {
        csv.push_str(&format!("{i},{}\n", if i % 2 == 0 { "yes" } else { "no" }));
    }
    csv.push_str("abc,yes\n");
    let (table, schema) = infer(&csv);
    assert_eq!(schema.features[0].kind, FeatureKind::Numeric);
    let Err(CoreError::Rows(errors)) = Frame::from_table(&schema, &table, true) else {
        panic!("the bad cell must be refused");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "line 502, column `x`, value \"abc\": not a number"
    );
}

#[test]
fn schema_override_changes_kinds_and_ignores_columns() {
    let csv = "id,zip,name,score,label\n1,02139,ann,1.5,yes\n2,10001,bob,2.5,no\n";
    let table = read_csv(csv.as_bytes()).unwrap();
    let over =
        SchemaOverride::from_json(r#"{"columns": {"zip": "categorical", "name": "ignore"}}"#)
            .unwrap();
    let schema = Schema::infer(&table.headers, &table.rows, "label", &over).unwrap();
    let names: Vec<_> = schema
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("zip", FeatureKind::Categorical),
            ("score", FeatureKind::Numeric)
        ]
    );
    let bad = SchemaOverride::from_json(r#"{"columns": {"nope": "numeric"}}"#).unwrap();
    let err = Schema::infer(&table.headers, &table.rows, "label", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    assert!(
        SchemaOverride::from_json(r#"{"colums": {}}"#).is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn schema_hash_is_stable_and_sensitive() {
    let (schema, _) = load(&synthetic_csv(100, SyntheticSpec::default()));
    let mut same = schema.clone();
    same.id_column = None;
    assert_eq!(
        schema.hash(),
        same.hash(),
        "id/time columns do not change the meaning"
    );
    let mut other = schema.clone();
    other.features[0].kind = FeatureKind::Categorical;
    assert_ne!(schema.hash(), other.hash());
    let mut classes = schema.clone();
    classes.classes.reverse();
    assert_ne!(schema.hash(), classes.hash());
    assert_eq!(schema.hash().len(), 64);
}

#[test]
fn malformed_csv_is_reported_with_line_and_column() {
    let csv = "id,a,b,label\n1,1.0,x,yes\n2,oops,y,no\n3,2.0,z,maybe\n4,inf,y,no\n";
    let table = read_csv(csv.as_bytes()).unwrap();
    let over = SchemaOverride {
        classes: Some(vec!["no".into(), "yes".into()]),
        columns: [("a".to_owned(), mend_core::schema::ColumnOverride::Numeric)].into(),
        ..Default::default()
    };
    let schema = Schema::infer(&table.headers, &table.rows, "label", &over).unwrap();
    let Err(CoreError::Rows(errors)) = Frame::from_table(&schema, &table, true) else {
        panic!("expected row errors")
    };
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        (
            errors[0].line,
            errors[0].column.as_str(),
            errors[0].value.as_str()
        ),
        (3, "a", "oops")
    );
    assert!(errors[0].reason.contains("not a number"));
    assert_eq!((errors[1].line, errors[1].column.as_str()), (4, "label"));
    assert!(errors[1].reason.contains("unknown class"));
    assert_eq!((errors[2].line, errors[2].column.as_str()), (5, "a"));
    assert!(errors[0].to_string().contains("line 3, column `a`"));

    let ragged = "a,b,label\n1,2,yes\n1,no\n";
    let err = read_csv(ragged.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("2 fields"), "{err}");
}

#[test]
fn missing_values_are_imputed_or_refused_by_policy() {
    let csv = "a,c,label\n1,x,yes\n,y,no\n3,,yes\nNA,x,no\n";
    let table = read_csv(csv.as_bytes()).unwrap();
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .unwrap();
    let frame = Frame::from_table(&schema, &table, true).unwrap();
    let Column::Numeric(a) = &frame.columns[0] else {
        panic!()
    };
    assert!(a[1].is_nan() && a[3].is_nan());
    let strict = Schema {
        allow_missing: false,
        ..schema
    };
    let Err(CoreError::Rows(errors)) = Frame::from_table(&strict, &table, true) else {
        panic!()
    };
    assert_eq!(errors.len(), 3);
}

#[test]
fn time_split_holds_out_the_newest_rows() {
    let times = vec![50, 10, 40, 20, 30, 60, 0, 70, 80, 90];
    let (train, hold) = time_split(&times, 0.2).unwrap();
    assert_eq!(hold, vec![8, 9]);
    assert!(train.iter().all(|&i| times[i] <= 70));
    assert_eq!(train.len(), 8);
    assert!(time_split(&[1, 2, 3], 0.2).is_err());
}

#[test]
fn trains_a_binary_model_that_learns_the_rule() {
    let (schema, frame) = load(&synthetic_csv(5_000, SyntheticSpec::default()));
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    assert_eq!(
        artifact.training.fit.converged,
        Some(true),
        "{:?}",
        artifact.training.fit
    );
    assert!(
        artifact.metrics.accuracy > 0.8,
        "holdout accuracy {}",
        artifact.metrics.accuracy
    );
    assert!(artifact.metrics.roc_auc.unwrap() > 0.85);
    assert_eq!(artifact.training.rows_holdout, 1_000);
    assert_eq!(artifact.training.holdout_from, 1_000 + 4_000);
    // The profile describes the training part.
    assert_eq!(artifact.profile.rows, 4_000);
    assert_eq!(artifact.profile.features.len(), 6);
}

#[test]
fn trains_a_multiclass_model() {
    let spec = SyntheticSpec {
        classes: 3,
        numeric: 4,
        categorical: 1,
        seed: 11,
        signal: 4.0,
    };
    let (schema, frame) = load(&synthetic_csv(6_000, spec));
    assert_eq!(schema.classes.len(), 3);
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    assert!(
        artifact.metrics.accuracy > 0.7,
        "accuracy {}",
        artifact.metrics.accuracy
    );
    assert_eq!(artifact.metrics.confusion.len(), 3);
    let proba = artifact.predict_proba(&frame).unwrap();
    for row in proba.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn mend_solver_matches_linfa_logistic() {
    for (classes, seed) in [(2, 3), (3, 5)] {
        let spec = SyntheticSpec {
            classes,
            numeric: 6,
            categorical: 0,
            seed,
            signal: 3.0,
        };
        let (schema, frame) = load(&synthetic_csv(4_000, spec));
        let ours = train(&schema, &frame, &TrainSettings::default()).unwrap();
        let linfa = train(
            &schema,
            &frame,
            &logistic(LogisticSettings {
                solver: Solver::Linfa,
                tolerance: 1e-6,
                ..LogisticSettings::default()
            }),
        )
        .unwrap();
        // A linfa-trained artifact saves and loads like any other.
        assert_eq!(
            Artifact::from_bytes(&linfa.to_bytes().unwrap()).unwrap(),
            linfa
        );
        let gap = (ours.metrics.accuracy - linfa.metrics.accuracy).abs();
        assert!(
            gap <= 0.005,
            "{classes} classes: ours {} vs linfa {}",
            ours.metrics.accuracy,
            linfa.metrics.accuracy
        );
        assert!((ours.metrics.log_loss - linfa.metrics.log_loss).abs() < 0.01);
    }
}

#[test]
fn balanced_class_weights_lift_minority_recall() {
    // A rare positive class: shift the intercept by generating and subsampling.
    let mut g = Generator::new(SyntheticSpec {
        numeric: 4,
        categorical: 0,
        classes: 2,
        seed: 9,
        signal: 1.5,
    });
    let s = g.sample(20_000, &Regime::default());
    let mut table = g.to_table(&s, true, 0, 0);
    let mut kept = 0;
    table.rows.retain(|r| {
        r.last().map(String::as_str) == Some("no") || {
            kept += 1;
            kept % 8 == 0
        }
    });
    table.lines = (0..table.rows.len() as u64).map(|i| i + 2).collect();
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .unwrap();
    let frame = Frame::from_table(&schema, &table, true).unwrap();
    let plain = train(&schema, &frame, &TrainSettings::default()).unwrap();
    let weighted = train(
        &schema,
        &frame,
        &logistic(LogisticSettings {
            class_weight: ClassWeight::Balanced,
            ..LogisticSettings::default()
        }),
    )
    .unwrap();
    let recall = |a: &Artifact| a.metrics.per_class[1].recall;
    assert!(
        recall(&weighted) > recall(&plain) + 0.1,
        "weighted {} vs plain {}",
        recall(&weighted),
        recall(&plain)
    );
    let linfa = logistic(LogisticSettings {
        class_weight: ClassWeight::Balanced,
        solver: Solver::Linfa,
        ..LogisticSettings::default()
    });
    assert!(
        train(&schema, &frame, &linfa).is_err(),
        "linfa cannot weight classes and says so"
    );
}

#[test]
fn unknown_category_goes_to_the_unknown_bucket() {
    let (schema, frame) = load(&synthetic_csv(1_000, SyntheticSpec::default()));
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    let csv = "x0,x1,x2,x3,x4,c0\n0.1,0.2,0.3,0.4,0.5,purple\n0.1,0.2,0.3,0.4,0.5,\n";
    let table = read_csv(csv.as_bytes()).unwrap();
    let unseen = Frame::from_table(&schema, &table, false).unwrap();
    let x = artifact.preprocessor.transform(&unseen).unwrap();
    let width = x.ncols();
    // The categorical block is last: 4 known levels then the unknown bucket.
    assert_eq!(
        x.row(0).slice(ndarray::s![width - 5..]).to_vec(),
        vec![0.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        x.row(1).slice(ndarray::s![width - 5..]).to_vec(),
        vec![0.0, 0.0, 0.0, 0.0, 1.0]
    );
    let proba = artifact.predict_proba(&unseen).unwrap();
    assert!(proba.iter().all(|p| p.is_finite()));
}

#[test]
fn artifact_round_trips_and_refuses_tampering() {
    let (schema, frame) = load(&synthetic_csv(800, SyntheticSpec::default()));
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    let bytes = artifact.to_bytes().unwrap();
    let loaded = Artifact::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, artifact);
    assert_eq!(
        loaded.predict_proba(&frame).unwrap(),
        artifact.predict_proba(&frame).unwrap()
    );

    // One flipped byte in the body.
    let mut tampered = bytes.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x01;
    assert!(matches!(
        Artifact::from_bytes(&tampered),
        Err(CoreError::Checksum { .. })
    ));

    // A newer format is refused by its header, before the body is read.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let newer = text.replacen("MEND-MODEL 2 ", "MEND-MODEL 3 ", 1);
    let err = Artifact::from_bytes(newer.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::NewerFormat {
                found: 3,
                supported: 2
            }
        ),
        "{err}"
    );

    assert!(
        Artifact::from_bytes(b"hello\nworld")
            .unwrap_err()
            .to_string()
            .contains("not a mend model")
    );
}

#[test]
fn the_prediction_reference_covers_every_row_trained_and_judged_on() {
    let (schema, frame) = load(&synthetic_csv(1_000, SyntheticSpec::default()));
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    let proba = artifact.predict_proba(&frame).unwrap();
    let all = profile::PredictionProfile::from_probabilities(proba.view(), &schema.classes);
    let got = &artifact.profile.prediction;
    for (a, b) in got.probability_bins.iter().zip(&all.probability_bins) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{got:?} vs {all:?}");
        }
    }
    for (x, y) in got.mean_probability.iter().zip(&all.mean_probability) {
        assert!((x - y).abs() < 1e-9);
    }
    // Not the holdout alone (200 of the 1,000 rows): its shares are multiples of 1/200.
    let holdout_only = got
        .probability_bins
        .iter()
        .flatten()
        .all(|share| (share * 200.0 - (share * 200.0).round()).abs() < 1e-9);
    assert!(!holdout_only);
}

/// A model file written by mend before model families existed (format 1, committed as it was
/// written by `mend train` then) still loads, as format 2, and predicts what it predicted then.
#[test]
fn a_format_1_artifact_loads_and_predicts_as_it_did() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bytes = std::fs::read(fixtures.join("format1_logistic.mend")).unwrap();
    assert!(bytes.starts_with(b"MEND-MODEL 1 "));
    let artifact = Artifact::from_bytes(&bytes).unwrap();
    assert_eq!(artifact.format_version, FORMAT_VERSION);
    assert_eq!(artifact.model.family(), Family::Logistic);
    assert_eq!(artifact.model.platform(), "mend-logistic");
    assert_eq!(
        artifact.training.settings.algorithm,
        Algorithm::Logistic(LogisticSettings::default())
    );
    assert_eq!(artifact.training.settings.holdout_fraction, 0.2);
    let summary = artifact.model.summary();
    // age, spend (numeric) and plan's three categories plus the unknown bucket, one logit.
    assert_eq!((summary.inputs, summary.classes), (6, 2));
    assert_eq!(summary.parameters, 7);

    // The probabilities `mend predict` wrote with that build, to its six decimals.
    let sample =
        read_csv(std::fs::File::open(fixtures.join("format1_sample.csv")).unwrap()).unwrap();
    let frame = Frame::from_table(&artifact.schema, &sample, false).unwrap();
    let proba = artifact.predict_proba(&frame).unwrap();
    let expected = std::fs::read_to_string(fixtures.join("format1_predictions.csv")).unwrap();
    let expected: Vec<Vec<String>> = expected
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(expected.len(), frame.len());
    for (row, want) in proba.rows().into_iter().zip(&expected) {
        for (class, p) in row.iter().enumerate() {
            assert_eq!(format!("{p:.6}"), want[1 + class]);
        }
    }
    assert_eq!(
        artifact.labels_of(&proba),
        expected.iter().map(|w| w[3].as_str()).collect::<Vec<_>>()
    );

    // Saved again, it is a format-2 file that reads back equal.
    let again = artifact.to_bytes().unwrap();
    assert!(again.starts_with(b"MEND-MODEL 2 "));
    assert_eq!(Artifact::from_bytes(&again).unwrap(), artifact);
}

/// A format-2 file names its family in the model and in the training settings, and a file
/// whose two disagree is refused before it is served.
#[test]
fn a_format_2_artifact_names_its_family_and_must_agree_with_itself() {
    let (schema, frame) = load(&synthetic_csv(400, SyntheticSpec::default()));
    let artifact = train(&schema, &frame, &TrainSettings::default()).unwrap();
    let bytes = artifact.to_bytes().unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&bytes[bytes.iter().position(|&b| b == b'\n').unwrap() + 1..])
            .unwrap();
    assert_eq!(body["format_version"], 2);
    assert_eq!(body["model"]["family"], "logistic");
    assert_eq!(
        body["training"]["settings"]["algorithm"]["family"],
        "logistic"
    );
    assert_eq!(body["training"]["settings"]["algorithm"]["l2"], 1.0);
    assert!(body["training"]["settings"].get("l2").is_none());

    // A format-1 header over a format-2 body is refused, not upgraded.
    let text = String::from_utf8(bytes).unwrap();
    let mislabeled = text.replacen("MEND-MODEL 2 ", "MEND-MODEL 1 ", 1);
    let err = Artifact::from_bytes(mislabeled.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("header says format 1, body says 2"),
        "{err}"
    );
}
