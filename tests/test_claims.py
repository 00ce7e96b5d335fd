"""Claims and verdicts (kcompress.analysis.claims) and the cross-run comparison, on fake
workdirs whose exponents are known: the analysis must recover them by itself."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from kcompress import theory
from kcompress.analysis import (claims, claims_curves, claims_exponents, claims_probes,
                                claims_rule, claims_size, claims_stream, compare, exponents, load)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENS = {"name": 96, "syntax": 128, "value": 32, "end": 32}   # per step (batch)
LABELS = ("1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256-511", "512+")
NUM_FRESH = 256
T0 = 5e4   # tokens where the knowledge phase starts (syntax within 10% at step ~170)


def _params(width):
  return 50 * width * width


def fake_metrics(widths, alpha, a, steps, *, plateau=None, seed=0, syntax_tau=50.0, sd=0.05,
                 scale=1.0):
  """metrics.jsonl rows: syntax bits floor * (1 + 3 exp(-step / syntax_tau)); knowledge
  (name, value) bits = Bayes + excess, excess = A_w (t / T0)^-a (times lognormal noise of
  relative size `sd` per step), A_w = scale (w / w_0)^-0.5; Bayes knowledge bits per token
  0.3 + (t / T0)^-(1-alpha). plateau: {width: E_w} adds a constant excess (capacity-limited)."""
  rng = np.random.default_rng(seed)
  s = np.arange(1, steps + 1, dtype=float)
  t = s * sum(TOKENS.values())
  noise = lambda sd=sd: np.exp(rng.normal(0, sd, steps))
  bayes = {"name": (0.3 + (t / T0) ** (alpha - 1)) * noise(),
           "value": (0.3 + (t / T0) ** (alpha - 1)) * noise(),
           "syntax": 2.0 * noise(0.02), "end": np.zeros(steps)}
  rows = []
  for w in widths:
    amp = scale * (w / widths[0]) ** -0.5
    extra = (plateau or {}).get(w, 0.0)
    bits = {r: bayes[r] + (amp * (t / T0) ** -a + extra) * noise() + 5 * np.exp(-s / 20)
            for r in ("name", "value")}
    bits["syntax"] = bayes["syntax"] * (1 + 3 * np.exp(-s / syntax_tau)) * noise(0.02)
    bits["end"] = np.full(steps, 0.01)
    step_bits = sum(TOKENS[r] * bits[r] for r in TOKENS)
    bayes_bits = sum(TOKENS[r] * bayes[r] for r in TOKENS)
    cum = {r: np.cumsum(TOKENS[r] * bits[r]) for r in TOKENS}
    preq, bayes_cum = np.cumsum(step_bits), np.cumsum(bayes_bits)
    bcum = {r: np.cumsum(TOKENS[r] * bayes[r]) for r in TOKENS}
    for i in range(steps):
      row = {"step": i + 1, "width": w, "seed": 0, "params": _params(w),
             "tokens_seen": int(t[i]), "lr": 1e-3, "loss_bits": step_bits[i] / t[0],
             "step_bits": step_bits[i], "preq_bits": preq[i], "bayes_bits": bayes_cum[i],
             "frozen": False, "frozen_step": -1,
             "elapsed_s": 0.0}
      for r in TOKENS:
        row.update({f"bits_{r}": bits[r][i], f"bayes_{r}": bayes[r][i], f"tokens_{r}": TOKENS[r],
                    f"preq_bits_{r}": cum[r][i], f"bayes_bits_{r}": bcum[r][i]})
      rows.append(row)
  return rows


def fake_probe(width, step, *, fresh=0.2, unrevealed=0.25, shift=0.0, stored=0.3):
  """probes.jsonl row: accuracy rises with the occurrence bin, earlier for wider models."""
  know = {}
  for lab in LABELS:
    start = int(lab.split("-")[0].rstrip("+"))
    p = 1 / (1 + math.exp(-(math.log2(start) - 6 + math.log2(width / 32) + shift)))
    facts = 4000 / start
    know[lab] = {"n": 64, "accuracy": round(64 * p) / 64, "bits": 6 * (1 - p), "facts": facts,
                 "stored_bits": stored * 6 * facts, "fact_entropy_bits": 6 * facts}
  cap = {k: sum(v[k] for v in know.values()) for k in ("facts", "stored_bits", "fact_entropy_bits")}
  hall = lambda c: {"top1": 0.4, "entropy": 3.0, "kl": 2.0, "confident": c}
  return {"step": step, "width": width, "seed": 0, "params": _params(width), "knowledge": know,
          "capacity": cap, "hallucination": {"fresh": hall(fresh), "unrevealed": hall(unrevealed)},
          "bayes_hallucination": {"top1": 1 / 64, "entropy": 6.0, "kl": 0.0, "confident": 0.0},
          "facts": {"revealed": 1000, "singletons": 500, "occurrences": 20000,
                    "singleton_fraction": 0.5, "missing_mass": 0.025},
          "sampled": {"error": 0.005, "error_seen": 0.0, "error_unrevealed": 0.5,
                      "error_unseen": 0.9, "greedy_error": 0.004, "n": 512,
                      "bayes_error": 0.024, "missing_mass": 0.025, "missing_mass_py": 0.026,
                      "delta": 0.005}}


def fake_config(alpha, **extra):
  return {"data": {"alpha": alpha, "beta": 10.0, "name_length": 3, "num_sentences": 0},
          "probe": {"num_fresh": NUM_FRESH, "confident": 0.5}, **extra}


def write_workdir(path, alpha, a, widths=(32, 64), steps=3000):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(fake_config(alpha), f)
  with open(os.path.join(path, "metrics.jsonl"), "w") as f:
    for r in fake_metrics(widths, alpha, a, steps):
      f.write(json.dumps(r) + "\n")
  with open(os.path.join(path, "probes.jsonl"), "w") as f:
    for step in (steps // 2, steps):
      for w in widths:
        f.write(json.dumps(fake_probe(w, step)) + "\n")
  return str(path)


def by_id(rows, cid, model=None):
  out = [c for c in rows if c["id"] == cid and (model is None or c.get("model") == model)]
  assert out, cid
  return out[0]


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory):
  """Two fake runs: alpha 0.5 with knowledge-excess exponent 0.5, alpha 0.7 with 0.3."""
  root = tmp_path_factory.mktemp("claims")
  return [write_workdir(root / "a05", 0.5, 0.5),
          write_workdir(root / "a07", 0.7, 0.3, widths=(32,))]


@pytest.fixture(scope="module")
def fake_claims(fake_runs):
  runs = [load.load_run(w) for w in fake_runs]
  return runs, [claims.run_claims(r, {}) for r in runs]


# ------------------------------------------------------------------- the rule


def test_verdict_rule_point():
  assert claims_rule.verdict(0.5, (0.45, 0.55))[0] == "consistent"
  v, why = claims_rule.verdict(0.5, (0.6, 0.7))
  assert v == "inconsistent" and "excludes" in why
  v, why = claims_rule.verdict(0.5, (0.0, 0.6))   # width 0.6 > max(1.0 x 0.5, 0.1)
  assert v == "inconclusive" and why.startswith("interval too wide")
  assert claims_rule.verdict(0.5, (0.0, 0.5))[0] == "consistent"   # width 0.5: allowed
  assert claims_rule.verdict(0.01, (0.05, 0.14))[0] == "inconsistent"   # the absolute width floor
  assert claims_rule.verdict(0.01, (0.05, 0.16))[0] == "inconclusive"
  assert claims_rule.verdict(0.5, (0.46, 0.54), max_rel_width=0.1)[0] == "consistent"
  assert claims_rule.verdict(0.5, (0.3, 0.7), max_rel_width=0.1,
                             min_abs_width=0.01)[0] == "inconclusive"


def test_verdict_rule_one_sided_and_regime():
  assert claims_rule.verdict(0.0, (0.1, 0.3), "above")[0] == "consistent"
  assert claims_rule.verdict(0.0, (-0.3, -0.1), "above")[0] == "inconsistent"
  v, why = claims_rule.verdict(0.0, (-0.1, 0.3), "above")
  assert v == "inconclusive" and "straddles" in why
  assert claims_rule.verdict(0.0, (-0.3, -0.1), "below")[0] == "consistent"
  assert claims_rule.verdict(0.0, (0.1, 0.3), "below")[0] == "inconsistent"
  assert claims_rule.verdict(0.0, (-0.1, 0.3), "below")[0] == "inconclusive"
  assert claims_rule.verdict(0.5, (0.2, 0.6), "at_least")[0] == "consistent"
  assert claims_rule.verdict(0.5, (0.2, 0.4), "at_least")[0] == "inconsistent"
  v, why = claims_rule.verdict(0.5, (0.45, 0.55), ok_regime=False,
                               regime_reason="too few points: 3")
  assert v == "inconclusive" and why == "too few points: 3"
  for ci in (None, (math.nan, 1.0), (0.0, math.inf)):
    assert claims_rule.verdict(0.5, ci)[0] == "inconclusive"
  with pytest.raises(ValueError):
    claims_rule.verdict(0.5, (0.4, 0.6), "sideways")


def test_wilson_and_spearman():
  lo, hi = claims_rule.wilson_interval(0, 100)
  assert lo == 0 and 0.02 < hi < 0.05
  lo, hi = claims_rule.wilson_interval(50, 100)
  assert lo == pytest.approx(1 - hi) and hi - lo == pytest.approx(0.19, abs=0.01)
  assert claims_rule.spearman([1, 2, 3], [[1, 2, 3], [3, 2, 1], [5, 5, 5]]).tolist() == [1, -1, 0]


# ------------------------------------------------------- exponents from curves


@pytest.mark.parametrize("i, a", [(0, 0.5), (1, 0.3)])
def test_data_exponent_recovered_without_being_told_the_range(fake_claims, i, a):
  runs, rows = fake_claims
  alpha = runs[i]["config"]["data"]["alpha"]
  for key in runs[i]["models"]:
    c = by_id(rows[i], "data_exponent_model", f"{key[0]}/{key[1]}")
    lo, hi = c["ci"]
    assert lo <= a <= hi and hi - lo < 0.2, c
    assert c["predicted"] == pytest.approx(1 - alpha) and c["verdict"] == "consistent", c
    assert "syntax within 10%" in c["reason"] and "decades" in c["reason"]
    assert "within-run" in c["reason"]           # no replicate streams in a fake run
    assert c["free_floor_exponent"] is not None and c["cumulative_exponent"] is not None
    v = by_id(rows[i], "data_exponent_model_value", f"{key[0]}/{key[1]}")
    assert v["ci"][0] <= a <= v["ci"][1], v       # the fake value excess has the same law
    r = by_id(rows[i], "data_exponent_vs_reference", f"{key[0]}/{key[1]}")
    assert r["verdict"] == "inconclusive" and "reference_learners.json" in r["reason"], r
  b = by_id(rows[i], "data_exponent_bayes")
  assert b["verdict"] == "inconclusive" and "no bayes_laws.json" in b["reason"], b
  # The same curves judged against a wrong alpha: the prediction moves, the data do not.
  key = next(iter(runs[i]["models"]))
  wrong = {**runs[i], "config": fake_config(0.2)}       # predicts 0.8
  c = claims_exponents.claims_data_exponent_model(wrong, key, runs[i]["models"][key])[0]
  assert c["verdict"] == "inconsistent", c


def test_run_claims_rows_and_probe_claims(fake_claims, monkeypatch):
  runs, rows = fake_claims
  r = rows[0]
  for key in runs[0]["models"]:
    m = f"{key[0]}/{key[1]}"
    s = by_id(r, "syntax_first", m)
    assert s["verdict"] == "consistent" and s["measured"] > 0.5, s   # values far from their floor
    assert by_id(r, "frequency_order", m)["verdict"] == "consistent"
    f = by_id(r, "hallucination_floor", m)   # sampled error 0.005 (Wilson <= 0.0145) < 0.02
    assert f["predicted"] == pytest.approx(0.02) and f["verdict"] == "inconsistent", f
  assert by_id(r, "wider_rarer")["verdict"] == "consistent"
  h = by_id(r, "hallucination_persists")
  assert h["model"] == "64/0" and h["measured"] == pytest.approx(0.2, abs=1 / NUM_FRESH)
  assert h["verdict"] == "consistent"
  size = by_id(r, "size_exponent")      # pure power laws: the excess is still falling
  assert size["verdict"] == "inconclusive" and "0 capacity-limited widths" in size["reason"]
  assert "still changing" in size["reason"]
  for name in ("heaps_slope", "zipf_slope"):
    c = by_id(r, name)
    assert c["verdict"] == "inconclusive" and "no stream_stats.json" in c["reason"]
  for c in r:
    assert set(c) >= {"claim", "quantity", "predicted", "measured", "ci", "verdict", "reason"}
    assert c["verdict"] in ("consistent", "inconsistent", "inconclusive")
  # Missing probes: the same rows, inconclusive, saying so.
  monkeypatch.setattr(exponents, "NUM_BOOT", 4)   # the fits are not under test here
  bare = {**runs[0], "probes": {}}
  r2 = claims.run_claims(bare, {})
  assert [(c["id"], c.get("model")) for c in r2] == [(c["id"], c.get("model")) for c in r]
  for cid in ("frequency_order", "wider_rarer", "hallucination_persists", "hallucination_floor"):
    c = by_id(r2, cid)
    assert c["verdict"] == "inconclusive" and "no probes in this run" in c["reason"]


def test_short_run_and_unlearned_syntax_are_inconclusive():
  cfg = fake_config(0.5)
  slow = fake_metrics((32,), 0.5, 0.5, 300, syntax_tau=1e5)      # syntax never learned
  run = {"config": cfg, "models": {(32, 0): slow}, "probes": {}, "stream_stats": {}}
  for c in (claims_curves.claim_syntax_first(run, (32, 0), slow),
            *claims_exponents.claims_data_exponent_model(run, (32, 0), slow)):
    assert c["verdict"] == "inconclusive" and "never came within 10%" in c["reason"], c
  # Facts learned before syntax (a tiny knowledge excess, slow syntax): the claim fails.
  early = fake_metrics((32,), 0.5, 0.5, 2000, syntax_tau=400, scale=1e-3)
  c = claims_curves.claim_syntax_first({**run, "models": {(32, 0): early}}, (32, 0), early)
  assert c["verdict"] == "inconsistent" and c["ci"][1] < 0.1, c
  short = fake_metrics((32,), 0.5, 0.5, 240)      # syntax at ~170: a few bins after it
  c = claims_exponents.claims_data_exponent_model({**run, "models": {(32, 0): short}}, (32, 0),
                                                  short)[0]
  assert c["verdict"] == "inconclusive" and "too short" in c["reason"], c


def test_finite_dataset_uses_the_first_pass_only():
  rows = fake_metrics((32,), 0.5, 0.5, 400)
  cfg = fake_config(0.5)
  cfg["data"]["num_sentences"] = 100 * TOKENS["end"]      # one end token per sentence
  first, why = claims_curves.first_pass({"config": cfg}, rows)
  assert why == "" and [r["step"] for r in first] == list(range(1, 101))
  epochs = [{**r, "epoch": int(r["step"] > 50)} for r in rows]
  assert len(claims_curves.first_pass({"config": cfg}, epochs)[0]) == 50
  bare = [{k: v for k, v in r.items() if not k.startswith("tokens_") or k == "tokens_seen"}
          for r in rows]
  run = {"config": cfg, "models": {(32, 0): bare}, "probes": {}, "stream_stats": {}}
  c = claims_exponents.claims_data_exponent_model(run, (32, 0), bare)[0]
  assert c["verdict"] == "inconclusive" and "no first pass" in c["reason"]


def _size_run(alpha, widths, b=1.0, steps=1500):
  """A fake stream run whose models stored m_w = 10 (P_w / P_8)^b entities (their last
  probe's accuracies, over the reference's entities per bin) and whose value excess has
  flattened at excess(m) = 2 (m / 10)^(1 - 1/alpha) bits per value token."""
  cfg = fake_config(alpha, model={"depth": 1, "mlp_ratio": 4})
  pb = {w: claims_size.params_body(cfg, w) for w in widths}
  per_bin = [4000 // 2 ** k for k in range(16)]    # entities with 2^k .. 2^(k+1) - 1 occurrences
  models, probes = {}, {}
  for w in widths:
    m = 10 * (pb[w] / pb[widths[0]]) ** b
    rows = fake_metrics((w,), alpha, 1.0, steps, seed=w, scale=1e-6,
                        plateau={w: 2 * (m / 10) ** (1 - 1 / alpha)})
    models[(w, 0)] = rows
    know, left = {}, m                     # the most frequent bins are known first
    for k in reversed(range(10)):
      e = sum(per_bin[k:]) if k == 9 else per_bin[k]
      frac = min(max(left / e, 0.0), 1.0)
      left -= frac * e
      know[LABELS[k]] = {"n": 10 ** 6, "accuracy": frac + (1 - frac) / 64}   # chance 1/64
    probes[(w, 0)] = [{"step": steps, "knowledge": know}]
  ref = {"entities_per_bin": {str(steps): per_bin}, "oracle": {}}
  return {"config": cfg, "models": models, "probes": probes, "reference": ref,
          "stream_stats": {}}


def test_size_law_decomposed_on_a_stream():
  """Stored entities ~ P^b, value excess ~ m^(1 - 1/alpha): the three rows recover b, 1/alpha
  - 1 and b (1/alpha - 1) (value excess = value bits minus Bayes value bits, flat over the
  last quarter); a model still learning is left out, naming why."""
  alpha, widths, b = 0.5, (8, 16, 32, 64), 0.8
  run = _size_run(alpha, widths, b)
  rows = {c["id"]: c for c in claims_size.claims_size(run)}
  m = rows["size_stored_entities"]
  assert m["measured"] == pytest.approx(b, abs=0.05), m
  assert m["ci"][0] <= b + 1e-9 and b - 1e-9 <= m["ci"][1], m
  assert [p["width"] for p in m["points"]] == list(widths)
  assert m["points"][0]["stored_entities"] == pytest.approx(10, rel=0.02)
  e = rows["size_excess_vs_entities"]
  assert e["ci"][0] <= 1 / alpha - 1 <= e["ci"][1] and e["verdict"] == "consistent", e
  s = rows["size_exponent"]
  assert s["measured"] == pytest.approx(b * (1 / alpha - 1), abs=0.05), s
  assert "implied b (1/alpha - 1)" in s["reason"] and "with embeddings counted" in s["reason"]
  # A width whose value excess still falls is not capacity-limited.
  run["models"][(64, 0)] = fake_metrics((64,), alpha, 1.0, 1500, seed=3, scale=1.0)
  rows = {c["id"]: c for c in claims_size.claims_size(run)}
  assert "64: value excess still changing" in rows["size_exponent"]["reason"]
  assert [(p["width"], p["capacity_limited"]) for p in rows["size_stored_entities"]["points"]] == [
      (8, True), (16, True), (32, True), (64, False)]


def test_params_body_is_the_models_count_without_embeddings():
  from kcompress import model as model_lib
  from configs.sweep import get_config
  cfg = get_config("tiny")
  mc = model_lib.ModelConfig.from_config(cfg.model, vocab_size=97, context_length=32)
  for w in (8, 16, 24):
    body = claims_size.params_body({"model": {"depth": cfg.model.depth,
                                              "mlp_ratio": cfg.model.mlp_ratio}}, w)
    assert model_lib.param_count(mc, w) - body == 2 * 97 * w + 32 * w


def test_finetune_claims():
  before = fake_probe(64, 0, fresh=0.1)
  after = fake_probe(64, 100, fresh=0.3, shift=-2)   # later bins lose accuracy
  after["injected"] = {lab: {"n": 16, "accuracy": acc, "bits": 1.0, "mean_repetitions": 1.0}
                       for lab, acc in zip(("1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127",
                                            "128-255"),
                                           (0, 0, 1 / 16, 0, 2 / 16, 5 / 16, 11 / 16, 15 / 16))}
  run = {"config": fake_config(0.5, init_from="/pretrained", finetune={"replay_fraction": 0.5}),
         "models": {}, "probes": {(64, 0): [before, after]}, "stream_stats": {}}
  rows = {c["id"]: c for c in claims_probes.claims_finetune(run, (64, 0))}
  assert rows["finetune_acquisition"]["verdict"] == "consistent"
  assert rows["finetune_forgetting"]["verdict"] == "consistent"
  assert rows["finetune_forgetting"]["measured"] < 0
  h = rows["finetune_hallucination"]
  assert h["measured"] == pytest.approx(0.2, abs=0.01) and h["verdict"] == "consistent"
  assert {c["id"] for c in claims.run_claims(run, {})} >= set(rows)


# ---------------------------------------------------------------- Heaps and Zipf


def test_heaps_and_zipf_on_a_generated_stream():
  from kcompress.data import stats
  alpha, beta, n = 0.5, 10.0, 20000
  # 17 independent PYCRP streams: the last is the "run's" stream, the first 16 its replicates.
  ent, new = stats.replicate_entities(alpha, beta, n, stats.NUM_REPLICATES + 1)
  own = ent[-1]
  grid, k = stats.heaps_curve(new[-1])
  ss = {"num_sentences": n, "alpha": alpha, "beta": beta,
        "heaps": {"n": grid.tolist(), "entities": k.tolist()},
        "counts_of_counts": stats.counts_of_counts(own),
        "replicates": [{"heaps_entities": stats.heaps_curve(f)[1].tolist(),
                        "counts_of_counts": stats.counts_of_counts(e)}
                       for e, f in zip(ent[:-1], new[:-1])]}
  run = {"config": fake_config(alpha), "stream_stats": ss}
  h, z = claims_stream.claim_heaps(run), claims_stream.claim_zipf(run)
  assert h["verdict"] == "consistent" and z["verdict"] == "consistent", (h, z)
  assert h["measured"] == pytest.approx(stats.heaps_slope(new[-1]), abs=0.02)
  assert z["measured"] == pytest.approx(stats.zipf_slope(own), abs=1e-9)   # the same statistic
  wrong = {**run, "config": fake_config(0.7)}
  assert claims_stream.claim_heaps(wrong)["verdict"] == "inconsistent"
  assert claims_stream.claim_zipf(wrong)["verdict"] == "inconsistent"


def test_expected_rank_frequency_matches_pitman():
  alpha, beta, n = 0.5, 10.0, 5000
  at_least = theory.expected_entities_at_least(alpha, beta, n, [0, 1, 5, n + 1])
  assert at_least[0] == pytest.approx(theory.expected_num_entities(alpha, beta, n), rel=1e-9)
  assert at_least[1] == at_least[0] and at_least[3] == 0
  ranks = np.array([1, 10, 100])
  c = theory.expected_ranked_counts(alpha, beta, n, ranks)
  assert np.all(np.diff(c) < 0)
  assert theory.expected_entities_at_least(alpha, beta, n, [int(c[1])])[0] >= 10


# --------------------------------------------------------------- the comparison


def test_compare_exponents(fake_runs, fake_claims, tmp_path):
  runs, rows = fake_claims
  summaries = [{"alpha": r["config"]["data"]["alpha"], "claims": c} for r, c in zip(runs, rows)]
  out = str(tmp_path / "cmp")
  s = compare.compare_runs(fake_runs[::-1], out, summaries=summaries[::-1])
  assert [r["alpha"] for r in s["runs"]] == [0.5, 0.7]       # ordered by alpha
  assert len(s["claims"]) == sum(len(r["claims"]) for r in s["runs"])
  assert {c["workdir"] for c in s["claims"]} == set(fake_runs)
  for e, a, models in zip(s["exponents"], (0.5, 0.3), ({"32/0", "64/0"}, {"32/0"})):
    assert e["predicted_data"] == pytest.approx(1 - e["alpha"])
    assert e["predicted_size"] == pytest.approx(1 / e["alpha"] - 1)
    assert set(e["data_models"]) == models
    for m in e["data_models"].values():
      assert m["ci"][0] <= a <= m["ci"][1] and m["verdict"] == "consistent"
    assert e["data_bayes"]["verdict"] == "inconclusive"      # no bayes_laws.json
    assert e["size"]["measured"] is None and e["size"]["verdict"] == "inconclusive"
  merged = {(r["alpha"], r["width"]): r for r in s["merged"]["data_models"]}
  assert set(merged) == {(0.5, 32), (0.5, 64), (0.7, 32)}
  assert all(r["runs"] == 1 and r["interval"] == "within-run" for r in merged.values())
  for name in ("summary.json", "report.md", "exponents.png"):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "report.md")) as f:
    md = f.read()
  assert "![](exponents.png)" in md and "| `" + fake_runs[0] + "` | 0.5 |" in md
  assert "| name + value excess | 0.5 | 32 | 1 |" in md and "within-run" in md


def test_compare_cli_is_reproducible(tmp_path):
  """Several --workdir: each run's report (claims table right after the title) and the
  comparison, reproduced byte for byte in-process; without --out: a one-line error."""
  workdirs = []
  for name, alpha in (("b07", 0.7), ("b03", 0.3)):   # cheap: no probes, syntax never learned
    path = tmp_path / name
    os.makedirs(path)
    with open(path / "config.json", "w") as f:
      json.dump(fake_config(alpha), f)
    with open(path / "metrics.jsonl", "w") as f:
      for r in fake_metrics((32,), alpha, 0.5, 200, syntax_tau=1e5):
        f.write(json.dumps(r) + "\n")
    workdirs.append(str(path))
  out = str(tmp_path / "cmp")
  cli = [sys.executable, "-m", "kcompress.analysis", *[f"--workdir={w}" for w in workdirs]]
  proc = subprocess.run(cli + [f"--out={out}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "Claims: " in proc.stdout
  for name in ("summary.json", "report.md", "exponents.png"):
    assert os.path.getsize(os.path.join(out, name)) > 0, name
  with open(os.path.join(out, "summary.json")) as f:
    first = f.read()
  assert [r["alpha"] for r in json.loads(first)["runs"]] == [0.3, 0.7]
  for w in workdirs:
    with open(os.path.join(w, "report", "report.md")) as f:
      md = f.read().splitlines()
    assert md[0].startswith("# kcompress report") and md[2] == "## Claims and verdicts"
    assert md[4].startswith("| claim |") and "**inconclusive**" in md[6]
    with open(os.path.join(w, "report", "summary.json")) as f:
      assert len(json.load(f)["claims"]) >= 10
  compare.compare_runs(workdirs, out)
  with open(os.path.join(out, "summary.json")) as f:
    assert f.read() == first
  proc = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=60)
  assert proc.returncode != 0 and "--out=DIR is required" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
