"""The paper's claims (SPEC sections 6-7), each measured with a 95% interval and judged by
one rule fixed in code before looking at any run (numpy/scipy only).

`run_claims(run, summary)` returns one row per claim (per model where the claim is per
width): {id, claim, quantity, predicted, measured, ci, kind, verdict, reason} plus
`model` ("64/0") and `formula` where they apply. Bits are bits; "tokens" are tokens
seen by the model; every interval is a 95% interval. A claim whose inputs are missing
is still listed, `inconclusive`, saying what is missing.

The verdict rule (`verdict`), with the constants below:
- regime wrong (`ok_regime` False: too few points, run too short, wrong kind of run...),
  or no finite interval -> `inconclusive`, with the reason.
- kind "point" (the prediction is a number p): the interval [lo, hi] is too wide to mean
  anything when hi - lo > max(MAX_REL_WIDTH |p|, MIN_ABS_WIDTH) -> `inconclusive`;
  otherwise `consistent` if lo <= p <= hi, else `inconsistent`.
- kind "above" (the claim: quantity > threshold p): lo > p -> `consistent`; hi < p ->
  `inconsistent`; else `inconclusive` (the interval straddles the threshold).
- kind "below": the mirror of "above".
- kind "at_least" (a lower bound p on the quantity, which may sit at or above it):
  hi >= p -> `consistent`; hi < p -> `inconsistent` (even the top of the interval is below).

The claims and how each is measured (docstrings of the builders give the details):
 1 heaps_slope       log-log slope of K_n over the last HEAPS_DECADES decades of n; CI from
                     the replicate streams of stream_stats.json; vs the same slope of E[K_n].
 2 zipf_slope        log-log slope of ranked entity counts over ranks with count >= 5; CI
                     from replicates; vs the same slope of the expected rank-frequency curve.
 3 syntax_first      relative excess of value bits over their Bayes floor when syntax first
                     comes within 10% of its floor; bootstrap over the steps there; > 0.1.
 4 frequency_order   Spearman(occurrence bin, accuracy) at the last eval; binomial bootstrap; > 0.
 5 wider_rarer       slope of mean bin accuracy vs log2(width) at the last eval; binomial
                     bootstrap; > 0.
 6 data_exponent_model  exponent a of E + A t^-a fitted to the knowledge excess per knowledge
                     token after syntax is learned (`fit_exponent`: hull of three bootstrap
                     and profile intervals); vs 1 - alpha.
 7 data_exponent_bayes  the same fit of the Bayes code's knowledge bits per knowledge token.
 8 size_exponent     pure power law of the final knowledge excess vs parameters over the
                     capacity-limited widths; residual and point-noise bootstraps; vs 1/alpha - 1.
 9 hallucination_persists  confident-answer rate of the widest model on fresh entities, Wilson
                     interval; above the Bayes predictor's rate.
10 hallucination_floor  confident rate on unrevealed facts, Wilson interval; at least the
                     singleton fraction of revealed facts (Kalai & Vempala).
11 finetune_*        fine-tuning runs only: acquisition vs deliveries (> 0), forgetting (< 0),
                     change of the confident rate on fresh entities (> 0).

Everything is deterministic (fixed seeds), so summary.json is reproduced byte for byte.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from kcompress import theory
from kcompress.analysis import fits

# The verdict rule.
MAX_REL_WIDTH = 1.0     # a point interval wider than this times |prediction| ...
MIN_ABS_WIDTH = 0.1     # ... and wider than this (absolute) is too wide to judge
Z95 = 1.959963984540054  # two-sided 95% normal quantile
CHI2_95 = 3.841458820694124  # 95% quantile of chi^2 with 1 degree of freedom
LEVEL = 0.95

# Measurement choices (fixed before looking at any run).
HEAPS_DECADES = 2.0     # Heaps slope over n in [N / 10^2, N]
ZIPF_MIN_COUNT = 5      # Zipf slope over ranks whose count is >= 5 (as stats.zipf_slope)
ZIPF_GRID = 50          # geometric grid of ranks (each decade weighs the same)
FLOOR_TOL = 0.10        # "within 10% of the Bayes floor"
BINS_PER_DECADE = 20    # per-step curves are averaged in log-spaced bins of tokens seen
MIN_WINDOW_STEPS = 8    # steps at least in the window after syntax reaches its floor
MIN_FIT_POINTS = 8      # a data-exponent fit needs >= 8 log-bins ...
MIN_FIT_DECADES = 0.5   # ... spanning >= 0.5 decade of tokens
TAIL_FRACTION = 0.10    # "final" = mean over the last 10% of steps
PLATEAU_SPAN = 0.25     # capacity-limited: the excess changed < PLATEAU_REL over the last 25%
PLATEAU_REL = 0.05
STORED_MAX = 0.90       # ... and the model stores < 90% of the revealed fact entropy
MIN_EXCESS_BITS = 0.05  # (without probes: final excess > 0.05 bits per knowledge token)
MIN_SIZE_WIDTHS = 3     # a size fit needs >= 3 capacity-limited widths
NUM_BOOT_FIT = 100      # draws of each bootstrap of a power-law fit (as the report's fits)
NUM_BOOT = 2000         # draws of the cheap (binomial / step) bootstraps
A_GRID = np.linspace(0.0, 4.0, 4001)[1:]   # exponents profiled by `profile_power_law`
SEED = 0

KNOWLEDGE_ROLES = ("name", "value")


# ----------------------------------------------------------------------- the rule


def _finite(x) -> bool:
  return x is not None and isinstance(x, (int, float, np.floating, np.integer)) and math.isfinite(x)


def _g(x) -> str:
  return f"{x:.4g}" if _finite(x) else "n/a"


def verdict(predicted, ci, kind: str = "point", max_rel_width: float = MAX_REL_WIDTH,
            min_abs_width: float = MIN_ABS_WIDTH, ok_regime: bool = True,
            regime_reason: str = "") -> tuple[str, str]:
  """(verdict, reason) of a 95% interval `ci` = (lo, hi) against a prediction (see the module
  docstring). `predicted` is the number (kind "point") or the threshold (other kinds)."""
  if not ok_regime:
    return "inconclusive", regime_reason or "regime wrong"
  if ci is None or len(ci) != 2 or not (_finite(ci[0]) and _finite(ci[1])):
    return "inconclusive", ("no finite 95% interval"
                            + (f": {regime_reason}" if regime_reason else ""))
  if not _finite(predicted):
    return "inconclusive", "no finite prediction"
  lo, hi = float(min(ci)), float(max(ci))
  p = float(predicted)
  span = f"[{_g(lo)}, {_g(hi)}]"
  if kind == "point":
    allowed = max(max_rel_width * abs(p), min_abs_width)
    if hi - lo > allowed:
      return "inconclusive", (f"interval too wide: {span} has width {_g(hi - lo)} > max("
                              f"{max_rel_width:g} x |{_g(p)}|, {min_abs_width:g}) = {_g(allowed)}")
    if lo <= p <= hi:
      return "consistent", f"interval {span} covers the prediction {_g(p)}"
    return "inconsistent", f"interval {span} excludes the prediction {_g(p)}"
  if kind in ("above", "below"):
    above, below = lo > p, hi < p
    if (above and kind == "above") or (below and kind == "below"):
      return "consistent", f"interval {span} lies {kind} {_g(p)}"
    if above or below:
      return "inconsistent", f"interval {span} lies {'above' if above else 'below'} {_g(p)}"
    return "inconclusive", f"interval straddles threshold {_g(p)}: {span}"
  if kind == "at_least":
    if hi >= p:
      return "consistent", f"upper end {_g(hi)} of {span} reaches the lower bound {_g(p)}"
    return "inconsistent", f"even the upper end of {span} is below the lower bound {_g(p)}"
  raise ValueError(f"verdict: unknown kind {kind!r}")


def _claim(cid: str, claim: str, quantity: str, predicted, measured, ci, kind: str, *,
           formula: str | None = None, model: str | None = None, ok: bool = True,
           why_not: str = "", note: str = "") -> dict:
  """One row: the verdict of `ci` against `predicted`, and `note` (range, steps) appended."""
  v, reason = verdict(predicted, ci, kind, ok_regime=ok, regime_reason=why_not)
  clean = lambda x: float(x) if _finite(x) else None
  row = {"id": cid, "claim": claim, "quantity": quantity, "kind": kind,
         "predicted": clean(predicted), "measured": clean(measured),
         "ci": ([clean(ci[0]), clean(ci[1])] if ci is not None and len(ci) == 2 else None),
         "verdict": v, "reason": reason + (f"; {note}" if note else "")}
  if formula is not None:
    row["formula"] = formula
  if model is not None:
    row["model"] = model
  return row


def _percentile_ci(draws) -> tuple[float, float]:
  d = np.asarray(draws, float)
  d = d[np.isfinite(d)]
  if len(d) < 2:
    return (math.nan, math.nan)
  q = [(1 - LEVEL) / 2 * 100, (1 + LEVEL) / 2 * 100]
  lo, hi = np.percentile(d, q)
  return float(lo), float(hi)


def wilson_interval(k: int, n: int) -> tuple[float, float]:
  """95% Wilson score interval of a binomial proportion k/n."""
  if n <= 0:
    return (math.nan, math.nan)
  p, z2 = k / n, Z95 ** 2
  centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
  return (0.0 if k <= 0 else max(0.0, centre - half), 1.0 if k >= n else min(1.0, centre + half))


def spearman(x, y_BxK) -> np.ndarray:
  """Spearman rank correlation of x [K] with each row of y [B, K] (average ranks for ties;
  0 where a row or x is constant: no association)."""
  rx = sps.rankdata(np.asarray(x, float))
  ry = sps.rankdata(np.atleast_2d(np.asarray(y_BxK, float)), axis=-1)
  rx = rx - rx.mean()
  ry = ry - ry.mean(-1, keepdims=True)
  den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum(-1))
  return np.where(den > 0, ry @ rx / np.where(den > 0, den, 1.0), 0.0)


# ------------------------------------------------------------------ shared inputs


def _model_key(key) -> str:
  return f"{key[0]}/{key[1]}"


def _num(x) -> float:
  return math.nan if x is None else float(x)


def bin_start(label: str) -> int:
  """Lower edge of an occurrence-bin label: '4-7' -> 4, '512+' -> 512."""
  return int(label.split("-")[0].rstrip("+"))


def _is_finetune(run: dict) -> bool:
  return bool(run["config"].get("init_from"))


def _first_pass(run: dict, rows: list[dict]) -> tuple[list[dict], str]:
  """The rows of one pass over fresh data, and '' or why there is none: a finite dataset's
  later epochs repeat sentences the Bayes code priced in epoch 0, so only epoch 0 counts
  (rows with `epoch` 0; without that column, the steps whose sentences so far, counted by
  their end tokens `tokens_end`, stay within config.data.num_sentences)."""
  num = run["config"]["data"].get("num_sentences", 0)
  if num > 0 and rows:
    if "epoch" in rows[0]:
      rows = [r for r in rows if r.get("epoch", 0) == 0]
    elif rows[0].get("tokens_end") is not None:
      seen = np.cumsum([r.get("tokens_end") or 0 for r in rows])
      rows = [r for r, n in zip(rows, seen) if n <= num]
    else:
      return [], "finite-dataset run without epochs or tokens_end: no first pass to measure"
  if not rows:
    return [], "no metrics rows of the first pass"
  return rows, ""


def _role(rows: list[dict], role: str, default_weight: float):
  """(model bits/token, Bayes bits/token, token weight) per step of one role; weight 0 where
  the step had no token of that role. Weight = tokens_<role>, else `default_weight`."""
  bits = np.array([_num(r.get(f"bits_{role}")) for r in rows])
  bayes = np.array([_num(r.get(f"bayes_{role}")) for r in rows])
  w = np.array([_num(r.get(f"tokens_{role}", default_weight)) for r in rows])
  ok = np.isfinite(bits) & np.isfinite(bayes) & np.isfinite(w) & (w > 0)
  return np.where(ok, bits, 0.0), np.where(ok, bayes, 0.0), np.where(ok, w, 0.0)


def step_series(rows: list[dict], config: dict) -> dict[str, np.ndarray]:
  """Per-step arrays [S] of one model: step, tokens, knowledge excess and Bayes knowledge bits
  per knowledge (name + value) token, syntax and value bits with their Bayes floors, and the
  value token weight. Without tokens_<role> columns a sentence counts as 1 value token and
  config.data.name_length name tokens."""
  name_len = float(config["data"].get("name_length", 1))
  parts = {role: _role(rows, role, name_len if role == "name" else 1.0)
           for role in KNOWLEDGE_ROLES}
  w = sum(parts[r][2] for r in KNOWLEDGE_ROLES)
  model = sum(parts[r][2] * parts[r][0] for r in KNOWLEDGE_ROLES)
  bayes = sum(parts[r][2] * parts[r][1] for r in KNOWLEDGE_ROLES)
  with np.errstate(invalid="ignore", divide="ignore"):
    excess = np.where(w > 0, (model - bayes) / w, np.nan)
    bayes_k = np.where(w > 0, bayes / w, np.nan)
  syn_b, syn_f, syn_w = _role(rows, "syntax", 1.0)
  val_b, val_f, val_w = parts["value"]
  return {"step": np.array([r["step"] for r in rows], float),
          "tokens": np.array([r["tokens_seen"] for r in rows], float),
          "excess": excess, "bayes_knowledge": bayes_k,
          "syntax": np.where(syn_w > 0, syn_b, np.nan),
          "syntax_floor": np.where(syn_w > 0, syn_f, np.nan),
          "value": val_b, "value_floor": val_f, "value_weight": val_w}


def log_bins(tokens) -> list[np.ndarray]:
  """Indices of the steps in each non-empty bin of BINS_PER_DECADE log-spaced bins of tokens."""
  t = np.asarray(tokens, float)
  good = np.flatnonzero(t > 0)
  if len(good) == 0:
    return []
  lt = np.log10(t[good])
  lo, hi = lt.min(), lt.max()
  nb = max(1, int(math.ceil((hi - lo) * BINS_PER_DECADE)))
  edges = np.linspace(lo, hi, nb + 1)
  idx = np.clip(np.searchsorted(edges, lt, side="right") - 1, 0, nb - 1)
  return [good[idx == b] for b in range(nb) if np.any(idx == b)]


def _bin_mean(x, groups) -> np.ndarray:
  out = []
  for g in groups:
    v = x[g]
    v = v[np.isfinite(v)]
    out.append(v.mean() if len(v) else math.nan)
  return np.array(out)


def knowledge_phase(rows: list[dict], config: dict) -> dict:
  """Log-binned curves of one model and the bin where syntax first comes within FLOOR_TOL
  of its Bayes floor (`syntax_bin`, None if never): centre tokens (geometric mean), knowledge
  excess, Bayes knowledge bits, syntax and value relative excess, per bin."""
  s = step_series(rows, config)
  groups = log_bins(s["tokens"])
  centre = np.array([math.exp(np.mean(np.log(s["tokens"][g]))) for g in groups])
  syn, syn_f = _bin_mean(s["syntax"], groups), _bin_mean(s["syntax_floor"], groups)
  vw = s["value_weight"]
  val = np.array([np.dot(vw[g], s["value"][g]) for g in groups])
  val_f = np.array([np.dot(vw[g], s["value_floor"][g]) for g in groups])
  with np.errstate(invalid="ignore", divide="ignore"):
    syn_rel = syn / syn_f - 1
    val_rel = np.where(val_f > 0, val / np.where(val_f > 0, val_f, 1) - 1,
                       np.where(val > 0, np.inf, 0.0))
  hit = np.flatnonzero(syn_rel <= FLOOR_TOL)
  val_hit = np.flatnonzero(val_rel <= FLOOR_TOL)
  return {"series": s, "groups": groups, "tokens": centre,
          "excess": _bin_mean(s["excess"], groups),
          "bayes_knowledge": _bin_mean(s["bayes_knowledge"], groups),
          "syntax_rel": syn_rel, "value_rel": val_rel,
          "syntax_bin": int(hit[0]) if len(hit) else None,
          "value_bin": int(val_hit[0]) if len(val_hit) else None}


# ---------------------------------------------------------------- 1-2: the stream


def _stream_missing(run: dict) -> str:
  ss = run.get("stream_stats") or {}
  if not ss:
    return "no stream_stats.json in this run"
  if len(ss.get("replicates", [])) < 2:
    return "stream_stats.json has fewer than 2 replicate streams: no sampling spread"
  return ""


def _sd(values) -> float:
  """Sample standard deviation of the finite values (NaN with fewer than 2)."""
  v = np.asarray(values, float)
  v = v[np.isfinite(v)]
  return float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan


def heaps_statistic(n, k, num_sentences: int) -> float:
  """Log-log slope of K_n vs n over n >= N / 10^HEAPS_DECADES."""
  return fits.loglog_slope(n, k, x_min=num_sentences / 10 ** HEAPS_DECADES)


def ranked_from_counts(counts_of_counts: dict) -> np.ndarray:
  """Ranked entity counts (decreasing) from {count: [c...], entities: [M_c...]}."""
  c = np.asarray(counts_of_counts["count"], np.int64)
  m = np.asarray(counts_of_counts["entities"], np.int64)
  return np.sort(np.repeat(c, m))[::-1]


def zipf_statistic(ranked: np.ndarray) -> float:
  """Log-log slope of ranked counts over ranks with count >= ZIPF_MIN_COUNT, on a geometric
  grid of ranks (the statistic of kcompress.data.stats.zipf_slope)."""
  top = int(np.sum(ranked >= ZIPF_MIN_COUNT))
  if top < 3:
    return math.nan
  ranks = np.unique(np.geomspace(1, top, ZIPF_GRID).astype(np.int64))
  return fits.loglog_slope(ranks, ranked[ranks - 1])


def expected_zipf_statistic(alpha: float, beta: float, n: int) -> float:
  """The Zipf statistic of the expected rank-frequency curve: rank(c) = E[#entities seen >= c
  times] (theory.expected_entities_at_least), inverted to a count per rank."""
  top = float(theory.expected_entities_at_least(alpha, beta, n, [ZIPF_MIN_COUNT])[0])
  if top < 3:
    return math.nan
  ranks = np.unique(np.geomspace(1, top, ZIPF_GRID).astype(np.int64))
  return fits.loglog_slope(ranks, theory.expected_ranked_counts(alpha, beta, n, ranks))


def claim_heaps(run: dict) -> dict:
  """Heaps: slope of log K_n vs log n over the last two decades of the run's stream (on the
  geometric n grid of stream_stats.json); the 95% interval is the slope +- 1.96 sd of the
  same slope over the replicate streams; predicted: the same slope of the exact E[K_n]
  (config alpha and beta: the claim is about the configured generator) on the same n."""
  cfg = run["config"]["data"]
  alpha, beta = cfg["alpha"], cfg["beta"]
  q = "slope of log K_n vs log n over n in [N/100, N] (N sentences of the stream)"
  formula = "slope of E[K_n] = (beta/alpha)[(beta+alpha)_n/(beta)_n - 1] (tends to alpha)"
  missing = _stream_missing(run)
  if missing:
    return _claim("heaps_slope", "Heaps: distinct entities grow as n^alpha", q, math.nan, None,
                  None, "point", formula=formula, ok=False, why_not=missing)
  ss = run["stream_stats"]
  N = int(ss["num_sentences"])
  n = np.asarray(ss["heaps"]["n"], float)
  measured = heaps_statistic(n, ss["heaps"]["entities"], N)
  reps = np.array([heaps_statistic(n, r["heaps_entities"], N) for r in ss["replicates"]])
  sd = _sd(reps)
  predicted = heaps_statistic(n, theory.expected_num_entities(alpha, beta, n), N)
  return _claim("heaps_slope", "Heaps: distinct entities grow as n^alpha", q, predicted, measured,
                (measured - Z95 * sd, measured + Z95 * sd), "point", formula=formula,
                note=f"N = {N:,} sentences; {len(reps)} replicate streams (mean "
                     f"{_g(float(np.nanmean(reps)))}, sd {_g(sd)}); "
                     f"alpha = {alpha}, beta = {beta}")


def claim_zipf(run: dict) -> dict:
  """Zipf: slope of log count vs log rank over ranks with count >= 5 (geometric rank grid);
  95% interval +- 1.96 sd over the replicates; predicted: the same statistic of the expected
  rank-frequency curve rank(c) = sum_{j>=c} E[M_{j,N}] (Pitman's formula). That is the
  statistic of the expected curve, not the expected statistic: they differ at the top ranks
  (at alpha 0.5, beta 10, N = 3.5e5 by 0.04, 0.6 replicate sd), so the note gives the
  replicates' mean beside it."""
  cfg = run["config"]["data"]
  alpha, beta = cfg["alpha"], cfg["beta"]
  q = f"slope of log count vs log rank over ranks with count >= {ZIPF_MIN_COUNT}"
  formula = "slope of rank(c) = sum_{j>=c} E[M_{j,N}] inverted (tends to -1/alpha)"
  missing = _stream_missing(run)
  if missing:
    return _claim("zipf_slope", "Zipf: ranked entity counts fall as rank^(-1/alpha)", q, math.nan,
                  None, None, "point", formula=formula, ok=False, why_not=missing)
  ss = run["stream_stats"]
  N = int(ss["num_sentences"])
  ranked = ranked_from_counts(ss["counts_of_counts"])
  measured = zipf_statistic(ranked)
  reps = np.array([zipf_statistic(ranked_from_counts(r["counts_of_counts"]))
                   for r in ss["replicates"]])
  sd = _sd(reps)
  predicted = expected_zipf_statistic(alpha, beta, N)
  return _claim("zipf_slope", "Zipf: ranked entity counts fall as rank^(-1/alpha)", q, predicted,
                measured, (measured - Z95 * sd, measured + Z95 * sd), "point", formula=formula,
                note=f"{int(np.sum(ranked >= ZIPF_MIN_COUNT)):,} entities with count >= "
                     f"{ZIPF_MIN_COUNT}; N = {N:,}; {len(reps)} replicates (mean "
                     f"{_g(float(np.nanmean(reps)))}, sd {_g(sd)})")


# ------------------------------------------------------- 3, 6, 7, 8: loss curves


def _run_regime(run: dict) -> str:
  if _is_finetune(run):
    return "fine-tuning run: measured on the pretraining run (regime wrong)"
  return ""


def claim_syntax_first(run: dict, key, rows: list[dict]) -> dict:
  """Syntax before knowledge. When syntax bits first come within FLOOR_TOL (10%) of their
  Bayes floor (the first log-bin of tokens whose mean does), how far are the value bits above
  theirs? Measured: value relative excess sum(model value bits) / sum(Bayes value bits) - 1
  over the steps of that bin (extended to >= MIN_WINDOW_STEPS steps); its interval: a
  bootstrap over those steps. The claim (syntax reaches its floor first) holds if the value
  excess is still above the same 10% tolerance there: kind "above" FLOOR_TOL. A value excess
  and not a step ratio: the step where values reach their floor is often beyond the run
  (never), which gives no number; the excess always exists and has a sampling spread."""
  q = "value bits / Bayes value bits - 1 when syntax is first within 10% of its floor"
  claim = "Syntax reaches its Bayes floor before facts"
  model = _model_key(key)
  bad = _run_regime(run)
  rows, why = _first_pass(run, rows)
  if bad or why:
    return _claim("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model, ok=False,
                  why_not=bad or why)
  kp = knowledge_phase(rows, run["config"])
  s, groups = kp["series"], kp["groups"]
  b = kp["syntax_bin"]
  if b is None:
    last = kp["syntax_rel"][-1] if len(kp["syntax_rel"]) else math.nan
    return _claim("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model, ok=False,
                  why_not=f"syntax never came within 10% of its Bayes floor (last bin "
                          f"+{_g(100 * last)}%): run too short (regime wrong)")
  idx = groups[b]
  j = b + 1
  while len(idx) < MIN_WINDOW_STEPS and j < len(groups):
    idx = np.concatenate([idx, groups[j]])
    j += 1
  w, v, f = s["value_weight"][idx], s["value"][idx], s["value_floor"][idx]
  floor = float(np.dot(w, f))
  step_syn = int(s["step"][groups[b][0]])
  vb = kp["value_bin"]
  step_val = int(s["step"][groups[vb][0]]) if vb is not None else None
  note = (f"syntax within 10% from step {step_syn} ({_g(s['tokens'][groups[b][0]])} tokens); "
          f"value within 10% from step {step_val if step_val is not None else 'never'}; "
          f"window: steps {int(s['step'][idx[0]])}-{int(s['step'][idx[-1]])} ({len(idx)} steps)")
  if floor <= 0:
    return _claim("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model, ok=False,
                  why_not="Bayes value bits are 0 in the window: no relative excess", note=note)
  measured = float(np.dot(w, v)) / floor - 1
  rng = np.random.default_rng(SEED)
  pick = rng.integers(0, len(idx), size=(NUM_BOOT, len(idx)))
  with np.errstate(invalid="ignore", divide="ignore"):
    draws = (w[pick] * v[pick]).sum(-1) / (w[pick] * f[pick]).sum(-1) - 1
  return _claim("syntax_first", claim, q, FLOOR_TOL, measured, _percentile_ci(draws), "above",
                model=model, formula="value excess above the 10% tolerance", note=note)


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
  q_lo, q_hi = _percentile_ci(draws)
  lo = min(fit.a_ci[0], 2 * fit.a - q_hi) if _finite(q_hi) else fit.a_ci[0]
  hi = max(fit.a_ci[1], 2 * fit.a - q_lo) if _finite(q_lo) else fit.a_ci[1]
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
    return _claim(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
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
  note = (f"fitted tokens [{_g(x[0]) if len(x) else 'n/a'}, {_g(x[-1]) if len(x) else 'n/a'}] "
          f"({span:.2f} decades, {len(x)} log-bins, from step {start} where syntax came "
          f"within 10%)" + (f"; {dropped} bins with mean <= 0 left out" if dropped else ""))
  if len(x) < MIN_FIT_POINTS:
    return _claim(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                  ok=False, why_not=f"too few points: {len(x)} log-bins (< {MIN_FIT_POINTS})",
                  note=note)
  if span < MIN_FIT_DECADES:
    return _claim(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                  ok=False, why_not=f"fitted range spans {span:.2f} decade (< {MIN_FIT_DECADES})",
                  note=note)
  try:
    fit, ci, prof = fit_exponent(x, vals)
  except (ValueError, RuntimeError) as e:
    return _claim(cid, claim, q, predicted, None, None, "point", formula=formula, model=model,
                  ok=False, why_not=f"fit failed: {e}", note=note)
  weighted = (f"; weighted fit a = {_g(prof['a'])} [{_g(prof['ci'][0])}, {_g(prof['ci'][1])}],"
              f" chi2/dof {_g(prof['chi2_dof'])}" if prof else "")
  return _claim(cid, claim, q, predicted, fit.a, ci, "point", formula=formula, model=model,
                note=note + f"; E = {_g(fit.E)}, A = {_g(fit.A)}" + weighted)


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
  model = _model_key(key)
  bad = _run_regime(run)
  rows, why = _first_pass(run, rows)
  if bad or why:
    return _claim("data_exponent_model", claim, q, theory.data_scaling_exponent(alpha), None, None,
                  "point", formula="1 - alpha", model=model, ok=False, why_not=bad or why)
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
  bad = _run_regime(run)
  if bad or not run["models"]:
    return _claim("data_exponent_bayes", claim, q, pred, None, None, "point", formula="1 - alpha",
                  ok=False, why_not=bad or "no metrics")
  best = None
  for rows in run["models"].values():
    rows, why = _first_pass(run, rows)
    if why:
      return _claim("data_exponent_bayes", claim, q, pred, None, None, "point",
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
  bad = _run_regime(run)
  if bad:
    return _claim("size_exponent", claim, q, pred, None, None, "point", formula=formula, ok=False,
                  why_not=bad)
  xs, ys, ses, widths, notes = [], [], [], set(), []
  for key, rows in run["models"].items():
    ex = step_series(rows, run["config"])["excess"]
    final = _tail_mean(ex, 1 - TAIL_FRACTION, 1.0)
    tail = ex[-max(1, int(math.floor(TAIL_FRACTION * len(ex)))):]
    tail = tail[np.isfinite(tail)]
    se = float(tail.std(ddof=1) / math.sqrt(len(tail))) if len(tail) >= 2 else 0.0
    before = _tail_mean(ex, 1 - PLATEAU_SPAN - TAIL_FRACTION, 1 - PLATEAU_SPAN)
    change = (final - before) / abs(final) if _finite(final) and final != 0 else math.nan
    probes = run["probes"].get(key, [])
    cap = probes[-1].get("capacity") if probes else None
    frac = (cap["stored_bits"] / cap["fact_entropy_bits"]
            if cap and cap.get("fact_entropy_bits") else None)
    reasons = []
    if not _finite(final) or final <= 0:
      reasons.append(f"final excess {_g(final)} <= 0")
    if not (_finite(change) and abs(change) < PLATEAU_REL):
      reasons.append(f"excess still changing ({_g(100 * change)}% over the last 25%)")
    if frac is not None and frac >= STORED_MAX:
      reasons.append(f"stores {_g(100 * frac)}% of the fact entropy (>= 90%)")
    if frac is None and _finite(final) and final <= MIN_EXCESS_BITS:
      reasons.append(f"final excess {_g(final)} <= {MIN_EXCESS_BITS} bits (no probes)")
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
    return _claim("size_exponent", claim, q, pred, None, None, "point", formula=formula, ok=False,
                  why_not=f"{len(widths)} capacity-limited widths (< {MIN_SIZE_WIDTHS})", note=note)
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
    return _claim("size_exponent", claim, q, pred, None, None, "point", formula=formula, ok=False,
                  why_not=f"fit failed: {e}", note=note)
  q_lo, q_hi = _percentile_ci(draws)
  lo = min(fit.a_ci[0], 2 * fit.a - q_hi) if _finite(q_hi) else fit.a_ci[0]
  hi = max(fit.a_ci[1], 2 * fit.a - q_lo) if _finite(q_lo) else fit.a_ci[1]
  return _claim("size_exponent", claim, q, pred, fit.a, (lo, hi), "point", formula=formula,
                note=note + f"; A = {_g(fit.A)}")


# ---------------------------------------------------------------- 4, 5: probes


NO_PROBES = "no probes in this run"


def _knowledge_bins(probe_row: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
  """(bin start, n, accuracy, labels) of the bins with n > 0, by bin start."""
  kn = probe_row.get("knowledge", {})
  labels = sorted((l for l in kn if kn[l].get("n", 0) > 0), key=bin_start)
  return (np.array([bin_start(l) for l in labels], float),
          np.array([kn[l]["n"] for l in labels], np.int64),
          np.array([kn[l]["accuracy"] for l in labels], float), labels)


def _rank_claim(cid, claim, q, start, n, acc, model, note) -> dict:
  """Spearman(start, acc) > 0 with a parametric (binomial) bootstrap of the accuracies."""
  if len(start) < 3:
    return _claim(cid, claim, q, 0.0, None, None, "above", model=model, ok=False,
                  why_not=f"too few points: {len(start)} bins with probes (< 3)", note=note)
  measured = float(spearman(start, acc[None])[0])
  rng = np.random.default_rng(SEED)
  draws = rng.binomial(n[None, :], np.clip(acc, 0, 1)[None, :], size=(NUM_BOOT, len(n))) / n
  return _claim(cid, claim, q, 0.0, measured, _percentile_ci(spearman(start, draws)), "above",
                model=model, note=note)


def claim_frequency_order(run: dict, key) -> dict:
  """Facts are learned in order of frequency: Spearman rank correlation of occurrence bin
  (lower edge) with top-1 accuracy over the bins with probes at the last eval; interval by a
  parametric bootstrap (accuracy ~ Binomial(n, acc) / n per bin, seed SEED); > 0."""
  q = "Spearman(occurrence bin, top-1 accuracy) at the last eval"
  claim = "Facts are learned in order of frequency"
  model = _model_key(key)
  rows = run["probes"].get(key, [])
  if not rows:
    return _claim("frequency_order", claim, q, 0.0, None, None, "above", model=model, ok=False,
                  why_not=NO_PROBES)
  start, n, acc, labels = _knowledge_bins(rows[-1])
  return _rank_claim("frequency_order", claim, q, start, n, acc, model,
                     f"step {rows[-1]['step']}; bins {', '.join(labels)}")


def claim_wider_rarer(run: dict) -> dict:
  """Wider models learn rarer facts: least-squares slope of the mean top-1 accuracy over
  occurrence bins (unweighted, bins with probes in every model: rare bins weigh as much as
  frequent ones, so the mean rises when rarer facts are learned) vs log2(width), every model
  one point, at the last eval; interval by a binomial bootstrap of every bin; > 0."""
  q = "slope of mean bin accuracy vs log2(width) at the last eval"
  claim = "Wider models learn rarer facts"
  models = {k: rows[-1] for k, rows in run["probes"].items() if rows}
  if not models:
    return _claim("wider_rarer", claim, q, 0.0, None, None, "above", ok=False, why_not=NO_PROBES)
  shared = None
  for row in models.values():
    labels = {l for l, v in row.get("knowledge", {}).items() if v.get("n", 0) > 0}
    shared = labels if shared is None else shared & labels
  labels = sorted(shared, key=bin_start)
  widths = sorted({k[0] for k in models})
  if len(widths) < 2 or not labels:
    return _claim("wider_rarer", claim, q, 0.0, None, None, "above", ok=False,
                  why_not=f"too few points: {len(widths)} widths, {len(labels)} shared bins")
  keys = sorted(models)
  x = np.log2([k[0] for k in keys])
  n = np.array([[models[k]["knowledge"][l]["n"] for l in labels] for k in keys], np.int64)
  acc = np.array([[models[k]["knowledge"][l]["accuracy"] for l in labels] for k in keys], float)
  xc = x - x.mean()
  slope = lambda m: (m - m.mean(-1, keepdims=True)) @ xc / (xc @ xc)
  measured = float(slope(acc.mean(-1)))
  rng = np.random.default_rng(SEED)
  draws = rng.binomial(n[None], np.clip(acc, 0, 1)[None], size=(NUM_BOOT,) + n.shape) / n[None]
  means = ", ".join(f"{k[0]}: {_g(m)}" for k, m in zip(keys, acc.mean(-1)))
  return _claim("wider_rarer", claim, q, 0.0, measured, _percentile_ci(slope(draws.mean(-1))),
                "above", note=f"mean accuracy per width ({means}) over bins {', '.join(labels)}")


# ------------------------------------------------------------ 9, 10: hallucination


def _num_probes(run: dict) -> int | None:
  return run["config"].get("probe", {}).get("num_fresh")


def claim_hallucination_persists(run: dict) -> dict:
  """Confident answers (top-1 > config.probe.confident) on fresh (never seen) entities by the
  widest model at the last eval (seeds pooled), Wilson 95% interval with n = num_fresh per
  model (the probes averaged at most that many); above the Bayes predictor's rate (H_a)."""
  q = "confident-answer rate on fresh entities, widest model, last eval"
  claim = "Hallucination on unseen entities persists at every size"
  models = {k: rows for k, rows in run["probes"].items() if rows}
  every = sorted(set(run["models"]) | set(models))
  wmax = max((k[0] for k in every), default=None)
  if not models or not any(k[0] == wmax for k in models):
    return _claim("hallucination_persists", claim, q, math.nan, None, None, "above",
                  model=",".join(_model_key(k) for k in every if k[0] == wmax) or None, ok=False,
                  why_not=NO_PROBES)
  keys = sorted(k for k in models if k[0] == wmax)
  n1 = _num_probes(run)
  last = [models[k][-1] for k in keys]
  rates = [r.get("hallucination", {}).get("fresh", {}).get("confident") for r in last]
  bayes = last[0].get("bayes_hallucination", {}).get("confident")
  model = ",".join(_model_key(k) for k in keys)
  if not n1 or any(r is None for r in rates):
    return _claim("hallucination_persists", claim, q, _num(bayes), None, None, "above",
                  model=model, ok=False, why_not="no fresh-entity probes (or probe.num_fresh)")
  k = int(sum(round(r * n1) for r in rates))
  n = n1 * len(rates)
  return _claim("hallucination_persists", claim, q, _num(bayes), k / n, wilson_interval(k, n),
                "above", model=model, formula="Bayes predictor's confident rate (H_a)",
                note=f"{k} of {n} fresh probes answered confidently at step {last[0]['step']}")


def claim_hallucination_floor(run: dict, key) -> dict:
  """Kalai & Vempala: a calibrated model hallucinates at least about the monofact rate.
  Measured: confident-answer rate on seen entities' never-revealed facts (fresh entities if
  there are none) at the last eval, Wilson interval (n = num_fresh); bound: the singleton
  fraction of the revealed facts at that eval; kind at_least."""
  q = "confident-answer rate on unrevealed facts at the last eval"
  claim = "Hallucination at least the singleton (monofact) rate"
  model = _model_key(key)
  rows = run["probes"].get(key, [])
  if not rows:
    return _claim("hallucination_floor", claim, q, math.nan, None, None, "at_least", model=model,
                  ok=False, why_not=NO_PROBES)
  last = rows[-1]
  h = last.get("hallucination", {})
  kind = "unrevealed" if "unrevealed" in h else "fresh"
  rate = h.get(kind, {}).get("confident")
  floor = last.get("facts", {}).get("singleton_fraction")
  n = _num_probes(run)
  formula = "singleton fraction of revealed facts (Good-Turing; tends to alpha)"
  if rate is None or floor is None or not n:
    return _claim("hallucination_floor", claim, q, _num(floor), None, None, "at_least", model=model,
                  formula=formula, ok=False,
                  why_not="no hallucination probes or no facts figures in probes.jsonl")
  k = int(round(rate * n))
  return _claim("hallucination_floor", claim, q, floor, k / n, wilson_interval(k, n), "at_least",
                model=model, formula=formula,
                note=f"{kind} probes: {k} of {n} confident at step {last['step']}")


# --------------------------------------------------------------- 11: fine-tuning


def claims_finetune(run: dict, key) -> list[dict]:
  """(a) acquisition: Spearman(delivery bin, injected accuracy) after fine-tuning, binomial
  bootstrap, > 0; (b) forgetting: mean over pretraining bins (probes before and after) of
  accuracy after - before, binomial bootstrap of both, < 0; (c) the confident rate on fresh
  entities after - before, Wald two-proportion interval (n = num_fresh each), > 0."""
  model = _model_key(key)
  rows = run["probes"].get(key, [])
  qa = "Spearman(deliveries bin, injected-fact accuracy) at the last eval"
  qb = "mean over pretraining bins of accuracy after - before fine-tuning"
  qc = "confident rate on fresh entities after - before fine-tuning"
  ca, cb, cc = ("Fine-tuning: acquisition grows with deliveries", "Fine-tuning: forgetting",
                "Fine-tuning: hallucination on unseen entities rises")
  if len(rows) < 2:
    why = NO_PROBES if not rows else "one probe row: no before/after"
    return [_claim("finetune_acquisition", ca, qa, 0.0, None, None, "above", model=model, ok=False,
                   why_not=why),
            _claim("finetune_forgetting", cb, qb, 0.0, None, None, "below", model=model, ok=False,
                   why_not=why),
            _claim("finetune_hallucination", cc, qc, 0.0, None, None, "above", model=model,
                   ok=False, why_not=why)]
  before, after = rows[0], rows[-1]
  out = []
  inj = after.get("injected", {})
  labels = sorted((l for l in inj if inj[l].get("n", 0) > 0), key=bin_start)
  start = np.array([bin_start(l) for l in labels], float)
  n = np.array([inj[l]["n"] for l in labels], np.int64)
  acc = np.array([inj[l]["accuracy"] for l in labels], float)
  out.append(_rank_claim("finetune_acquisition", ca, qa, start, n, acc, model,
                         f"step {after['step']}; delivery bins {', '.join(labels)}"))
  kb, ka = before.get("knowledge", {}), after.get("knowledge", {})
  shared = sorted((l for l in set(kb) & set(ka) if kb[l].get("n", 0) > 0 and ka[l].get("n", 0) > 0),
                  key=bin_start)
  if not shared:
    out.append(_claim("finetune_forgetting", cb, qb, 0.0, None, None, "below", model=model,
                      ok=False, why_not="no pretraining bin probed both before and after"))
  else:
    nb = np.array([kb[l]["n"] for l in shared], np.int64)
    na = np.array([ka[l]["n"] for l in shared], np.int64)
    pb = np.array([kb[l]["accuracy"] for l in shared], float)
    pa = np.array([ka[l]["accuracy"] for l in shared], float)
    rng = np.random.default_rng(SEED)
    db = rng.binomial(nb[None], np.clip(pb, 0, 1)[None], size=(NUM_BOOT, len(shared))) / nb
    da = rng.binomial(na[None], np.clip(pa, 0, 1)[None], size=(NUM_BOOT, len(shared))) / na
    out.append(_claim("finetune_forgetting", cb, qb, 0.0, float(np.mean(pa - pb)),
                      _percentile_ci((da - db).mean(-1)), "below", model=model,
                      note=f"steps {before['step']} -> {after['step']}; bins {', '.join(shared)}"))
  fresh = lambda r: r.get("hallucination", {}).get("fresh", {}).get("confident")
  n1 = _num_probes(run)
  if fresh(before) is None or fresh(after) is None or not n1:
    out.append(_claim("finetune_hallucination", cc, qc, 0.0, None, None, "above", model=model,
                      ok=False, why_not="no fresh-entity probes before and after"))
  else:
    p0, p1 = round(fresh(before) * n1) / n1, round(fresh(after) * n1) / n1
    se = math.sqrt(p0 * (1 - p0) / n1 + p1 * (1 - p1) / n1)
    d = p1 - p0
    ci = (d - Z95 * se, d + Z95 * se) if se > 0 else (d, d)
    out.append(_claim("finetune_hallucination", cc, qc, 0.0, d, ci, "above", model=model,
                      note=f"{_g(p0)} -> {_g(p1)} (n = {n1} each)"))
  return out


# ---------------------------------------------------------------------- the list


def run_claims(run: dict, summary: dict) -> list[dict]:
  """Every claim of a run (report.load_run's dict), in a fixed order, per model where the
  claim is per width. Measured from the run's files; `summary` (report.summarize's) only
  says whether it is a fine-tuning run (its `finetune`, or config.init_from)."""
  keys = list(run["models"])
  out = [claim_heaps(run), claim_zipf(run)]
  out += [claim_syntax_first(run, k, run["models"][k]) for k in keys]
  probe_keys = keys or list(run["probes"])
  out += [claim_frequency_order(run, k) for k in probe_keys]
  out.append(claim_wider_rarer(run))
  out += [claim_data_exponent_model(run, k, run["models"][k]) for k in keys]
  out.append(claim_data_exponent_bayes(run))
  out.append(claim_size_exponent(run))
  out.append(claim_hallucination_persists(run))
  out += [claim_hallucination_floor(run, k) for k in probe_keys]
  if _is_finetune(run) or (summary or {}).get("finetune"):
    for k in probe_keys:
      out += claims_finetune(run, k)
  return out


def verdict_counts(claims: list[dict]) -> dict[str, int]:
  return {v: sum(c["verdict"] == v for c in claims)
          for v in ("consistent", "inconsistent", "inconclusive")}


def _cell(text) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(claims: list[dict], extra: tuple[str, ...] = ()) -> list[str]:
  """Markdown lines of a claims table; `extra`: leading columns taken from each row."""
  head = list(extra) + ["claim", "model", "predicted", "measured [95% CI]", "verdict",
                        "quantity; reason"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for c in claims:
    sign = {"point": "", "above": "> ", "below": "< ", "at_least": ">= "}[c["kind"]]
    pred = f"{sign}{_g(c['predicted'])}" + (f" ({c['formula']})" if c.get("formula") else "")
    ci = c["ci"]
    meas = _g(c["measured"]) + (f" [{_g(ci[0])}, {_g(ci[1])}]" if ci and None not in ci else "")
    cells = [c.get(e, "") for e in extra] + [
        c["claim"], c.get("model", ""), pred, meas, f"**{c['verdict']}**",
        f"{c['quantity']}; {c['reason']}"]
    lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
  return lines
