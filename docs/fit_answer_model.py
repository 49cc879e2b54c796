"""Fits the logistic model that decides whether the built-in retriever answers (ANSWER_MODEL in
core/knowledge/src/retriever.rs) from the signals `qa` dumps. See docs/retrieval.md.

usage: python3 docs/fit_answer_model.py DUMP.jsonl [DUMP.jsonl ...]   (needs numpy)
"""
import json
import sys

import numpy as np

FEATURES = ["best_similarity", "similarity_z", "coverage", "unknown_share", "cross_language"]

rows = []
for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        record = json.loads(line)
        if record["similarity"] is None:
            continue
        if record["kind"] != "unanswerable" and not record["correct"]:
            continue  # a wrong answer is wrong whether it is shown or not: no lesson either way
        rows.append(([record[name] for name in FEATURES], record["kind"] != "unanswerable"))

x = np.array([features for features, _ in rows])
y = np.array([float(answerable) for _, answerable in rows])
mean, deviation = x.mean(0), x.std(0) + 1e-6
design = np.hstack([(x - mean) / deviation, np.ones((len(x), 1))])
# Balanced classes: there are far fewer unanswerable questions than answerable ones.
class_weight = np.where(y == 0, len(y) / (2 * (y == 0).sum()), len(y) / (2 * (y == 1).sum()))
weights = np.zeros(design.shape[1])
for _ in range(5000):
    probability = 1 / (1 + np.exp(-design @ weights))
    gradient = design.T @ ((probability - y) * class_weight) / len(y) + 0.01 * weights
    weights -= 0.5 * gradient

print(f"const ANSWER_MODEL: ([(f32, f32, f32); {len(FEATURES)}], f32) = (\n    [")
for name, m, d, w in zip(FEATURES, mean, deviation, weights):
    print(f"        ({m:.3f}, {d:.3f}, {w:.3f}), // {name}")
print(f"    ],\n    {weights[-1]:.3f},\n);")
