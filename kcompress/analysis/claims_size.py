"""Claim 8: the size law on a stream, decomposed (SPEC section 6): stored entities m vs
parameters P, the value (fact) excess vs m (theory m^(1 - 1/alpha); the top-m oracle
priced on the same stream gives it exactly), and the value excess vs P (size exponent
b (1/alpha - 1) where m ~ P^b).

Per model, over its last TAIL_FRACTION of steps: the value excess = (model value bits -
Bayes value bits) per value token. Capacity-limited: that excess changed < PLATEAU_REL
between the 10% of steps ending at 75% of the run and the last 10% (it has flattened).
Stored entities at the last eval: m = sum over occurrence bins of (entities in the bin,
`reference_learners.json`) x (top-1 accuracy on the bin's revealed facts, corrected for
chance 1/V_a, over the bins whose accuracy is more than 3 binomial standard errors above
chance: the others are noise at the probes' resolution). Parameters are counted with and without the embeddings
(token, position, unembedding); the fits use the count without (`params_body`), the other
is reported beside. Fits: least squares in log-log (an exponent of either sign).
Intervals: the hull of a residual bootstrap over the widths and a parametric bootstrap of
each point (binomial accuracies, the excess's standard error over its steps).
"""

from __future__ import annotations

import math

import numpy as np

from kcompress import theory
from kcompress.analysis import exponents
from kcompress.analysis.claims_curves import first_pass, wrong_regime
from kcompress.analysis.claims_rule import (SEED, claim_row, fmt, is_finite, percentile_ci)
from kcompress.analysis.load import bin_start

TAIL_FRACTION = 0.10    # "final" = the last 10% of steps (the oracle's window too)
PLATEAU_SPAN = 0.25     # capacity-limited: the value excess changed < PLATEAU_REL ...
PLATEAU_REL = 0.05      # ... between the 10% of steps ending at 75% of the run and the last 10%
MIN_SIZE_WIDTHS = 3     # a size fit needs >= 3 capacity-limited widths
NUM_BOOT_FIT = 200
SIGNIFICANT = 3.0       # a bin's accuracy counts when above chance by > 3 standard errors


def params_body(config: dict, width: int) -> int | None:
  """Parameters of a width-`width` model without the embeddings (token, position,
  unembedding): the blocks and the final LayerNorm (model.param_count minus 2 V w + C w);
  None without a model section in the config."""
  m = config.get("model")
  if not m:
    return None
  h = m.get("mlp_ratio", 4) * width
  per_block = 4 * width + 4 * width * width + 2 * width * h + h + width
  return int(m["depth"] * per_block + 2 * width)


def _value_excess(rows: list[dict]) -> np.ndarray:
  """(model - Bayes) value bits per value token of each step (NaN without value tokens)."""
  out = []
  for r in rows:
    n = r.get("tokens_value") or 0
    ok = n > 0 and r.get("bits_value") is not None and r.get("bayes_value") is not None
    out.append(r["bits_value"] - r["bayes_value"] if ok else math.nan)
  return np.array(out, float)


def _window_mean(x: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
  """(mean, standard error) of the finite x over the steps in [lo, hi) fractions."""
  n = len(x)
  a, b = int(math.floor(lo * n)), max(int(math.floor(hi * n)), int(math.floor(lo * n)) + 1)
  v = x[a:b]
  v = v[np.isfinite(v)]
  if not len(v):
    return math.nan, math.nan
  return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def stored_entities(probe: dict, per_bin: list[int], values: int) -> tuple[float, list]:
  """(m, [(entities, n, accuracy)] per probed bin): entities whose facts the model knows,
  from its last probe's per-bin accuracy and the stream's entities per bin."""
  know = probe.get("knowledge") or {}
  labels = sorted(know, key=bin_start)
  parts = []
  for i, lab in enumerate(labels):
    b = int(math.log2(bin_start(lab)))
    upto = len(per_bin) if i == len(labels) - 1 else b + 1      # the last bin is open
    entities = sum(per_bin[b:upto])
    k = know[lab]
    if k.get("n") and k.get("accuracy") is not None:
      parts.append((entities, int(k["n"]), float(k["accuracy"])))
  return max(_entities_known(parts, values), 0.0), parts


def _entities_known(parts, values: int, accuracies=None) -> float:
  """sum over bins of entities x (accuracy - 1/V) / (1 - 1/V), over the bins whose accuracy
  exceeds chance by more than SIGNIFICANT binomial standard errors (a bin at chance,
  measured on 64 probes, is +-1.5% = +-60 of 4,000 entities: counted, its noise would swamp
  a small model's count; clipped at 0, it would bias it up)."""
  chance = 1.0 / values
  accs = [a for _, _, a in parts] if accuracies is None else accuracies
  return float(sum(e * (a - chance) / (1 - chance) for (e, n, _), a in zip(parts, accs)
                   if a - chance > SIGNIFICANT * math.sqrt(chance * (1 - chance) / n)))


def size_points(run: dict) -> dict:
  """Per model: params, params_body, value excess (final, se, change), stored entities m and
  why a model is left out; plus the oracle curve. {models (capacity-limited), excluded
  (why not), all (every model with a first pass, `capacity_limited`), oracle}."""
  cfg = run["config"]
  ref = run.get("reference") or {}
  values = int(cfg["data"].get("values_per_attribute", 64))
  models, excluded, everyone = [], [], []
  for key, rows in run["models"].items():
    rows, why = first_pass(run, rows)
    if why:
      excluded.append(f"{key[0]}: {why}")
      continue
    ex = _value_excess(rows)
    final, se = _window_mean(ex, 1 - TAIL_FRACTION, 1.0)
    before, _ = _window_mean(ex, 1 - PLATEAU_SPAN - TAIL_FRACTION, 1 - PLATEAU_SPAN)
    change = (final - before) / abs(final) if is_finite(final) and final else math.nan
    probes = run.get("probes", {}).get(key, [])
    per_bin = (ref.get("entities_per_bin") or {}).get(str(probes[-1]["step"])) if probes else None
    m, parts = stored_entities(probes[-1], per_bin, values) if per_bin else (math.nan, [])
    row = {"width": key[0], "seed": key[1], "params": rows[-1]["params"],
           "params_body": params_body(cfg, key[0]) or rows[-1]["params"], "value_excess": final,
           "value_excess_se": se, "change": change, "stored_entities": m, "bins": parts}
    reasons = []
    if not (is_finite(final) and final > 0):
      reasons.append(f"final value excess {fmt(final)} <= 0")
    if not (is_finite(change) and abs(change) < PLATEAU_REL):
      reasons.append(f"value excess still changing ({fmt(100 * change)}% over the last 25%)")
    if not (is_finite(m) and m > 0):
      reasons.append("no stored-entity count (probes or reference_learners.json missing)")
    row["capacity_limited"] = not reasons
    everyone.append(row)
    (excluded.append(f"{key[0]}: " + ", ".join(reasons)) if reasons else models.append(row))
  return {"models": sorted(models, key=lambda r: r["params"]), "excluded": excluded,
          "all": sorted(everyone, key=lambda r: r["params"]), "oracle": ref.get("oracle") or {}}


def _fit(x, y, draws_xy) -> tuple[float, tuple]:
  """a in y = A x^-a (least squares of log y on log x; a of any sign); interval: the hull
  of a residual bootstrap over the points and a basic interval of refits on the parametric
  draws [(x_b, y_b)]. Returns (a, (lo, hi))."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  point = exponents.floor0_fit(x, y)
  if not math.isfinite(point["a"]):
    raise ValueError("fewer than 3 positive points")
  line = np.log(point["A"]) - point["a"] * np.log(x)
  resid = np.log(y) - line
  rng = np.random.default_rng(SEED)
  boot = [exponents.floor0_fit(x, np.exp(line + rng.choice(resid, len(resid))))["a"]
          for _ in range(NUM_BOOT_FIT)]
  d = [exponents.floor0_fit(xb, yb)["a"] for xb, yb in draws_xy
       if np.all(xb > 0) and np.all(yb > 0)]
  r_lo, r_hi = percentile_ci(boot)
  q_lo, q_hi = percentile_ci(d)
  a = point["a"]
  lo = min(r_lo, 2 * a - q_hi) if is_finite(q_hi) else r_lo
  hi = max(r_hi, 2 * a - q_lo) if is_finite(q_lo) else r_hi
  return a, (lo, hi)


def _draws(models: list[dict], values: int):
  """Parametric redraws of (m, value excess) per model: binomial accuracies, normal excess."""
  rng = np.random.default_rng(SEED)
  for _ in range(NUM_BOOT_FIT):
    m, ex = [], []
    for r in models:
      acc = [rng.binomial(n, a) / n for _, n, a in r["bins"]]
      m.append(_entities_known(r["bins"], values, acc))
      ex.append(r["value_excess"] + r["value_excess_se"] * rng.standard_normal())
    yield np.array(m, float), np.array(ex, float)


def oracle_slope(oracle: dict, m_lo: float, m_hi: float) -> float:
  """Log-log slope of the oracle's value excess vs m over [m_lo, m_hi] (NaN if < 3 points)."""
  m, ex = np.array(oracle.get("m", []), float), np.array(oracle.get("value_excess", []), float)
  keep = (m >= m_lo) & (m <= m_hi) & (ex > 0)
  return float(np.polyfit(np.log(m[keep]), np.log(ex[keep]), 1)[0]) if keep.sum() >= 3 else math.nan


def claims_size(run: dict) -> list[dict]:
  """Three rows: m vs parameters (exponent b), value excess vs m (vs 1/alpha - 1, beside the
  oracle's exponent over the same m), value excess vs parameters (the size exponent)."""
  alpha = run["config"]["data"]["alpha"]
  pred = theory.size_scaling_exponent(alpha)
  values = int(run["config"]["data"].get("values_per_attribute", 64))
  heads = (
      ("size_stored_entities", "Size law: stored entities m grow with parameters",
       "b in m = A P^b, m from the last probe (chance-corrected accuracy x entities per "
       "occurrence bin), P without embeddings", 1.0, "m ~ P (a fixed cost per stored entity)"),
      ("size_excess_vs_entities", "Size law: value excess vs stored entities",
       "a in A m^-a of the final value excess (bits per value token) vs stored entities m",
       pred, "1/alpha - 1 (the mass beyond rank m ~ m^(1-1/alpha))"),
      ("size_exponent", "Size exponent of the value excess in capacity-limited models",
       "a in A P^-a of the final value excess vs parameters without embeddings", pred,
       "1/alpha - 1 (with m ~ P)"))
  bad = wrong_regime(run)
  pts = {"models": [], "excluded": [], "all": [], "oracle": {}} if bad else size_points(run)
  models = pts["models"]
  note = ("capacity-limited widths: " + (", ".join(str(r["width"]) for r in models) or "none")
          + ("; excluded: " + "; ".join(pts["excluded"]) if pts["excluded"] else ""))
  keys = ("width", "params", "params_body", "stored_entities", "value_excess", "capacity_limited")
  points = [{k: r[k] for k in keys} for r in pts["all"]]
  if bad or len(models) < MIN_SIZE_WIDTHS:
    why = bad or f"{len(models)} capacity-limited widths (< {MIN_SIZE_WIDTHS})"
    rows = [claim_row(cid, claim, q, p, None, None, "point", formula=f, ok=False, why_not=why,
                      note=note) for cid, claim, q, p, f in heads]
    rows[0]["points"] = points
    return rows
  pb = np.array([r["params_body"] for r in models], float)
  pa = np.array([r["params"] for r in models], float)
  m = np.array([r["stored_entities"] for r in models], float)
  ex = np.array([r["value_excess"] for r in models], float)
  draws = list(_draws(models, values))
  try:
    b, b_ci = _fit(pb, 1 / m, [(pb, 1 / dm) for dm, _ in draws])
    b_all = exponents.floor0_fit(pa, 1 / m)["a"]
    a_m, a_m_ci = _fit(m, ex, draws)
    a_p, a_p_ci = _fit(pb, ex, [(pb, de) for _, de in draws])
    a_p_all = exponents.floor0_fit(pa, ex)["a"]
  except (ValueError, RuntimeError) as e:
    return [claim_row(cid, claim, q, p, None, None, "point", formula=f, ok=False,
                      why_not=f"fit failed: {e}", note=note) for cid, claim, q, p, f in heads]
  oracle = oracle_slope(pts["oracle"], m.min(), m.max())
  notes = (f"{note}; with embeddings counted b = {fmt(b_all)}",
           f"{note}; m in [{fmt(m.min())}, {fmt(m.max())}]; the top-m oracle on the same "
           f"stream: a = {fmt(-oracle)}",
           f"{note}; implied b (1/alpha - 1) = {fmt(b * pred)}; with embeddings counted "
           f"a = {fmt(a_p_all)}")
  measured = ((b, b_ci), (a_m, a_m_ci), (a_p, a_p_ci))
  rows = [claim_row(cid, claim, q, p, v, ci, "point", formula=f, note=n)
          for (cid, claim, q, p, f), (v, ci), n in zip(heads, measured, notes)]
  rows[1]["reference_exponent"] = -oracle if is_finite(oracle) else None
  rows[0]["points"] = points
  return rows
