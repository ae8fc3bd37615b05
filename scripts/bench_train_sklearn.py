"""scikit-learn's side of scripts/bench-train.sh: StandardScaler + LogisticRegression (lbfgs,
defaults) on the same CSV, the same time-ordered split (the newest 20% held out)."""
import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

path, n_features = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
X = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(2, 2 + n_features))
y = np.loadtxt(path, delimiter=",", skiprows=1, usecols=[2 + n_features], dtype=str)
load_s = time.perf_counter() - t0
n = len(y)
hold = int(round(n * 0.2))
Xtr, ytr, Xte, yte = X[: n - hold], y[: n - hold], X[n - hold :], y[n - hold :]
t0 = time.perf_counter()
scaler = StandardScaler().fit(Xtr)
Xs = scaler.transform(Xtr)
prep_s = time.perf_counter() - t0
t0 = time.perf_counter()
model = LogisticRegression().fit(Xs, ytr)
fit_s = time.perf_counter() - t0
acc = float((model.predict(scaler.transform(Xte)) == yte).mean())
print(json.dumps({"rows_train": n - hold, "fit_ms": fit_s * 1e3, "prep_ms": prep_s * 1e3,
                  "load_ms": load_s * 1e3, "iterations": int(model.n_iter_[0]), "accuracy": acc}))
