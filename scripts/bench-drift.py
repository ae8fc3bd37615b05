"""Evidently's side of scripts/bench-drift.sh, and the data both tools read.

    bench-drift.py generate DIR ROWS   write DIR/ref.csv and DIR/cur.csv (ROWS x 20 numeric)
    bench-drift.py evidently DIR       run Evidently's DataDriftPreset on them, print JSON
    bench-drift.py summary DIR         compare DIR/mend.json with DIR/evidently.json

The current file moves some columns by known amounts (in reference standard deviations), a few
of them close to the 0.1 threshold of the normed Wasserstein distance, so the two tools' verdicts
are compared where it is hardest to agree.
"""
import json
import re
import sys
import time

import numpy as np

COLUMNS = [f"f{i:02d}" for i in range(20)]
# column -> how the current sample differs, and the normed Wasserstein distance it implies
CHANGES = {
    "f00": ("shift +0.5", 0.5),
    "f01": ("shift +0.2", 0.2),
    "f02": ("shift +0.12", 0.12),
    "f03": ("shift +0.08", 0.08),
    "f04": ("std x1.5", 0.399),
    "f05": ("std x1.1", 0.080),
    "f06": ("10% replaced by 3.0", 0.31),
}


def generate(directory, rows):
    rng = np.random.default_rng(42)
    ref = rng.standard_normal((rows, len(COLUMNS)))
    cur = rng.standard_normal((rows, len(COLUMNS)))
    cur[:, 0] += 0.5
    cur[:, 1] += 0.2
    cur[:, 2] += 0.12
    cur[:, 3] += 0.08
    cur[:, 4] *= 1.5
    cur[:, 5] *= 1.1
    cur[rng.random(rows) < 0.1, 6] = 3.0
    header = ",".join(COLUMNS)
    for name, data in (("ref", ref), ("cur", cur)):
        np.savetxt(f"{directory}/{name}.csv", data, fmt="%.6f", delimiter=",", header=header,
                   comments="")


def evidently(directory):
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    t0 = time.perf_counter()
    ref = pd.read_csv(f"{directory}/ref.csv")
    cur = pd.read_csv(f"{directory}/cur.csv")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    run_s = time.perf_counter() - t0
    scores, flagged, share = {}, [], None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
            continue
        if not config["type"].endswith("ValueDrift"):
            continue
        column, method, threshold = config["column"], config["method"], config["threshold"]
        value = float(metric["value"])
        p_value = "p_value" in method
        drifted = value < threshold if p_value else value >= threshold
        scores[column] = {"method": method, "score": value, "drifted": drifted}
        if drifted:
            flagged.append(column)
    print(json.dumps({"load_ms": load_s * 1e3, "run_ms": run_s * 1e3, "share": share,
                      "flagged": sorted(flagged), "scores": scores}))


def peak_rss_mb(path):
    text = open(path).read()
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return kb / 1024, seconds


def summary(directory):
    mend = json.load(open(f"{directory}/mend.json"))
    ev = json.load(open(f"{directory}/evidently.json"))
    mend_mb, mend_wall = peak_rss_mb(f"{directory}/mend.time")
    ev_mb, ev_wall = peak_rss_mb(f"{directory}/evidently.time")
    mend_flagged = sorted(f["name"] for f in mend["features"] if f["drifted"])
    rows = mend["reference_rows"]
    print(f"rows: {rows:,} reference + {mend['current_rows']:,} current, 20 numeric columns\n")
    print("| tool | wall, whole process | drift computation | peak memory | flagged |")
    print("|---|---:|---:|---:|---|")
    t = mend["timings_ms"]
    print(f"| mend drift | {mend_wall:.2f} s | {t['summarise'] / 1e3:.2f} s read + summarise, "
          f"{t['compare']} ms compare | {mend_mb:.0f} MiB | {', '.join(mend_flagged)} |")
    print(f"| Evidently DataDriftPreset | {ev_wall:.2f} s | {ev['load_ms'] / 1e3:.2f} s read_csv, "
          f"{ev['run_ms'] / 1e3:.2f} s Report.run | {ev_mb:.0f} MiB | {', '.join(ev['flagged'])} |")
    print()
    print("| column | change | expected W | mend score | Evidently score | mend | Evidently |")
    print("|---|---|---:|---:|---:|---|---|")
    for f in mend["features"]:
        name = f["name"]
        change, expected = CHANGES.get(name, ("none", 0.0))
        e = ev["scores"].get(name, {})
        print(f"| {name} | {change} | {expected:.3f} | {f['score']:.4f} | {e.get('score', float('nan')):.4f} "
              f"| {'drift' if f['drifted'] else 'ok'} | {'drift' if e.get('drifted') else 'ok'} |")
    same = mend_flagged == ev["flagged"]
    print()
    print(f"same verdicts: {same}; dataset drift: mend {mend['dataset_drift']} "
          f"(share {mend['drift_share']:.2f}), Evidently share {ev['share']}")
    print(f"speed-up, whole process: {ev_wall / mend_wall:.1f}x; memory: 1/{ev_mb / mend_mb:.1f}")
    window = json.load(open(f"{directory}/window.json"))
    print()
    both_ms = window["reference_ms"] + window["window_ms"]
    print("Per-window computation, data already in memory (Evidently: Report.run on DataFrames;")
    print("mend, as the monitor: the current window's data-log rows folded into a summary laid out")
    print("by the stored reference profile, and compared with it):")
    print(f"- mend: {window['window_ms'] / 1e3:.3f} s per window, flagged {', '.join(window['drifted'])}")
    print(f"  (the reference profile, built once per model version from its 1M rows: "
          f"{window['reference_ms'] / 1e3:.3f} s; both together {both_ms / 1e3:.3f} s)")
    print(f"- Evidently: {ev['run_ms'] / 1e3:.2f} s, flagged {', '.join(ev['flagged'])}")
    print(f"- speed-up: {ev['run_ms'] / max(window['window_ms'], 1):.0f}x per window, "
          f"{ev['run_ms'] / max(both_ms, 1):.0f}x with the reference built too; "
          f"same verdicts: {sorted(window['drifted']) == ev['flagged']}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "generate":
        generate(sys.argv[2], int(sys.argv[3]))
    elif mode == "evidently":
        evidently(sys.argv[2])
    elif mode == "summary":
        summary(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")
