//! Real model artifacts for tests of the services that store and move them: the registry
//! refuses anything that is not a loadable mend model, so tests register these instead of
//! placeholder bytes.

use std::sync::OnceLock;

use mend_core::{Artifact, Frame, Schema, SchemaOverride, TrainSettings};
use mend_worlds::{Generator, Regime, Sample, SyntheticSpec};

/// A model trained on `rows` rows drawn from the synthetic world of `spec` (the default
/// regime), and the generator, to draw more rows from the same world.
pub fn train_on(spec: SyntheticSpec, rows: usize) -> (Artifact, Generator) {
    let mut generator = Generator::new(spec);
    let sample = generator.sample(rows, &Regime::default());
    (train_sample(&generator, &sample), generator)
}

/// A model trained on `sample`, drawn from `generator`'s world (schema inferred, default
/// settings).
pub fn train_sample(generator: &Generator, sample: &Sample) -> Artifact {
    let table = generator.to_table(sample, true, 0, 0);
    let schema = Schema::infer(
        &table.headers,
        &table.rows,
        "label",
        &SchemaOverride::default(),
    )
    .unwrap_or_else(|error| panic!("synthetic schema: {error}"));
    let frame = Frame::from_table(&schema, &table, true)
        .unwrap_or_else(|error| panic!("synthetic frame: {error}"));
    mend_core::train(&schema, &frame, &TrainSettings::default())
        .unwrap_or_else(|error| panic!("training the test model: {error}"))
}

/// A small trained model (2 numeric features, 2 classes); each `seed` gives other data and
/// so other bytes.
pub fn trained(seed: u64) -> Artifact {
    let spec = SyntheticSpec {
        numeric: 2,
        categorical: 0,
        classes: 2,
        seed,
        ..SyntheticSpec::default()
    };
    train_on(spec, 300).0
}

/// The bytes of [`trained`]`(seed)`.
pub fn model_bytes(seed: u64) -> Vec<u8> {
    trained(seed)
        .to_bytes()
        .unwrap_or_else(|error| panic!("serialising the test model: {error}"))
}

fn base() -> &'static Artifact {
    static BASE: OnceLock<Artifact> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut artifact = trained(1);
        artifact.training.mend_version = String::new();
        artifact
    })
}

/// The smallest size [`model_bytes_of_size`] can make.
pub fn min_model_len() -> usize {
    base().to_bytes().map(|bytes| bytes.len()).unwrap_or(0)
}

/// A loadable artifact of exactly `len` bytes (at least [`min_model_len`]): the model of
/// [`trained`]`(1)` with a filler string in its training metadata, so tests of large uploads
/// move real models. `tag` makes artifacts of the same size differ.
pub fn model_bytes_of_size(len: usize, tag: u8) -> Vec<u8> {
    let min = min_model_len();
    assert!(
        len >= min,
        "a model artifact takes at least {min} bytes, not {len}"
    );
    let mut artifact = base().clone();
    let letter = char::from(b'a' + tag % 26);
    artifact.training.mend_version = std::iter::repeat_n(letter, len - min).collect();
    let bytes = artifact
        .to_bytes()
        .unwrap_or_else(|error| panic!("serialising the test model: {error}"));
    assert_eq!(bytes.len(), len);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_artifacts_load_and_have_the_size_asked() {
        let min = min_model_len();
        for len in [min, min + 1, min + 10_000] {
            let bytes = model_bytes_of_size(len, 3);
            assert_eq!(bytes.len(), len);
            assert!(Artifact::from_bytes(&bytes).is_ok());
        }
        assert_ne!(model_bytes(1), model_bytes(2));
        assert_ne!(
            model_bytes_of_size(min + 5, 0),
            model_bytes_of_size(min + 5, 1)
        );
    }
}
