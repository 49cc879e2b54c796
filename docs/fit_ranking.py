"""Fits the weights of a candidate unit's features (RankingWeights in
core/knowledge/src/retriever.rs) from the features `qa` dumps. See docs/retrieval.md.

usage: python3 docs/fit_ranking.py FEATURES.jsonl [FEATURES.jsonl ...]   (needs numpy)

Each line of a dump is one answerable question: every candidate unit's features and whether the
unit holds the expected answer. The search moves one weight at a time (the question's coverage
stays 1) and keeps a move when more questions get a right unit first, or among the first three
(counted half). Signs are kept: a bonus stays a bonus, a penalty a penalty. The weight of the
question's language is a product rule and is not moved.
"""
import json
import sys

import numpy as np

NAMES = ["coverage", "keywords", "about_document", "meaning", "meaning_rank", "same_language",
         "number", "price", "long", "question", "compared"]
START = np.array([1.0, 0.1, 0.1, 0.5, 0.0, 0.15, 0.08, 0.2, -0.05, -0.3, 0.15])
SIGN = np.array([1, 1, 1, 1, 1, 1, 1, 1, -1, -1, 1])
FIXED = {"coverage", "same_language"}
STEPS = [-0.3, -0.15, -0.08, -0.04, 0.04, 0.08, 0.15, 0.3]

questions = []
for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        record = json.loads(line)
        gold = np.array([unit["gold"] for unit in record["units"]], dtype=bool)
        if gold.any():
            questions.append((np.array([unit["f"] for unit in record["units"]], float), gold))


def objective(weights):
    total = 0.0
    for features, gold in questions:
        order = np.argsort(-(features @ weights), kind="stable")
        total += gold[order[0]] + 0.5 * gold[order[:3]].any()
    return total


weights, best = START.copy(), objective(START)
for _ in range(5):
    improved = False
    for index, name in enumerate(NAMES):
        if name in FIXED:
            continue
        for step in STEPS:
            candidate = weights.copy()
            candidate[index] = max(0.0, (candidate[index] + step) * SIGN[index]) * SIGN[index]
            score = objective(candidate)
            if score > best + 1e-9:
                weights, best, improved = candidate, score, True
    if not improved:
        break

print(f"# {len(questions)} questions; objective {objective(START):.1f} -> {best:.1f}")
for name, weight in zip(NAMES, weights):
    print(f"{name}: {weight:.2f},")
