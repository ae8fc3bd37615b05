//! Training speed on synthetic data: 100,000 x 20 and 1,000,000 x 20 standardised rows.
//! Run: `cargo bench -p mend-core --bench train`. The scikit-learn comparison on the same data
//! is `scripts/bench-train.sh` (see BENCHMARKS.md).

use criterion::{Criterion, criterion_group, criterion_main};
use mend_core::model::{LogisticModel, LogisticSettings, TrainSettings};
use mend_worlds::{Generator, Regime, SyntheticSpec};

fn bench_train(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_logistic");
    group.sample_size(10);
    for rows in [100_000usize, 1_000_000] {
        let mut g = Generator::new(SyntheticSpec {
            numeric: 20,
            categorical: 0,
            classes: 2,
            seed: 42,
            signal: 3.0,
        });
        let sample = g.sample(rows, &Regime::default());
        let classes = g.class_names();
        let settings = LogisticSettings::default();
        group.bench_function(format!("{rows}x20"), |b| {
            b.iter(|| {
                LogisticModel::fit(
                    sample.numeric.view(),
                    &sample.labels,
                    2,
                    &classes,
                    &settings,
                    TrainSettings::default().fit_threads(),
                )
                .map(|(m, _)| m.coef.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
