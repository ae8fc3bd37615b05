#!/usr/bin/env python3
"""Summarises a heal-suite run (scripts/heal_suite.sh): Markdown tables per split.

    heal_suite_report.py DIR [--suite SUITE_DIR]

DIR holds one `mend bench-heal --stream ... --json` result per stream, pace and label delay
(`<stream>-r<rate>-d<delay>.json`), each shaped like

    {"stream": "abrupt-s1", "rate": 2000, "label_delay": 0, "rows": 50000,
     "contenders": {"mend": {"accuracy": .., "retrains": .., "promotions": .., "rejections": ..},
                    "static": {..}, "blind_2000": {..}, "blind_10000": {..}, "online": {..},
                    "oracle": {..}},
     "alarms": [..]}

The stream's family, split and drift kind come from the suite's index (suite.json, looked for in
--suite, DIR and DIR/..) or the stream's sidecar; failing both, the family is read from the
name and the split is `unknown`. Missing contenders and fields print `-`.

Per split (tune, then held_out): one row per stream x pace x delay with each contender's
prequential accuracy, mend minus the best baseline (the best non-oracle contender), mend's
retrains, promotions and rejections, the alarms, and whether mend met its target:
- drifting streams (concept and prior drift): accuracy >= max(oracle, blind_10000, online)
  (those present) and retrains < blind_10000's retrains;
- `none` and `covariate` streams: at most 1 promotion per 50,000 rows (a stream shorter than
  50,000 rows may have 1) and accuracy >= static - 0.002.
Then totals: mean and worst mend - best baseline, mean mend - oracle, targets met.
Held-out rows are reported, never tuned on.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

BASE_CONTENDERS = ["mend", "static", "blind_2000", "blind_10000", "online", "oracle"]
FAMILY_ORDER = ["abrupt", "abrupt3", "gradual", "incremental", "recurring",
                "recurring_categorical", "covariate", "prior", "none", "mixed"]
KIND_OF_FAMILY = {"covariate": "covariate", "prior": "prior", "none": "none"}
QUIET_KINDS = ("none", "covariate")
SPLITS = ["tune", "held_out"]
FILE_NAME = re.compile(r"^(?P<stream>.+)-r(?P<rate>\d+)-d(?P<delay>\d+)\.json$")


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"warning: skipping {path}: {e}", file=sys.stderr)
        return None


def suite_index(dirs):
    """stream name -> {family, seed, split, drift_kind} from the first suite.json found, plus
    a list of directories to look for sidecars in."""
    for d in dirs:
        path = os.path.join(d, "suite.json")
        if os.path.isfile(path):
            index = load_json(path) or {}
            return {s["name"]: s for s in index.get("streams", []) if "name" in s}
    return {}


def stream_info(name, index, dirs):
    if name in index:
        return index[name]
    for d in dirs:
        meta = os.path.join(d, name + ".meta.json")
        if os.path.isfile(meta):
            m = load_json(meta) or {}
            return {"family": m.get("family"), "seed": m.get("seed"), "split": m.get("split"),
                    "drift_kind": m.get("drift_kind")}
    family, _, seed = name.rpartition("-s")
    family = family or name
    return {"family": family, "seed": seed, "split": "unknown",
            "drift_kind": KIND_OF_FAMILY.get(family, "concept")}


def load_results(directory, index, dirs):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        base = os.path.basename(path)
        if base == "suite.json" or base.endswith(".meta.json"):
            continue
        data = load_json(path)
        if not isinstance(data, dict):
            continue
        m = FILE_NAME.match(base)
        name = data.get("stream") or (m and m["stream"]) or base[:-5]
        info = stream_info(name, index, dirs)
        runs.append({
            "stream": name,
            "rate": data.get("rate", m and int(m["rate"])),
            "delay": data.get("label_delay", m and int(m["delay"])),
            "rows": data.get("rows"),
            "contenders": data.get("contenders") or {},
            "alarms": data.get("alarms"),
            "family": info.get("family") or name,
            "seed": info.get("seed"),
            "split": info.get("split") or "unknown",
            "kind": info.get("drift_kind") or "concept",
        })
    return runs


def accuracy(run, name):
    c = run["contenders"].get(name)
    v = c.get("accuracy") if isinstance(c, dict) else None
    return v if isinstance(v, (int, float)) else None


def field(run, name, key):
    c = run["contenders"].get(name)
    v = c.get(key) if isinstance(c, dict) else None
    return v if isinstance(v, (int, float)) else None


def best_baseline(run):
    accs = [(accuracy(run, n), n) for n in run["contenders"] if n not in ("mend", "oracle")]
    accs = [a for a in accs if a[0] is not None]
    return max(accs) if accs else (None, None)


def target(run):
    """(met: True/False/None, reason) for mend on this run."""
    mend = accuracy(run, "mend")
    if mend is None:
        return None, "no mend accuracy"
    if run["kind"] in QUIET_KINDS:
        promotions, static = field(run, "mend", "promotions"), accuracy(run, "static")
        if promotions is None or static is None or not run["rows"]:
            return None, "missing promotions, static or rows"
        allowed = max(1, math.floor(run["rows"] / 50000))
        fails = []
        if promotions > allowed:
            fails.append(f"{promotions:g} promotions > {allowed}")
        if mend < static - 0.002:
            fails.append("acc < static-0.002")
        return not fails, "; ".join(fails)
    bar = [accuracy(run, n) for n in ("oracle", "blind_10000", "online")]
    bar = [a for a in bar if a is not None]
    retrains, blind = field(run, "mend", "retrains"), field(run, "blind_10000", "retrains")
    if not bar or retrains is None or blind is None:
        return None, "missing oracle/blind_10000/online or retrains"
    fails = []
    if mend < max(bar):
        fails.append(f"acc < {max(bar):.4f}")
    if retrains >= blind:
        fails.append(f"retrains {retrains:g} >= {blind:g}")
    return not fails, "; ".join(fails)


def fmt_acc(v):
    return "-" if v is None else f"{v:.4f}"


def fmt_num(v):
    return "-" if v is None else f"{v:g}"


def fmt_diff(v):
    return "-" if v is None else f"{v:+.4f}"


def contender_columns(runs):
    seen = {n for r in runs for n in r["contenders"]}
    extra = sorted(seen - set(BASE_CONTENDERS))
    return BASE_CONTENDERS + extra


def sort_key(run):
    fam = run["family"]
    order = FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER)
    seed = run["seed"] if isinstance(run["seed"], int) else 0
    return (order, fam, seed, run["stream"], run["rate"] or 0, run["delay"] or 0)


def table(runs, columns):
    head = (["stream", "rate", "delay"] + columns
            + ["mend-best", "retrains", "promotions", "rejections", "alarms", "target"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(runs, key=sort_key):
        mend, (best, _) = accuracy(r, "mend"), best_baseline(r)
        met, why = target(r)
        verdict = "?" if met is None else ("yes" if met else f"NO ({why})")
        alarms = len(r["alarms"]) if isinstance(r["alarms"], list) else None
        cells = ([r["stream"], fmt_num(r["rate"]), fmt_num(r["delay"])]
                 + [fmt_acc(accuracy(r, c)) for c in columns]
                 + [fmt_diff(None if mend is None or best is None else mend - best),
                    fmt_num(field(r, "mend", "retrains")), fmt_num(field(r, "mend", "promotions")),
                    fmt_num(field(r, "mend", "rejections")), fmt_num(alarms), verdict])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def totals(runs):
    diffs = []
    for r in runs:
        mend, (best, who) = accuracy(r, "mend"), best_baseline(r)
        if mend is not None and best is not None:
            diffs.append((mend - best, r, who))
    oracle = [accuracy(r, "mend") - accuracy(r, "oracle") for r in runs
              if accuracy(r, "mend") is not None and accuracy(r, "oracle") is not None]
    out = [f"- runs: {len(runs)}"]
    if diffs:
        mean = sum(d for d, _, _ in diffs) / len(diffs)
        worst, r, who = min(diffs, key=lambda t: t[0])
        out.append(f"- mend - best baseline: mean {mean:+.4f}, worst {worst:+.4f} "
                   f"({r['stream']} r{r['rate']} d{r['delay']}, vs {who}) over {len(diffs)} runs")
    else:
        out.append("- mend - best baseline: -")
    if oracle:
        out.append(f"- mend - oracle: mean {sum(oracle) / len(oracle):+.4f}, "
                   f"worst {min(oracle):+.4f} over {len(oracle)} runs")
    for label, quiet in (("drifting streams", False), ("none/covariate streams", True)):
        group = [r for r in runs if (r["kind"] in QUIET_KINDS) == quiet]
        if not group:
            continue
        verdicts = [target(r)[0] for r in group]
        met = sum(1 for v in verdicts if v)
        unknown = sum(1 for v in verdicts if v is None)
        missed = sorted({f"{r['stream']} r{r['rate']} d{r['delay']}"
                         for r, v in zip(group, verdicts) if v is False})
        line = f"- target met, {label}: {met}/{len(group)}"
        if unknown:
            line += f" ({unknown} undecidable)"
        if missed:
            line += f"; missed: {', '.join(missed)}"
        out.append(line)
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description="Markdown summary of a heal-suite run.")
    p.add_argument("dir", help="directory of bench-heal result JSONs")
    p.add_argument("--suite", help="directory of the generated suite (suite.json, sidecars)")
    args = p.parse_args(argv)
    dirs = [d for d in (args.suite, args.dir, os.path.join(args.dir, os.pardir)) if d]
    runs = load_results(args.dir, suite_index(dirs), dirs)
    if not runs:
        print(f"no results in {args.dir}", file=sys.stderr)
        return 1
    columns = contender_columns(runs)
    splits = SPLITS + sorted({r["split"] for r in runs} - set(SPLITS))
    for split in splits:
        group = [r for r in runs if r["split"] == split]
        if not group and split not in SPLITS:
            continue
        print(f"## {split}\n")
        if split == "held_out":
            print("Held-out streams: reported only, nothing may be tuned on them.\n")
        if not group:
            print("(no results)\n")
            continue
        print(table(group, columns) + "\n")
        print("Totals:\n")
        print(totals(group) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
