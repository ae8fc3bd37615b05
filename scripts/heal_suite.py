#!/usr/bin/env python3
"""A broad, reproducible suite of labeled streams with concept drift, for measuring how well
mend heals on streams it was not tuned on (`scripts/heal_suite.sh` runs `mend bench-heal
--stream` over it; `scripts/heal_suite_report.py` tabulates the results).

    heal_suite.py --out DIR [--rows 50000] [--train-rows 5000] [--seeds 1,2,3]
                  [--families all|a,b,...] [--list]

Python 3.11, standard library only. Every stream is drawn from its own generators,
`random.Random("mend-heal-suite/<family>/<seed>/params")` for its parameters and
`.../rows` for its rows (string seeds are hashed with SHA-512, so they do not depend on
PYTHONHASHSEED), never from global state: the same family, seed, --rows and --train-rows give
byte-identical files.

The world
---------
Each stream has k numeric features `x0..x{k-1}` (k from 3 to 6) and two categorical ones,
`c0` (colours, `red`, `green`, ...) and `c1` (`a0`, `a1`, ...), with 3 to 8 levels each. A
numeric feature is `x = mu + sd * z`, z normal (standard normal before any covariate shift,
mu and sd per feature per stream); categories are drawn from skewed per-stream frequencies.
The labelling rule (a *concept*) is logistic: score = bias + w . z + e0[c0] + e1[c1];
the latent score + Logistic(0, 1/gain) decides the class (`yes` when above 0; for the
3-class family, `low`/`mid`/`high` by two cuts at its tertiles), then 5-10% of labels
(drawn per stream) are replaced by another class. A logistic regression on standardised
numerics plus one-hot categoricals is therefore exactly the right model, and the true rule
scores about 0.80-0.90 (`true_rule_accuracy` in the sidecar). Whenever a family moves to a
new concept, the new one is drawn with a different sign pattern of the numeric weights (for
recurring_categorical: with c0's and c1's effect maps negated or permuted) and kept only if
the old rule, applied to rows of the new one, is expected to lose a target amount of
accuracy drawn per change from 0.20-0.40 (0.25-0.45 for incremental), so every concept change
is unmistakable and their sizes vary.

Drift positions, widths, magnitudes, noise, k and cardinalities are drawn from the seed.
Positions are fractions of --rows; the absolute lengths (recurring periods of 8,000-15,000
rows, gradual widths of 2,000-6,000, ramps) are scaled down by rows/50,000 when --rows is
below 50,000, so short check suites still drift. The rules themselves do not depend on --rows.

Families
--------
- abrupt: the labelling rule changes at once, once or twice.
- abrupt3: as abrupt (one change) with three classes, `low`/`mid`/`high`.
- gradual: two concepts; the new one's share of rows rises linearly from 0 to 1 over 2,000-6,000
  rows (as River's ConceptDriftStream with a width).
- incremental: the rule's weights, category effects and bias move linearly from one concept to
  another over 35-55% of the stream, then stop.
- recurring: A, B, A, B, ... abrupt switches, each period 8,000-15,000 rows.
- recurring_categorical: as recurring, but the numeric weights stay; the switch is in which
  categories of c0/c1 favour which class (two category-effect maps alternate).
- covariate: some numeric features' means (1-2 sd) and one's spread (x1.5-2.5) move and the
  category frequencies change, at once or over a short ramp; P(label | x) stays the same.
- prior: the class balance moves from 50/50 to 75/25-85/15 (either way), at once or over a ramp;
  rows are drawn by choosing the label first and then rejection-sampling the base world until
  it agrees, so P(x | label) stays exactly the same.
- none: stationary, no drift at all.
- mixed: a covariate shift, then later an abrupt concept change.

Files
-----
For each family and seed, `DIR/<family>-s<seed>.csv`: a header, then train_rows + rows rows
in time order (the first train_rows from the initial world, for the first champion), columns
`x0..x{k-1}`, `c0`, `c1`, `label`, numbers with up to 6 significant digits, no id column.
Beside it `DIR/<family>-s<seed>.meta.json`:

    {"family": "abrupt", "seed": 1, "label": "label", "train_rows": 5000, "rows": 50000,
     "drift_points": [..], "drift_ends": [..], "drift_kind": "concept",
     "split": "tune", "description": "...", "classes": [...], "params": {...},
     "true_rule_accuracy": 0.88, "old_rule_drop": [0.31]}

drift_points are row indices counted from the FIRST streamed row (after the train rows) where
a change starts; drift_ends where it is complete (equal to drift_points for abrupt changes).
drift_kind is concept, covariate, prior or none (mixed is concept; its `drift_point_kinds`
says which point is which). true_rule_accuracy is the expected accuracy of the true rule on
the initial world (a ceiling for any model there); for concept streams, old_rule_drop gives,
per drift point, the expected accuracy the rule in force before it loses on rows after it.
`DIR/suite.json` lists every stream with its family, seed and split.

Held-out rule
-------------
The third of the seeds given, by position (seeds[2::3]; seed 3 with the default 1,2,3), of
every family is marked "split": "held_out", the others "tune". Nothing may be tuned on
held_out streams: no knob, threshold, default or code change may be chosen by looking at
their results. They are run only to report how the tuned loop does on streams it has not
seen. The split depends on the position in --seeds, so always generate with the same seed
list (heal_suite.sh generates the whole list and filters afterwards).
"""
import argparse
import json
import math
import os
import random
import sys
from dataclasses import dataclass, replace

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white")
BINARY = ("no", "yes")
TERNARY = ("low", "mid", "high")
MC_ROWS = 3000  # rows of the Monte Carlo sample behind concept checks and expected accuracies
SEED_PREFIX = "mend-heal-suite"


# ---------------------------------------------------------------------------------------------
# Small numeric helpers


def sigmoid(t):
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


def logistic_noise(rng):
    u = rng.random()
    while u <= 0.0:
        u = rng.random()
    return math.log(u / (1.0 - u))


def lerp(a, b, t):
    return a + (b - a) * t


def lerp_seq(a, b, t):
    return tuple(lerp(x, y, t) for x, y in zip(a, b))


def ramp(i, start, width):
    """0 before start, 1 from start + width on, linear in between (a step when width is 0)."""
    if i < start:
        return 0.0
    if width <= 0 or i >= start + width:
        return 1.0
    return (i - start) / width


def quantile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def pick(rng, probs):
    u = rng.random()
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if u < acc:
            return i
    return len(probs) - 1


def skewed_probs(rng, n):
    """Category frequencies: a Dirichlet(1.5) draw, floored so no level is vanishingly rare."""
    g = [rng.gammavariate(1.5, 1.0) + 0.15 for _ in range(n)]
    total = sum(g)
    return tuple(v / total for v in g)


def fmt(v):
    return f"{v:.6g}"


def write_json(path, obj):
    """A JSON object with one top-level key per line, each value on a single line (a list of
    objects: one object per line)."""
    def one(v):
        return json.dumps(v, separators=(", ", ": "))

    items = []
    for k, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            body = "[\n" + ",\n".join(f"    {one(x)}" for x in v) + "\n  ]"
        else:
            body = one(v)
        items.append(f"  {json.dumps(k)}: {body}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(items) + "\n}\n")


# ---------------------------------------------------------------------------------------------
# The world: feature distributions and concepts


@dataclass(frozen=True)
class Features:
    """Where rows come from: z_j ~ N(loc_j, scale_j); c0 ~ p0, c1 ~ p1 (indices of levels)."""

    loc: tuple
    scale: tuple
    p0: tuple
    p1: tuple

    def sample(self, rng):
        z = [rng.gauss(m, s) for m, s in zip(self.loc, self.scale)]
        return z, pick(rng, self.p0), pick(rng, self.p1)

    def blend(self, other, t):
        if t <= 0.0:
            return self
        if t >= 1.0:
            return other
        return Features(lerp_seq(self.loc, other.loc, t), lerp_seq(self.scale, other.scale, t),
                        lerp_seq(self.p0, other.p0, t), lerp_seq(self.p1, other.p1, t))


@dataclass(frozen=True)
class Concept:
    """A labelling rule: latent = bias + w.z + e0[c0] + e1[c1] + Logistic(0, 1/gain); the class
    is how many cuts lie below the latent; then a share `noise` of labels goes to another class."""

    w: tuple
    e0: tuple
    e1: tuple
    bias: float
    cuts: tuple
    gain: float
    noise: float
    classes: tuple

    def score(self, z, c0, c1):
        s = self.bias + self.e0[c0] + self.e1[c1]
        for wj, zj in zip(self.w, z):
            s += wj * zj
        return s

    def probs(self, z, c0, c1):
        """P(class | x), label noise included."""
        s = self.score(z, c0, c1)
        below = [sigmoid(self.gain * (t - s)) for t in self.cuts] + [1.0]
        clean = [below[0]] + [below[j] - below[j - 1] for j in range(1, len(below))]
        m, n = len(self.classes), self.noise
        return [(1 - n) * p + n * (1 - p) / (m - 1) for p in clean]

    def predict(self, z, c0, c1):
        p = self.probs(z, c0, c1)
        return max(range(len(p)), key=p.__getitem__)

    def draw(self, rng, z, c0, c1):
        latent = self.score(z, c0, c1) + logistic_noise(rng) / self.gain
        k = sum(1 for t in self.cuts if latent > t)
        if rng.random() < self.noise:
            other = rng.randrange(len(self.classes) - 1)
            k = other if other < k else other + 1
        return self.classes[k]

    def toward(self, other, t):
        """The rule a share t of the way from self to other (weights, effects, bias, cuts)."""
        if t <= 0.0:
            return self
        if t >= 1.0:
            return other
        return replace(self, w=lerp_seq(self.w, other.w, t), e0=lerp_seq(self.e0, other.e0, t),
                       e1=lerp_seq(self.e1, other.e1, t), bias=lerp(self.bias, other.bias, t),
                       cuts=lerp_seq(self.cuts, other.cuts, t))


def mc_sample(rng, features, n=MC_ROWS):
    return [features.sample(rng) for _ in range(n)]


def expected_accuracy(rule, truth, sample):
    """Expected accuracy of predicting with `rule` on rows labelled by `truth`."""
    total = 0.0
    for z, c0, c1 in sample:
        total += truth.probs(z, c0, c1)[rule.predict(z, c0, c1)]
    return total / len(sample)


def accuracy_drop(old, new, sample):
    """How much worse the old rule does than the new one on rows of the new one."""
    return expected_accuracy(new, new, sample) - expected_accuracy(old, new, sample)


def settle(concept, rng, sample):
    """Sets bias (so classes are roughly balanced, off-centre by a little) and, for three
    classes, the cuts at the tertiles of the latent score."""
    raw = [concept.score(z, c0, c1) - concept.bias for z, c0, c1 in sample]
    bias = -quantile(raw, 0.5) + rng.uniform(-0.3, 0.3)
    if len(concept.classes) == 2:
        return replace(concept, bias=bias, cuts=(0.0,))
    latent = [s + bias + logistic_noise(rng) / concept.gain for s in raw]
    return replace(concept, bias=bias, cuts=(quantile(latent, 1 / 3), quantile(latent, 2 / 3)))


@dataclass(frozen=True)
class Shape:
    """What is fixed for the whole stream: sizes, units, noise, sharpness, classes."""

    k: int
    card0: int
    card1: int
    mu: tuple
    sd: tuple
    gain: float
    noise: float
    classes: tuple
    w_norm: tuple  # range of the numeric weights' norm
    cat: float  # category effects are uniform in [-cat, cat]


def draw_shape(rng, classes=BINARY, w_norm=(1.5, 2.5), cat=1.2):
    k = rng.randint(3, 6)
    return Shape(k=k, card0=rng.randint(3, 8), card1=rng.randint(3, 8),
                 mu=tuple(round(rng.uniform(-5, 5), 2) for _ in range(k)),
                 sd=tuple(round(rng.uniform(0.5, 3.0), 2) for _ in range(k)),
                 gain=rng.uniform(2.5, 4.0), noise=round(rng.uniform(0.05, 0.10), 3),
                 classes=classes, w_norm=w_norm, cat=cat)


def base_features(rng, shape):
    return Features(loc=(0.0,) * shape.k, scale=(1.0,) * shape.k,
                    p0=skewed_probs(rng, shape.card0), p1=skewed_probs(rng, shape.card1))


def random_concept(rng, shape, sample, signs=None):
    """A fresh rule; `signs` fixes the sign of each numeric weight."""
    signs = signs or [rng.choice((-1, 1)) for _ in range(shape.k)]
    w = [s * rng.uniform(0.3, 1.0) for s in signs]
    norm = math.sqrt(sum(v * v for v in w))
    target = rng.uniform(*shape.w_norm)
    w = tuple(v * target / norm for v in w)
    e0 = tuple(rng.uniform(-shape.cat, shape.cat) for _ in range(shape.card0))
    e1 = tuple(rng.uniform(-shape.cat, shape.cat) for _ in range(shape.card1))
    c = Concept(w=w, e0=e0, e1=e1, bias=0.0, cuts=(), gain=shape.gain, noise=shape.noise,
                classes=shape.classes)
    return settle(c, rng, sample)


def new_sign_pattern(rng, old):
    """The old weights' signs with at least one and at most k-1 flipped, always including one of
    the two largest weights."""
    k = len(old.w)
    order = sorted(range(k), key=lambda j: -abs(old.w[j]))
    flip = {rng.choice(order[:2])}
    for j in range(k):
        if rng.random() < 0.35:
            flip.add(j)
    if len(flip) == k:
        flip.discard(rng.choice(sorted(flip)))
    return [(-1 if j in flip else 1) * (1 if old.w[j] >= 0 else -1) for j in range(k)]


def distinct_concept(rng, shape, old, sample, avoid=(), lo=0.20, hi=0.40, tries=400):
    """A new rule for which the old rule's expected accuracy drop is near a target drawn from
    [lo, hi] (within 0.03), and at least lo for each rule in `avoid`; the closest candidate if
    none qualifies."""
    target = rng.uniform(lo, hi)
    best, best_gap = None, float("inf")
    for _ in range(tries):
        cand = random_concept(rng, shape, sample, signs=new_sign_pattern(rng, old))
        drop = accuracy_drop(old, cand, sample)
        others = [accuracy_drop(a, cand, sample) for a in avoid]
        gap = max(0.0, abs(drop - target) - 0.03) + max([0.0] + [lo - d for d in others])
        if gap == 0.0:
            return cand
        if gap < best_gap:
            best, best_gap = cand, gap
    return best


def remapped_categories(rng, old, sample, lo=0.20, hi=0.40, tries=400):
    """The same numeric weights with a second category-effect map (each of c0's and c1's maps
    negated or permuted), the old rule's expected accuracy drop near a target drawn from
    [lo, hi] (within 0.03); the closest candidate if none qualifies."""
    def remap(e):
        if rng.random() < 0.5:
            return tuple(-v for v in e)
        perm = list(e)
        rng.shuffle(perm)
        return tuple(perm)

    target = rng.uniform(lo, hi)
    best, best_gap = None, float("inf")
    for _ in range(tries):
        cand = settle(replace(old, e0=remap(old.e0), e1=remap(old.e1)), rng, sample)
        gap = max(0.0, abs(accuracy_drop(old, cand, sample) - target) - 0.03)
        if gap == 0.0:
            return cand
        if gap < best_gap:
            best, best_gap = cand, gap
    return best


# ---------------------------------------------------------------------------------------------
# Plans: what the world is at each streamed row i (i < 0 for the train rows)


@dataclass
class Plan:
    family: str
    shape: Shape
    features_at: object  # i -> Features
    concept_at: object  # (i, rng) -> Concept
    prior_at: object = None  # i -> P(first class) to enforce by rejection, or None
    drift_points: list = None
    drift_ends: list = None
    drift_kind: str = "none"
    description: str = ""
    concepts: dict = None  # name -> Concept, for checks
    features: dict = None  # name -> Features, for checks
    extra: dict = None  # more sidecar fields


def scale_of(rows):
    return min(1.0, rows / 50000)


def switches(rng, rows, lo, hi):
    """Positions of recurring switches: periods uniform in [lo, hi] rows (scaled)."""
    s = scale_of(rows)
    points, at = [], 0
    while True:
        at += int(rng.uniform(lo, hi) * s)
        if at >= rows:
            return points
        points.append(at)


def segment(i, points):
    return sum(1 for p in points if i >= p)


def start(rng, rows, lo, hi):
    return int(rng.uniform(lo, hi) * rows)


def setup(rng, mc, **shape_kw):
    shape = draw_shape(rng, **shape_kw)
    feats = base_features(rng, shape)
    sample = mc_sample(mc, feats)
    return shape, feats, sample, random_concept(rng, shape, sample)


def plan_abrupt(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    if rng.random() < 0.5:
        points = [start(rng, rows, 0.3, 0.6)]
    else:
        points = [start(rng, rows, 0.2, 0.4), start(rng, rows, 0.6, 0.8)]
    rules = [a, distinct_concept(rng, shape, a, sample)]
    if len(points) == 2:
        rules.append(distinct_concept(rng, shape, rules[1], sample, avoid=(a,)))
    where = " and ".join(f"{p:,}" for p in points)
    return Plan("abrupt", shape, lambda i: feats, lambda i, r: rules[segment(i, points)],
                drift_points=points, drift_ends=list(points), drift_kind="concept",
                description=f"The labelling rule is replaced at once by a new random rule at "
                            f"streamed row{'s' if len(points) > 1 else ''} {where}.",
                concepts={f"c{j}": c for j, c in enumerate(rules)}, features={"base": feats})


def plan_abrupt3(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc, classes=TERNARY, w_norm=(2.2, 3.2), cat=1.6)
    points = [start(rng, rows, 0.35, 0.65)]
    b = distinct_concept(rng, shape, a, sample)
    return Plan("abrupt3", shape, lambda i: feats, lambda i, r: (a, b)[segment(i, points)],
                drift_points=points, drift_ends=list(points), drift_kind="concept",
                description=f"Three classes (low/mid/high); the labelling rule is replaced at once "
                            f"by a new random rule at streamed row {points[0]:,}.",
                concepts={"c0": a, "c1": b}, features={"base": feats})


def plan_gradual(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    b = distinct_concept(rng, shape, a, sample)
    p0 = start(rng, rows, 0.3, 0.5)
    width = int(rng.uniform(2000, 6000) * scale_of(rows))

    def concept_at(i, r):
        t = ramp(i, p0, width)
        if t <= 0.0:
            return a
        if t >= 1.0:
            return b
        return b if r.random() < t else a

    return Plan("gradual", shape, lambda i: feats, concept_at,
                drift_points=[p0], drift_ends=[p0 + width], drift_kind="concept",
                description=f"Rows come from a second rule with a share rising linearly from 0 at "
                            f"streamed row {p0:,} to 1 at row {p0 + width:,}.",
                concepts={"c0": a, "c1": b}, features={"base": feats})


def plan_incremental(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    b = distinct_concept(rng, shape, a, sample, lo=0.25, hi=0.45)
    p0 = start(rng, rows, 0.15, 0.3)
    width = int(rng.uniform(0.35, 0.55) * rows)
    return Plan("incremental", shape, lambda i: feats,
                lambda i, r: a.toward(b, ramp(i, p0, width)),
                drift_points=[p0], drift_ends=[p0 + width], drift_kind="concept",
                description=f"The rule's weights, category effects and bias move linearly to "
                            f"another rule's from streamed row {p0:,} to row {p0 + width:,}, "
                            f"then stop.",
                concepts={"c0": a, "c1": b}, features={"base": feats})


def plan_recurring(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    b = distinct_concept(rng, shape, a, sample)
    points = switches(rng, rows, 8000, 15000)
    return Plan("recurring", shape, lambda i: feats, lambda i, r: (a, b)[segment(i, points) % 2],
                drift_points=points, drift_ends=list(points), drift_kind="concept",
                description=f"Two rules alternate A, B, A, ... switching at once at streamed rows "
                            f"{', '.join(f'{p:,}' for p in points)}.",
                concepts={"c0": a, "c1": b}, features={"base": feats})


def plan_recurring_categorical(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc, w_norm=(0.8, 1.3), cat=2.2)
    b = remapped_categories(rng, a, sample)
    points = switches(rng, rows, 8000, 15000)
    return Plan("recurring_categorical", shape, lambda i: feats,
                lambda i, r: (a, b)[segment(i, points) % 2],
                drift_points=points, drift_ends=list(points), drift_kind="concept",
                description=f"The numeric weights stay while two maps of which c0/c1 categories "
                            f"favour 'yes' alternate, switching at once at streamed rows "
                            f"{', '.join(f'{p:,}' for p in points)}.",
                concepts={"c0": a, "c1": b}, features={"base": feats})


def shifted_features(rng, feats):
    """1-2 numeric means moved by 1-2 sd, one spread scaled by 1.5-2.5, c0's frequencies
    reversed in rank and c1's redrawn. Returns the new Features and a summary."""
    k = len(feats.loc)
    moved = rng.sample(range(k), rng.choice((1, 2)))
    loc = list(feats.loc)
    for j in moved:
        loc[j] += rng.choice((-1, 1)) * rng.uniform(1.0, 2.0)
    spread = rng.randrange(k)
    scale = list(feats.scale)
    scale[spread] *= rng.uniform(1.5, 2.5)
    ranks = sorted(range(len(feats.p0)), key=lambda c: feats.p0[c])
    by_rank = sorted(feats.p0, reverse=True)
    p0 = [0.0] * len(feats.p0)
    for r, c in enumerate(ranks):
        p0[c] = by_rank[r]  # the rarest level gets the largest frequency, and so on
    p1 = skewed_probs(rng, len(feats.p1))
    new = Features(tuple(loc), tuple(scale), tuple(p0), p1)
    summary = (f"the means of {', '.join(f'x{j}' for j in sorted(moved))} and the spread of "
               f"x{spread} move and the category frequencies change")
    return new, summary


def plan_covariate(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    after, summary = shifted_features(rng, feats)
    p0 = start(rng, rows, 0.3, 0.6)
    width = 0 if rng.random() < 0.5 else int(rng.uniform(1000, 4000) * scale_of(rows))
    when = (f"at once at streamed row {p0:,}" if width == 0
            else f"linearly from streamed row {p0:,} to {p0 + width:,}")
    return Plan("covariate", shape, lambda i: feats.blend(after, ramp(i, p0, width)),
                lambda i, r: a, drift_points=[p0], drift_ends=[p0 + width],
                drift_kind="covariate",
                description=f"The labelling rule stays; {summary}, {when}.",
                concepts={"c0": a}, features={"base": feats, "shifted": after})


def plan_prior(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    p0 = start(rng, rows, 0.3, 0.6)
    width = 0 if rng.random() < 0.5 else int(rng.uniform(1000, 5000) * scale_of(rows))
    heavy = rng.uniform(0.75, 0.85)
    first = heavy if rng.random() < 0.5 else 1.0 - heavy  # P(first class, 'no') after the move
    when = (f"at once at streamed row {p0:,}" if width == 0
            else f"linearly from streamed row {p0:,} to {p0 + width:,}")
    pct = round(100 * first)
    return Plan("prior", shape, lambda i: feats, lambda i, r: a,
                prior_at=lambda i: lerp(0.5, first, ramp(i, p0, width)),
                drift_points=[p0], drift_ends=[p0 + width], drift_kind="prior",
                description=f"The class balance no:yes moves from 50:50 to {pct}:{100 - pct} "
                            f"{when}, with P(x | label) unchanged.",
                concepts={"c0": a}, features={"base": feats},
                extra={"prior_before": {"no": 0.5, "yes": 0.5},
                       "prior_after": {"no": round(first, 4), "yes": round(1 - first, 4)}})


def plan_none(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    return Plan("none", shape, lambda i: feats, lambda i, r: a, drift_points=[], drift_ends=[],
                drift_kind="none", description="Stationary: one rule and one feature "
                                               "distribution throughout.",
                concepts={"c0": a}, features={"base": feats})


def plan_mixed(rng, mc, rows):
    shape, feats, sample, a = setup(rng, mc)
    after, summary = shifted_features(rng, feats)
    b = distinct_concept(rng, shape, a, mc_sample(mc, after))
    p1, p2 = start(rng, rows, 0.2, 0.4), start(rng, rows, 0.55, 0.8)
    return Plan("mixed", shape, lambda i: after if i >= p1 else feats,
                lambda i, r: b if i >= p2 else a, drift_points=[p1, p2], drift_ends=[p1, p2],
                drift_kind="concept",
                description=f"At streamed row {p1:,} {summary} (rule unchanged); at row {p2:,} "
                            f"the labelling rule is replaced by a new random rule.",
                concepts={"c0": a, "c1": b}, features={"base": feats, "shifted": after},
                extra={"drift_point_kinds": ["covariate", "concept"]})


FAMILIES = {
    "abrupt": (plan_abrupt, "the labelling rule changes at once, once or twice"),
    "abrupt3": (plan_abrupt3, "3 classes (low/mid/high); the labelling rule changes at once"),
    "gradual": (plan_gradual, "a second rule's share of rows rises linearly over 2k-6k rows"),
    "incremental": (plan_incremental,
                    "the rule's weights move continuously over 35-55% of the stream, then stop"),
    "recurring": (plan_recurring, "two rules alternate A,B,A,..., abrupt switches every 8k-15k"),
    "recurring_categorical": (plan_recurring_categorical,
                              "numeric weights stay; two category-effect maps alternate"),
    "covariate": (plan_covariate,
                  "feature means/spreads and category frequencies move; P(label|x) stays"),
    "prior": (plan_prior, "class balance moves 50/50 -> ~80/20; P(x|label) stays"),
    "none": (plan_none, "stationary, no drift at all"),
    "mixed": (plan_mixed, "a covariate shift, later an abrupt concept change"),
}


def build_plan(family, seed, rows):
    """The plan of one stream (its parameters come from the stream's own generators)."""
    base = f"{SEED_PREFIX}/{family}/{seed}"
    return FAMILIES[family][0](random.Random(f"{base}/params"), random.Random(f"{base}/mc"), rows)


# ---------------------------------------------------------------------------------------------
# Rows and files


def rows_of(plan, seed, rows, train_rows):
    """(z, c0, c1, label) in time order, train rows first (i from -train_rows to rows-1)."""
    rng = random.Random(f"{SEED_PREFIX}/{plan.family}/{seed}/rows")
    classes = plan.shape.classes
    for i in range(-train_rows, rows):
        feats = plan.features_at(i)
        want = None
        if plan.prior_at is not None:
            want = classes[0] if rng.random() < plan.prior_at(i) else classes[1]
        while True:
            z, c0, c1 = feats.sample(rng)
            label = plan.concept_at(i, rng).draw(rng, z, c0, c1)
            if want is None or label == want:
                break
        yield i, z, c0, c1, label


def header(shape):
    return [f"x{j}" for j in range(shape.k)] + ["c0", "c1", "label"]


def csv_line(shape, z, c0, c1, label):
    xs = [fmt(m + s * v) for m, s, v in zip(shape.mu, shape.sd, z)]
    return ",".join(xs + [COLOURS[c0], f"a{c1}", label])


def meta_of(plan, seed, rows, train_rows, split):
    shape = plan.shape
    a = plan.concepts["c0"]
    sample = mc_sample(random.Random(f"{SEED_PREFIX}/{plan.family}/{seed}/ceiling"),
                       plan.features["base"])
    meta = {
        "family": plan.family,
        "seed": seed,
        "label": "label",
        "train_rows": train_rows,
        "rows": rows,
        "drift_points": plan.drift_points,
        "drift_ends": plan.drift_ends,
        "drift_kind": plan.drift_kind,
        "split": split,
        "description": plan.description,
        "classes": list(shape.classes),
        "params": {"numeric_features": shape.k, "c0_levels": list(COLOURS[:shape.card0]),
                   "c1_levels": [f"a{j}" for j in range(shape.card1)],
                   "label_noise": shape.noise, "sharpness": round(shape.gain, 3)},
        "true_rule_accuracy": round(expected_accuracy(a, a, sample), 4),
    }
    if plan.drift_kind == "concept":
        meta["old_rule_drop"] = old_rule_drops(plan, seed)
    meta.update(plan.extra or {})
    return meta


def old_rule_drops(plan, seed):
    """Per drift point: the expected accuracy the rule in force just before it loses, against
    the rule in force once the change is complete, on rows of the latter (0 where only the
    features move)."""
    rng = random.Random(f"{SEED_PREFIX}/{plan.family}/{seed}/drops")
    drops = []
    for p, e in zip(plan.drift_points, plan.drift_ends):
        old, new = plan.concept_at(p - 1, rng), plan.concept_at(e, rng)
        drops.append(round(accuracy_drop(old, new, mc_sample(rng, plan.features_at(e))), 3))
    return drops


def write_stream(out, family, seed, rows, train_rows, split):
    plan = build_plan(family, seed, rows)
    name = f"{family}-s{seed}"
    with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
        f.write(",".join(header(plan.shape)) + "\n")
        for _, z, c0, c1, label in rows_of(plan, seed, rows, train_rows):
            f.write(csv_line(plan.shape, z, c0, c1, label) + "\n")
    write_json(os.path.join(out, name + ".meta.json"), meta_of(plan, seed, rows, train_rows, split))
    return {"name": name, "csv": name + ".csv", "meta": name + ".meta.json", "family": family,
            "seed": seed, "split": split, "drift_kind": plan.drift_kind}


def split_of(position):
    return "held_out" if position % 3 == 2 else "tune"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="directory to write the suite into")
    p.add_argument("--rows", type=int, default=50000, help="streamed rows per stream")
    p.add_argument("--train-rows", type=int, default=5000,
                   help="rows before the stream, for the first champion")
    p.add_argument("--seeds", default="1,2,3",
                   help="comma-separated seeds; the third of each three is held out")
    p.add_argument("--families", default="all", help="`all` or a comma-separated list")
    p.add_argument("--list", action="store_true", help="print the families and exit")
    args = p.parse_args(argv)
    if not args.list and not args.out:
        p.error("--out is required (or --list)")
    if args.rows < 1 or args.train_rows < 0:
        p.error("--rows must be positive and --train-rows non-negative")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error("--seeds must be comma-separated integers")
    if not args.seeds or len(set(args.seeds)) != len(args.seeds):
        p.error("--seeds must be a non-empty list without repeats")
    if args.families == "all":
        args.families = list(FAMILIES)
    else:
        args.families = [f.strip() for f in args.families.split(",") if f.strip()]
        unknown = [f for f in args.families if f not in FAMILIES]
        if unknown:
            p.error(f"unknown families: {', '.join(unknown)} (see --list)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        width = max(map(len, FAMILIES))
        for name, (_, line) in FAMILIES.items():
            print(f"{name:<{width}}  {line}")
        return 0
    os.makedirs(args.out, exist_ok=True)
    streams = []
    for family in args.families:
        for position, seed in enumerate(args.seeds):
            split = split_of(position)
            print(f"{family}-s{seed} ({split}) ...", file=sys.stderr)
            streams.append(write_stream(args.out, family, seed, args.rows, args.train_rows, split))
    index = {"generator": "scripts/heal_suite.py", "rows": args.rows,
             "train_rows": args.train_rows, "seeds": args.seeds,
             "held_out_rule": "the third of the seeds given, by position (seeds[2::3])",
             "streams": streams}
    write_json(os.path.join(args.out, "suite.json"), index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
