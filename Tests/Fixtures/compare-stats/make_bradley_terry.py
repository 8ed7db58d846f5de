"""Reference Bradley-Terry fit for BradleyTerryTests: plain gradient ascent on the penalized
log-likelihood, independent of Rein's Newton solver. Writes bradley_terry.json.

P(i beats j) = sigmoid(t_i - t_j); a tie is half a win each way; objective
sum over battles of s log sigmoid(t_a - t_b) + (1 - s) log sigmoid(t_b - t_a) - l2/2 sum t^2.
Ratings: 1000 + 400 / ln(10) * (t_i - mean t), and again with the anchor policy at 1000.
Run: python3 make_bradley_terry.py  (standard library only)
"""
import json
import math

policies = ["base", "sft", "dpo", "ppo"]
# (a, b, wins of a, wins of b, ties)
table = [
    ("base", "sft", 3, 9, 2),
    ("base", "dpo", 2, 10, 1),
    ("base", "ppo", 1, 7, 3),
    ("sft", "dpo", 6, 8, 4),
    ("sft", "ppo", 5, 6, 2),
    ("dpo", "ppo", 7, 5, 3),
]
l2 = 1e-3
anchor = "sft"

index = {p: i for i, p in enumerate(policies)}
t = [0.0] * len(policies)


def gradient(t):
    g = [-l2 * x for x in t]
    for a, b, wa, wb, ties in table:
        i, j = index[a], index[b]
        s = wa + 0.5 * ties        # points of a against b
        n = wa + wb + ties
        p = 1 / (1 + math.exp(-(t[i] - t[j])))
        g[i] += s - n * p
        g[j] -= s - n * p
    return g


rate = 0.01
for step in range(1_000_000):
    g = gradient(t)
    if max(abs(x) for x in g) < 1e-13:
        break
    t = [x + rate * y for x, y in zip(t, g)]

per_nat = 400 / math.log(10)
mean = sum(t) / len(t)
out = {
    "made_by": "make_bradley_terry.py (gradient ascent, %d steps, max |gradient| < 1e-13)" % step,
    "l2": l2,
    "anchor": anchor,
    "tolerance": 1e-6,
    "policies": policies,
    "table": [{"a": a, "b": b, "wins_a": wa, "wins_b": wb, "ties": ties} for a, b, wa, wb, ties in table],
    "ratings_mean_1000": {p: 1000 + per_nat * (t[index[p]] - mean) for p in policies},
    "ratings_anchor_1000": {p: 1000 + per_nat * (t[index[p]] - t[index[anchor]]) for p in policies},
}
with open("bradley_terry.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(out["made_by"], out["ratings_mean_1000"])
