"""Claims 6-8: the data exponents (models and the Bayes code, vs 1 - alpha) and the size
exponent (capacity-limited widths, vs 1/alpha - 1), fitted E + A t^-a to knowledge bits
per token with 95% intervals.
"""

from __future__ import annotations

import math

import numpy as np

from kcompress import theory
from kcompress.analysis import fits
from kcompress.analysis.claims_curves import (first_pass, knowledge_phase, step_series,
                                              wrong_regime)
from kcompress.analysis.claims_rule import (SEED, claim_row, fmt, is_finite, model_name,
                                            percentile_ci)

# Measurement choices (fixed before looking at any run).
MIN_FIT_POINTS = 8      # a data-exponent fit needs >= 8 log-bins ...
MIN_FIT_DECADES = 0.5   # ... spanning >= 0.5 decade of tokens
TAIL_FRACTION = 0.10    # "final" = mean over the last 10% of steps
PLATEAU_SPAN = 0.25     # capacity-limited: the excess changed < PLATEAU_REL over the last 25%
PLATEAU_REL = 0.05
STORED_MAX = 0.90       # ... and the model stores < 90% of the revealed fact entropy
MIN_EXCESS_BITS = 0.05  # (without probes: final excess > 0.05 bits per knowledge token)
MIN_SIZE_WIDTHS = 3     # a size fit needs >= 3 capacity-limited widths
NUM_BOOT_FIT = 100      # draws of each bootstrap of a power-law fit (as the report's fits)
A_GRID = np.linspace(0.0, 4.0, 4001)[1:]   # exponents profiled by `profile_power_law`
CHI2_95 = 3.841458820694124  # 95% quantile of chi^2 with 1 degree of freedom


def profile_power_law(x, y, se) -> dict:
  """Weighted least squares of y = E + A x^-a (E >= 0, A >= 0), errors se [B], profiled over
  a in A_GRID: for each a the best (E, A) is a two-variable non-negative linear fit. Returns
  {a, E, A, ci, chi2_dof}: ci = {a : SSR(a) <= SSR_min + 3.84 s^2}, s^2 = max(1, SSR_min/dof)
  (errors scaled up when the law misfits)."""
  x, y, se = (np.asarray(v, float) for v in (x, y, se))
  w = 1 / se ** 2
  x0 = math.exp(np.mean(np.log(x)))
  u = (x / x0)[None, :] ** -A_GRID[:, None]                       # [G, B]
  s11, b1 = w.sum(), (w * y).sum()
  s12, s22, b2 = (w * u).sum(1), (w * u * u).sum(1), (w * u * y).sum(1)
  with np.errstate(all="ignore"):
    det = s11 * s22 - s12 ** 2
    cands = [((s22 * b1 - s12 * b2) / det, (s11 * b2 - s12 * b1) / det),
             (np.zeros_like(s22), np.maximum(b2 / s22, 0.0)),
             (np.full_like(s22, max(b1 / s11, 0.0)), np.zeros_like(s22))]
    best = np.full(len(A_GRID), np.inf)
    E, A = np.zeros(len(A_GRID)), np.zeros(len(A_GRID))
    for e, amp in cands:
      ssr = (w * (y[None] - e[:, None] - amp[:, None] * u) ** 2).sum(1)
      better = np.isfinite(ssr) & (e >= 0) & (amp >= 0) & (ssr < best)
      best, E, A = np.where(better, ssr, best), np.where(better, e, E), np.where(better, amp, A)
  i = int(np.argmin(best))
  dof = max(len(y) - 3, 1)
  inside = best <= best[i] + CHI2_95 * max(1.0, best[i] / dof)
  return {"a": float(A_GRID[i]), "E": float(E[i]), "A": float(A[i] * x0 ** A_GRID[i]),
          "ci": (float(A_GRID[inside].min()), float(A_GRID[inside].max())),
          "chi2_dof": float(best[i] / dof)}


def _bin_errors(steps_per_bin: list[np.ndarray]) -> np.ndarray:
  """Standard error of each bin mean (steps as independent); bins of one step get the
  median relative scatter of the others."""
  m = np.array([v.mean() for v in steps_per_bin])
  n = np.array([len(v) for v in steps_per_bin], float)
  sd = np.array([v.std(ddof=1) if len(v) >= 2 else np.nan for v in steps_per_bin])
  rel = sd / np.abs(m)
  if not np.any(np.isfinite(rel)):
    return np.full(len(m), np.nan)
  sd = np.where(np.isfinite(sd), sd, np.nanmedian(rel) * np.abs(m))
  return np.maximum(sd / np.sqrt(n), 1e-9 * np.abs(m) + 1e-12)


def fit_exponent(tokens, steps_per_bin: list[np.ndarray]):
  """E + A t^-a (E free) through the log-bin means of per-step values; returns
  (fit, (lo, hi), profile): fit = fits.fit_power_law's point fit.

  tokens [B]: bin centres; steps_per_bin: the finite per-step values of each bin (all bin
  means > 0). The interval is the hull of three 95% intervals, each covering a way the
  others fail (checked on synthetic curves, where each alone covered the true exponent in
  70-93% of seeds and the hull in 93-97%):
  - fits.bootstrap_power_law's residual bootstrap: the misfit of the law; but it treats
    bins as exchangeable, while early bins hold few steps and are noisier than late ones;
  - steps resampled within each bin (the sampling noise bin by bin), as a basic interval
    (2 a - upper, 2 a - lower quantiles): with E at its bound 0 (a pure power law, the
    data-limited case) noise pushes E up and a with it, and the draws' skew corrects a;
  - the profile interval of the fit weighted by each bin's standard error
    (`profile_power_law`), which gives noisy bins their due weight.
  The lower end is at least 0.
  """
  x = np.asarray(tokens, float)
  y = np.array([v.mean() for v in steps_per_bin])
  fit = fits.bootstrap_power_law(x, y, num_boot=NUM_BOOT_FIT, seed=SEED)
  rng = np.random.default_rng(SEED)
  draws = []
  for _ in range(NUM_BOOT_FIT):
    yb = np.array([v[rng.integers(0, len(v), len(v))].mean() for v in steps_per_bin])
    if np.all(yb > 0):
      draws.append(fits.fit_power_law(x, yb).a)
  q_lo, q_hi = percentile_ci(draws)
  lo = min(fit.a_ci[0], 2 * fit.a - q_hi) if is_finite(q_hi) else fit.a_ci[0]
  hi = max(fit.a_ci[1], 2 * fit.a - q_lo) if is_finite(q_lo) else fit.a_ci[1]
  se = _bin_errors(steps_per_bin)
  prof = profile_power_law(x, y, se) if np.all(np.isfinite(se)) else None
  if prof is not None:
    lo, hi = min(lo, prof["ci"][0]), max(hi, prof["ci"][1])
  return fit, (max(lo, 0.0), hi), prof


def _exponent_claim(cid, claim, q, kp: dict, key: str, alpha, model) -> dict:
  """The data-exponent row of one log-binned curve kp[key] (knowledge_phase), fitted from the
  bin where syntax came within 10% of its floor to the end; checks the range first."""
  predicted = theory.data_scaling_exponent(alpha)
  formula = "1 - alpha (P(new entity at n) ~ n^(alpha-1))"
  b = kp["syntax_bin"]
  if b is None:
    return claim_row(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                     ok=False, why_not="syntax never came within 10% of its Bayes floor: no "
                                       "knowledge phase to fit (run too short)")
  x, y = kp["tokens"][b:], kp[key][b:]
  per_step = kp["series"]["excess" if key == "excess" else "bayes_knowledge"]
  vals = [per_step[g][np.isfinite(per_step[g])] for g in kp["groups"][b:]]
  keep = np.isfinite(y) & (y > 0) & (x > 0)
  dropped = int(np.sum(~keep))
  x, vals = x[keep], [v for v, k in zip(vals, keep) if k]
  start = int(kp["series"]["step"][kp["groups"][b][0]])
  span = float(np.log10(x[-1] / x[0])) if len(x) >= 2 else 0.0
  note = (f"fitted tokens [{fmt(x[0]) if len(x) else 'n/a'}, {fmt(x[-1]) if len(x) else 'n/a'}] "
          f"({span:.2f} decades, {len(x)} log-bins, from step {start} where syntax came "
          f"within 10%)" + (f"; {dropped} bins with mean <= 0 left out" if dropped else ""))
  if len(x) < MIN_FIT_POINTS:
    return claim_row(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                     ok=False, why_not=f"too few points: {len(x)} log-bins (< {MIN_FIT_POINTS})",
                     note=note)
  if span < MIN_FIT_DECADES:
    return claim_row(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                     ok=False,
                     why_not=f"fitted range spans {span:.2f} decade (< {MIN_FIT_DECADES})",
                     note=note)
  try:
    fit, ci, prof = fit_exponent(x, vals)
  except (ValueError, RuntimeError) as e:
    return claim_row(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                     ok=False, why_not=f"fit failed: {e}", note=note)
  weighted = (f"; weighted fit a = {fmt(prof['a'])} [{fmt(prof['ci'][0])}, {fmt(prof['ci'][1])}],"
              f" chi2/dof {fmt(prof['chi2_dof'])}" if prof else "")
  return claim_row(cid, claim, q, predicted, fit.a, ci, "point", formula=formula, model=model,
                   note=note + f"; E = {fmt(fit.E)}, A = {fmt(fit.A)}" + weighted)


def claim_data_exponent_model(run: dict, key, rows: list[dict]) -> dict:
  """Model-side data law (SPEC 6). Quantity: the knowledge excess per knowledge token,
  (name + value model bits - Bayes bits of the same tokens) / (name + value tokens), per
  step, averaged in log-spaced bins of tokens seen (BINS_PER_DECADE) and fitted E + A t^-a
  from the first bin where syntax is within 10% of its floor to the end (`fit_exponent`).
  Why this quantity: the total loss mixes the fast syntax phase in; the excess over Bayes
  removes the part of the knowledge loss no learner can avoid (new entities, new facts),
  leaving what the model has not yet learned (facts of entities seen fewer than its c
  exposures, whose share of the next tokens falls as n^(alpha-1)); E is free because a
  capacity-limited model keeps a constant excess."""
  alpha = run["config"]["data"]["alpha"]
  q = ("a in E + A t^-a of (model - Bayes) bits per name/value token vs tokens t, "
       "log-binned, after syntax is learned")
  claim = "Data exponent of the knowledge excess (models)"
  model = model_name(key)
  bad = wrong_regime(run)
  rows, why = first_pass(run, rows)
  if bad or why:
    return claim_row("data_exponent_model", claim, q, theory.data_scaling_exponent(alpha), None,
                     None, "point", formula="1 - alpha", model=model, ok=False, why_not=bad or why)
  return _exponent_claim("data_exponent_model", claim, q, knowledge_phase(rows, run["config"]),
                         "excess", alpha, model)


def claim_data_exponent_bayes(run: dict) -> dict:
  """The Bayes code's own knowledge bits per knowledge token (bayes_name, bayes_value weighted
  by their tokens), log-binned and fitted E + A t^-a (E free: the entity-choice cost tends to
  a constant) over the range of the model whose syntax came within 10% first (every model
  sees the same batches, so the Bayes bits are the same in every model's rows)."""
  alpha = run["config"]["data"]["alpha"]
  q = "a in E + A t^-a of the Bayes code's bits per name/value token vs tokens t, log-binned"
  claim = "Data exponent of the Bayes code's knowledge part"
  pred = theory.data_scaling_exponent(alpha)
  bad = wrong_regime(run)
  if bad or not run["models"]:
    return claim_row("data_exponent_bayes", claim, q, pred, None, None, "point",
                     formula="1 - alpha", ok=False, why_not=bad or "no metrics")
  best = None
  for rows in run["models"].values():
    rows, why = first_pass(run, rows)
    if why:
      return claim_row("data_exponent_bayes", claim, q, pred, None, None, "point",
                       formula="1 - alpha", ok=False, why_not=why)
    kp = knowledge_phase(rows, run["config"])
    start = lambda k: k["tokens"][k["syntax_bin"]] if k["syntax_bin"] is not None else math.inf
    if best is None or start(kp) < start(best):
      best = kp
  return _exponent_claim("data_exponent_bayes", claim, q, best, "bayes_knowledge", alpha, None)


def _tail_mean(x: np.ndarray, lo: float, hi: float) -> float:
  """Mean of the finite x over the steps in [lo, hi) fractions of the run."""
  n = len(x)
  a, b = int(math.floor(lo * n)), max(int(math.floor(hi * n)), int(math.floor(lo * n)) + 1)
  v = x[a:b]
  v = v[np.isfinite(v)]
  return float(v.mean()) if len(v) else math.nan


def claim_size_exponent(run: dict) -> dict:
  """Size law: final knowledge excess per knowledge token (mean over the last 10% of steps)
  vs unpadded parameters, a pure power law A P^-a, over the widths that are capacity-limited:
  the excess changed < 5% relative between the 10% of steps ending at 75% of the run and
  the last 10%, AND the model stores < 90% of the revealed fact entropy
  (last probe's capacity; without probes: final excess > 0.05 bits). Needs >= 3 such widths.
  Predicted 1/alpha - 1 (exponent in stored entities, taking stored entities ~ parameters).
  All steps count here (a finite dataset's later epochs are the capacity-limited regime;
  there the excess is over the Bayes price of the first pass, and a model below it, at or
  under 0, is left out). The interval is the hull of fits.bootstrap_power_law's residual
  bootstrap (misfit; only 3-4 residuals) and a basic interval of refits with each final
  excess redrawn from its standard error (steps of the last 10%, as independent)."""
  alpha = run["config"]["data"]["alpha"]
  pred = theory.size_scaling_exponent(alpha)
  formula = "1/alpha - 1 (loss beyond rank m ~ m^(1-1/alpha), m ~ parameters)"
  q = "a in A P^-a of the final (last 10% of steps) knowledge excess vs parameters P"
  claim = "Size exponent in capacity-limited models"
  bad = wrong_regime(run)
  if bad:
    return claim_row("size_exponent", claim, q, pred, None, None, "point", formula=formula,
                     ok=False, why_not=bad)
  xs, ys, ses, widths, notes = [], [], [], set(), []
  for key, rows in run["models"].items():
    ex = step_series(rows, run["config"])["excess"]
    final = _tail_mean(ex, 1 - TAIL_FRACTION, 1.0)
    tail = ex[-max(1, int(math.floor(TAIL_FRACTION * len(ex)))):]
    tail = tail[np.isfinite(tail)]
    se = float(tail.std(ddof=1) / math.sqrt(len(tail))) if len(tail) >= 2 else 0.0
    before = _tail_mean(ex, 1 - PLATEAU_SPAN - TAIL_FRACTION, 1 - PLATEAU_SPAN)
    change = (final - before) / abs(final) if is_finite(final) and final != 0 else math.nan
    probes = run["probes"].get(key, [])
    cap = probes[-1].get("capacity") if probes else None
    frac = (cap["stored_bits"] / cap["fact_entropy_bits"]
            if cap and cap.get("fact_entropy_bits") else None)
    reasons = []
    if not is_finite(final) or final <= 0:
      reasons.append(f"final excess {fmt(final)} <= 0")
    if not (is_finite(change) and abs(change) < PLATEAU_REL):
      reasons.append(f"excess still changing ({fmt(100 * change)}% over the last 25%)")
    if frac is not None and frac >= STORED_MAX:
      reasons.append(f"stores {fmt(100 * frac)}% of the fact entropy (>= 90%)")
    if frac is None and is_finite(final) and final <= MIN_EXCESS_BITS:
      reasons.append(f"final excess {fmt(final)} <= {MIN_EXCESS_BITS} bits (no probes)")
    if reasons:
      notes.append(f"{key[0]}: " + ", ".join(reasons))
    else:
      xs.append(float(rows[-1]["params"]))
      ys.append(final)
      ses.append(se)
      widths.add(key[0])
  note = ("capacity-limited widths: " + (", ".join(str(w) for w in sorted(widths)) or "none")
          + ("; excluded: " + "; ".join(notes) if notes else ""))
  if len(widths) < MIN_SIZE_WIDTHS:
    return claim_row("size_exponent", claim, q, pred, None, None, "point", formula=formula,
                     ok=False,
                     why_not=f"{len(widths)} capacity-limited widths (< {MIN_SIZE_WIDTHS})",
                     note=note)
  order = np.argsort(xs, kind="stable")
  x, y, se = np.array(xs)[order], np.array(ys)[order], np.array(ses)[order]
  try:
    fit = fits.bootstrap_power_law(x, y, num_boot=NUM_BOOT_FIT, seed=SEED, with_offset=False)
    rng = np.random.default_rng(SEED)
    draws = []
    for _ in range(NUM_BOOT_FIT):
      yb = y + se * rng.standard_normal(len(y))
      if np.all(yb > 0):
        draws.append(fits.fit_power_law(x, yb, with_offset=False).a)
  except (ValueError, RuntimeError) as e:
    return claim_row("size_exponent", claim, q, pred, None, None, "point", formula=formula,
                     ok=False, why_not=f"fit failed: {e}", note=note)
  q_lo, q_hi = percentile_ci(draws)
  lo = min(fit.a_ci[0], 2 * fit.a - q_hi) if is_finite(q_hi) else fit.a_ci[0]
  hi = max(fit.a_ci[1], 2 * fit.a - q_lo) if is_finite(q_lo) else fit.a_ci[1]
  return claim_row("size_exponent", claim, q, pred, fit.a, (lo, hi), "point", formula=formula,
                   note=note + f"; A = {fmt(fit.A)}")

