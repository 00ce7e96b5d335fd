"""Claims 6-7: the data exponent of the knowledge excess (models, beside the count-threshold
reference learner priced on the same batches) and of the Bayes code (measured from
independent streams, `bayes_laws.json`), vs 1 - alpha (SPEC sections 6-7).

The models' quantity is the knowledge excess per knowledge token: (name + value model bits
- Bayes bits of the same tokens) / (name + value tokens), per step, averaged in log-bins
of tokens seen (claims_curves.knowledge_phase). Its range and estimators:
- range: from where syntax is within 10% of its floor, or, when the local exponent has a
  clear peak there (the onset of fact learning: the slope rises past the law and falls
  back), from a quarter decade after that peak (`exponents.onset_end`); under
  MIN_FIT_DECADES left, the row is "inconclusive: too short";
- the measurement: floor 0 (A t^-a; the excess over the Bayes code tends to 0 as data
  grows), 95% interval from a moving-block bootstrap over neighbouring bins (one run);
- checks beside it: the free floor E + A t^-a (biased up, and trades E against a), the
  cumulative excess, the local exponent of the last quarter decade;
- the reference: the count-threshold learner at the c the probes measure (occurrences for
  50% top-1 accuracy at the last eval), and at c/4 and 4c, its excess priced on the run's
  own batches (`reference_learners.json`) and fitted by the same estimator over the same
  bins; the second row compares model and learner with paired draws (same blocks).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from kcompress import theory
from kcompress.analysis import exponents
from kcompress.analysis.claims_curves import bin_mean, first_pass, knowledge_phase, wrong_regime
from kcompress.analysis.claims_rule import claim_row, fmt, model_name
from kcompress.analysis.load import bin_start

# Measurement choices (fixed before looking at any model run, calibrated on threshold
# learners over independent streams: tests/test_exponents.py. A percentile block bootstrap
# covered the learners' exponent on only 42-75% of 12 streams; the t quantile over its
# blocks and the stream term below bring it to >= 90%).
MIN_FIT_DECADES = 0.5   # a data-exponent fit needs >= half a decade of tokens after the onset
MIN_FIT_BINS = 8        # ... and >= 8 log-bins
FORMULA = "1 - alpha (P(new entity at n) ~ n^(alpha-1))"
QUANTITY = ("a in A t^-a (floor 0) of (model - Bayes) bits per name/value token vs tokens t "
            "(the entity-choice part included: its excess tends to 0, its bits to the entity "
            "entropy), log-binned, after syntax is learned and a quarter decade after the local "
            "slope's onset peak; block bootstrap widened by the stream-to-stream spread")
CLAIM = "Data exponent of the knowledge excess (models)"
CLAIM_VALUE = "Data exponent of the value (fact) excess (models)"
QUANTITY_VALUE = ("a in A t^-a (floor 0) of (model - Bayes) bits per value token vs tokens t "
                  "(no entity-choice part), same range rule and estimator")
CLAIM_REF = "Data exponent: model minus the threshold learner on the same tokens"
QUANTITY_REF = ("a(model) - a(count-threshold learner at the model's 50%-accuracy count c), "
                "same bins, same estimator, paired block bootstrap")


def model_threshold(run: dict, key) -> int | None:
  """The occurrence count c at which the model's top-1 accuracy on revealed facts first
  reaches 50% at its last eval (a bin's lower edge), or None."""
  probes = run.get("probes", {}).get(key, [])
  if not probes:
    return None
  know = probes[-1].get("knowledge") or {}
  hits = sorted(bin_start(lab) for lab, b in know.items()
                if b.get("n") and b.get("accuracy") is not None and b["accuracy"] >= 0.5)
  return hits[0] if hits else None


REF_KEYS = {"knowledge": ("excess_bits", "knowledge_tokens"),
            "value": ("value_excess_bits", "value_tokens")}


def reference_series(run: dict, steps: np.ndarray, c: int, quantity: str
                     ) -> tuple[np.ndarray | None, str]:
  """(excess bits per knowledge (or value) token per step of the threshold learner at c,
  aligned with `steps`, or None, and why not)."""
  ref = run.get("reference") or {}
  if not ref:
    return None, "no reference_learners.json (python -m kcompress.reference --workdir=W)"
  if c not in ref["thresholds"]:
    return None, f"no threshold learner at c = {c}"
  where = {s: i for i, s in enumerate(ref["steps"])}
  if len(where) != len(steps) or not all(int(s) in where for s in steps):
    return None, "reference_learners.json is not of this run's steps (rerun kcompress.reference)"
  idx = np.array([where[int(s)] for s in steps])
  bits_key, toks_key = REF_KEYS[quantity]
  bits = np.asarray(ref[bits_key], float)[idx, ref["thresholds"].index(c)]
  toks = np.asarray(ref[toks_key], float)[idx]
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(toks > 0, bits / toks, np.nan), ""


def stream_spread(run: dict, steps, groups, bins: np.ndarray, x, c: int, quantity: str
                  ) -> tuple[float, int]:
  """(sd over independent streams of the threshold learner's floor-0 exponent over the
  fitted bins, number of streams): the stream-to-stream part of an exponent's error that no
  resampling of one run sees (K_n / n^alpha has a random limit, so each stream's curve has
  its own slow tilt). NaN, 0 without replicates of this run's bins."""
  rep = (run.get("reference") or {}).get("replicates") or {}
  if not rep or c not in run["reference"]["thresholds"]:
    return math.nan, 0
  mine = [[int(steps[g[0]]), int(steps[g[-1]])] for g in groups]
  if rep.get("bins") != mine:
    return math.nan, 0
  j = run["reference"]["thresholds"].index(c)
  curves = np.asarray(rep[quantity], float)[:, bins, j]
  a = [exponents.floor0_fit(x, y)["a"] for y in curves]
  a = np.asarray([v for v in a if np.isfinite(v)])
  return (float(a.std(ddof=1)), len(a)) if len(a) >= 2 else (math.nan, 0)


def _widen(point: dict, sd: float, n: int) -> tuple[float, float]:
  """The block-bootstrap interval widened by the stream spread (variances add): t quantile
  with n - 1 degrees of freedom of the replicate streams."""
  lo, hi = point["ci"]
  if not (np.isfinite(sd) and n >= 2 and np.isfinite(lo)):
    return lo, hi
  t = sps.t.ppf(0.975, n - 1) * sd
  a = point["a"]
  return a - math.hypot(a - lo, t), a + math.hypot(hi - a, t)


def data_law(run: dict, key, rows: list[dict], quantity: str = "knowledge") -> dict:
  """Every number of a model's data-exponent rows for `quantity` ("knowledge": name + value
  excess per knowledge token; "value": value excess per value token): {ok, why, note,
  local, decades, model, reference, ...}."""
  kp = knowledge_phase(rows, run["config"])
  b = kp["syntax_bin"]
  if b is None:
    return {"ok": False, "why": "syntax never came within 10% of its Bayes floor: no "
                                "knowledge phase to fit (run too short)"}
  s, all_groups = kp["series"], kp["groups"]
  with np.errstate(invalid="ignore"):
    per_step = (s["excess"] if quantity == "knowledge" else
                np.where(s["value_weight"] > 0, s["value"] - s["value_floor"], np.nan))
  groups = all_groups[b:]
  x, y = kp["tokens"][b:], bin_mean(per_step, groups)
  local = exponents.local_exponents(x, y)
  start = exponents.onset_end(x, y)
  fit_x, fit_y, fit_g = x[start:], y[start:], groups[start:]
  out = {"ok": True, "why": "", "local": local}
  if len(fit_x) == 0:
    return {**out, "ok": False,
            "why": "inconclusive: too short (nothing left a quarter decade after the peak)"}
  t_lo, t_hi = float(s["tokens"][fit_g[0][0]]), float(s["tokens"][fit_g[-1][-1]])
  decades = math.log10(t_hi / t_lo) if t_lo > 0 else 0.0
  out.update(start_tokens=t_lo, end_tokens=t_hi, decades=decades)
  out["note"] = (f"fitted tokens [{fmt(t_lo)}, {fmt(t_hi)}] ({decades:.2f} decades, "
                 f"{len(fit_x)} log-bins; syntax within 10% at {fmt(float(x[0]))} tokens"
                 + ("; from the local slope's peak + 0.25 decade)" if start else ")"))
  if decades < MIN_FIT_DECADES or len(fit_x) < MIN_FIT_BINS:
    out.update(ok=False, why=f"inconclusive: too short ({decades:.2f} decades, {len(fit_x)} "
                             f"bins after the onset; needs {MIN_FIT_DECADES} and {MIN_FIT_BINS})")
    return out
  w = s["knowledge_weight"] if quantity == "knowledge" else s["value_weight"]
  x_end = np.array([s["tokens"][g[-1]] for g in fit_g], float)
  x_start = float(s["tokens"][fit_g[0][0] - 1]) if fit_g[0][0] > 0 else 1.0
  out.update(free=exponents.free_floor_fit(fit_x, fit_y)["a"],
             cumulative=exponents.cumulative_fit(
                 x_end, fit_y, [w[g].sum() for g in fit_g], max(x_start, 1.0))["a"])
  c = model_threshold(run, key)
  out.update(c=c, reference={}, reference_local={}, reference_why="")
  curves, labels = [fit_y], []
  if c is None:
    out["reference_why"] = "no occurrence bin reached 50% accuracy at the last eval"
  for cc in ((max(c // 4, 1), c, 4 * c) if c else ()):
    ser, why = reference_series(run, s["step"], cc, quantity)
    if ser is None:
      out["reference_why"] = why
      break
    curves.append(bin_mean(ser, fit_g))
    labels.append(cc)
    out["reference_local"][str(cc)] = exponents.local_exponents(x, bin_mean(ser, groups))
  fitted = exponents.block_bootstrap(fit_x, curves, counts=[len(g) for g in fit_g])
  sd, n = stream_spread(run, s["step"], all_groups, np.arange(b + start, b + len(x)), fit_x,
                        c or 0, quantity)
  out.update(stream_sd=sd, stream_runs=n)
  out["model"] = dict(fitted[0], ci=_widen(fitted[0], sd, n))
  for cc, f in zip(labels, fitted[1:]):
    ci = ((f["a"] - sps.t.ppf(0.975, n - 1) * sd, f["a"] + sps.t.ppf(0.975, n - 1) * sd)
          if cc == c and n >= 2 and np.isfinite(sd) else f["ci"])
    out["reference"][str(cc)] = dict(f, ci=ci)
  return out


def _law_row(cid: str, claim: str, q: str, pred: float, law: dict, model: str) -> dict:
  """The exponent row of one data_law: measured, interval, the checks and the reference."""
  note = law.get("note", "")
  if not law["ok"]:
    return claim_row(cid, claim, q, pred, None, None, "point", formula=FORMULA, model=model,
                     ok=False, why_not=law["why"], note=note)
  m, c = law["model"], law["c"]
  ref = law["reference"].get(str(c)) if c else None
  spread = (f"; interval = block bootstrap widened by the learner's spread over "
            f"{law['stream_runs']} independent streams (sd {fmt(law['stream_sd'])})"
            if law["stream_runs"] else "; interval: block bootstrap only (within-run)")
  checks = (f"; free floor a = {fmt(law['free'])}, cumulative a = {fmt(law['cumulative'])}, "
            f"local slope at the end {fmt(law['local']['end'])}")
  refnote = (f"; threshold learner (c = {c}) a = {fmt(ref['a'])} [{fmt(ref['ci'][0])}, "
             f"{fmt(ref['ci'][1])}]" if ref else f"; no reference: {law['reference_why']}")
  row = claim_row(cid, claim, q, pred, m["a"], m["ci"], "point", formula=FORMULA, model=model,
                  note=note + checks + refnote + spread)
  clean = lambda v: v if not isinstance(v, float) or math.isfinite(v) else None
  row.update(free_floor_exponent=clean(law["free"]), cumulative_exponent=clean(law["cumulative"]),
             local_exponent_end=clean(law["local"]["end"]), decades=law["decades"],
             fit_range_tokens=[law["start_tokens"], law["end_tokens"]],
             local_exponents=law["local"], reference_c=c,
             reference_exponent=clean(ref["a"]) if ref else None,
             reference_ci=[clean(v) for v in ref["ci"]] if ref else None,
             reference_exponents={k: {"a": clean(v["a"]), "ci": [clean(u) for u in v["ci"]]}
                                  for k, v in law["reference"].items()},
             reference_local=law["reference_local"])
  return row


def claims_data_exponent_model(run: dict, key, rows: list[dict]) -> list[dict]:
  """The rows of one model: the floor-0 exponent of its knowledge (name + value) excess and
  of its value (fact) excess vs 1 - alpha, each carrying the threshold learner's exponent on
  the same tokens (reference_exponent) and the checks; and knowledge model minus learner vs
  0 (paired). The value excess is the cleaner law: a missed fact costs its prior bits at any
  n, while a missed name's excess shrinks as log K_n grows (a learner's name excess falls
  faster than n^-(1-alpha) over finite ranges)."""
  alpha = run["config"]["data"]["alpha"]
  pred = theory.data_scaling_exponent(alpha)
  model = model_name(key)
  bad = wrong_regime(run)
  rows, why = first_pass(run, rows)
  laws = {q: ({"ok": False, "why": bad or why} if (bad or why) else
              data_law(run, key, rows, q)) for q in ("knowledge", "value")}
  out = [_law_row("data_exponent_model", CLAIM, QUANTITY, pred, laws["knowledge"], model),
         _law_row("data_exponent_model_value", CLAIM_VALUE, QUANTITY_VALUE, pred, laws["value"],
                  model)]
  law = laws["knowledge"]
  ref = law["reference"].get(str(law["c"])) if law["ok"] and law["c"] else None
  if ref:
    diff = law["model"]["a"] - ref["a"]
    out.append(claim_row("data_exponent_vs_reference", CLAIM_REF, QUANTITY_REF, 0.0, diff,
                         exponents.difference_ci(law["model"], ref, law["model"]["blocks"]), "point",
                         formula=f"the learner's finite-range exponent {fmt(ref['a'])}",
                         model=model, note=law["note"] + f"; learner c = {law['c']}"))
  else:
    out.append(claim_row("data_exponent_vs_reference", CLAIM_REF, QUANTITY_REF, 0.0, None, None,
                         "point", model=model, ok=False,
                         why_not=law.get("reference_why") or law["why"],
                         note=law.get("note", "")))
  return out


def claim_data_exponent_bayes(run: dict) -> dict:
  """The Bayes code's data law measured from independent streams of the run's data spec
  (`bayes_laws.json`, `python -m kcompress.data laws`): name + value bits per sentence,
  floor 0, over ~4 decades of n; its verdict was given when it was measured."""
  alpha = run["config"]["data"]["alpha"]
  pred = theory.data_scaling_exponent(alpha)
  claim = "Data exponent of the Bayes code's knowledge part"
  laws = run.get("bayes_laws") or {}
  q = ("a in A n^-a (floor 0) of the Bayes code's name + value bits per sentence (new names "
       "and first-revealed facts; the entity-choice bits, whose limit is the entity entropy, "
       "left out), mean of independent streams of the run's spec in log-bins of n; bootstrap "
       "over streams")
  if not laws:
    return claim_row("data_exponent_bayes", claim, q, pred, None, None, "point",
                     formula=FORMULA, ok=False,
                     why_not="no bayes_laws.json (python -m kcompress.data laws --config=... "
                             "--out=WORKDIR/bayes_laws.json)")
  if abs(laws["alpha"] - alpha) > 1e-12:
    return claim_row("data_exponent_bayes", claim, q, pred, None, None, "point",
                     formula=FORMULA, ok=False,
                     why_not=f"bayes_laws.json is of alpha {laws['alpha']}, the run's is {alpha}")
  short = laws["decades"] < 2.0
  note = (f"n in [{fmt(laws['range'][0])}, {fmt(laws['range'][1])}] ({laws['decades']:.2f} "
          f"decades), {laws['replicates']} streams; finite-range prediction "
          f"{fmt(laws.get('predicted_finite_range'))}")
  return claim_row("data_exponent_bayes", claim, q, pred, laws["exponent"], laws["ci"], "point",
                   formula=FORMULA, ok=not short,
                   why_not=f"inconclusive: too short ({laws['decades']:.2f} decades < 2)",
                   note=note)
