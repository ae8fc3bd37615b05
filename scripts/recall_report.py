#!/usr/bin/env python3
"""Recall on the recurring-concept streams of the heal suite: mend with recall (the default)
against mend without it (MEND_TRAINER_RECALL_VERSIONS=0) and the harness's baselines.

Usage: scripts/recall_report.py WITH_RESULTS_DIR WITHOUT_RESULTS_DIR

Both directories hold `mend bench-heal --stream ... --json` results of the same streams, paces
and label delays (scripts/heal_suite.sh writes them). Prints one Markdown table per split:
per stream, pace and delay, prequential accuracy, candidates trained, promotions, recalls and
the mean rows to recover after each drift point (a recurrence is a drift point), then means.
"""
import json
import os
import sys


def load(directory):
    runs = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(directory, name)) as f:
            run = json.load(f)
        runs[(run["stream"], run["rate"], run["label_delay"])] = run
    return runs


def split_of(run):
    meta = run["path"].replace(".csv", ".meta.json")
    try:
        with open(meta) as f:
            return json.load(f).get("split", "?")
    except OSError:
        return "?"


def mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def recover(contender):
    return mean(contender.get("rows_to_recover") or [])


def fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with_recall, without = load(sys.argv[1]), load(sys.argv[2])
    keys = sorted(set(with_recall) & set(without))
    if not keys:
        print("no runs in common", file=sys.stderr)
        sys.exit(1)
    by_split = {}
    for key in keys:
        by_split.setdefault(split_of(with_recall[key]), []).append(key)
    for split, split_keys in sorted(by_split.items()):
        print(f"\n#### {split} ({len(split_keys)} runs)\n")
        print(
            "| stream | pace | delay | mend, recall | mend, no recall | static | blind_10000 | online | oracle "
            "| trained (promoted, recalled) with / without | rows to recover, mean: recall / no recall / blind_10000 / online / oracle |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        totals = {}
        for key in split_keys:
            a, b = with_recall[key]["contenders"], without[key]["contenders"]
            m, n = a["mend"], b["mend"]
            row = {
                "recall": m["accuracy"],
                "no_recall": n["accuracy"],
                "static": a["static"]["accuracy"],
                "blind_10000": a["blind_10000"]["accuracy"],
                "online": a["online"]["accuracy"],
                "oracle": a.get("oracle", {}).get("accuracy"),
                "trained_with": m["retrains"],
                "trained_without": n["retrains"],
                "recalls": m.get("recalls", 0),
                "rec_recall": recover(m),
                "rec_no_recall": recover(n),
                "rec_blind": recover(a["blind_10000"]),
                "rec_online": recover(a["online"]),
                "rec_oracle": recover(a.get("oracle", {})),
            }
            for k, v in row.items():
                totals.setdefault(k, []).append(v)
            stream, rate, delay = key
            print(
                f"| {stream} | {rate} | {delay} | {fmt(row['recall'])} | {fmt(row['no_recall'])} "
                f"| {fmt(row['static'])} | {fmt(row['blind_10000'])} | {fmt(row['online'])} | {fmt(row['oracle'])} "
                f"| {m['retrains']} ({m['promotions']}, {row['recalls']}) / {n['retrains']} ({n['promotions']}, 0) "
                f"| {fmt(row['rec_recall'], 0)} / {fmt(row['rec_no_recall'], 0)} / {fmt(row['rec_blind'], 0)} "
                f"/ {fmt(row['rec_online'], 0)} / {fmt(row['rec_oracle'], 0)} |"
            )
        t = {k: mean(v) for k, v in totals.items()}
        print(
            f"| **mean** | | | **{fmt(t['recall'])}** | **{fmt(t['no_recall'])}** | {fmt(t['static'])} "
            f"| {fmt(t['blind_10000'])} | {fmt(t['online'])} | {fmt(t['oracle'])} "
            f"| {fmt(t['trained_with'], 1)} ({fmt(t['recalls'], 1)} recalled) / {fmt(t['trained_without'], 1)} "
            f"| {fmt(t['rec_recall'], 0)} / {fmt(t['rec_no_recall'], 0)} / {fmt(t['rec_blind'], 0)} "
            f"/ {fmt(t['rec_online'], 0)} / {fmt(t['rec_oracle'], 0)} |"
        )


if __name__ == "__main__":
    main()
