"""The loss-curve inputs of the claims (knowledge excess over the Bayes code, in bits per
name/value token, log-binned in tokens seen) and claim 3, syntax before knowledge.
"""

from __future__ import annotations

import math

import numpy as np

from kcompress.analysis.claims_rule import (NUM_BOOT, SEED, as_float, claim_row, fmt, model_name,
                                            percentile_ci)

# Measurement choices (fixed before looking at any run).
FLOOR_TOL = 0.10        # "within 10% of the Bayes floor"
BINS_PER_DECADE = 20    # per-step curves are averaged in log-spaced bins of tokens seen
MIN_WINDOW_STEPS = 8    # steps at least in the window after syntax reaches its floor

KNOWLEDGE_ROLES = ("name", "value")


def is_finetune(run: dict) -> bool:
  """A fine-tuning run (config.init_from set)."""
  return bool(run["config"].get("init_from"))


def first_pass(run: dict, rows: list[dict]) -> tuple[list[dict], str]:
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
  bits = np.array([as_float(r.get(f"bits_{role}")) for r in rows])
  bayes = np.array([as_float(r.get(f"bayes_{role}")) for r in rows])
  w = np.array([as_float(r.get(f"tokens_{role}", default_weight)) for r in rows])
  ok = np.isfinite(bits) & np.isfinite(bayes) & np.isfinite(w) & (w > 0)
  return np.where(ok, bits, 0.0), np.where(ok, bayes, 0.0), np.where(ok, w, 0.0)


def step_series(rows: list[dict], config: dict) -> dict[str, np.ndarray]:
  """Per-step arrays [S] of one model: step, tokens, knowledge excess and Bayes knowledge bits
  per knowledge (name + value) token and the knowledge tokens (knowledge_weight), syntax
  and value bits with their Bayes floors, and the
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
          "excess": excess, "bayes_knowledge": bayes_k, "knowledge_weight": w,
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


def bin_mean(x, groups) -> np.ndarray:
  """Mean of the finite x in each group of steps (NaN where none)."""
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
  syn, syn_f = bin_mean(s["syntax"], groups), bin_mean(s["syntax_floor"], groups)
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
          "excess": bin_mean(s["excess"], groups),
          "bayes_knowledge": bin_mean(s["bayes_knowledge"], groups),
          "syntax_rel": syn_rel, "value_rel": val_rel,
          "syntax_bin": int(hit[0]) if len(hit) else None,
          "value_bin": int(val_hit[0]) if len(val_hit) else None}


def wrong_regime(run: dict) -> str:
  """'' or why the run's loss curves cannot test the pretraining claims."""
  if is_finetune(run):
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
  model = model_name(key)
  bad = wrong_regime(run)
  rows, why = first_pass(run, rows)
  if bad or why:
    return claim_row("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model,
                     ok=False, why_not=bad or why)
  kp = knowledge_phase(rows, run["config"])
  s, groups = kp["series"], kp["groups"]
  b = kp["syntax_bin"]
  if b is None:
    last = kp["syntax_rel"][-1] if len(kp["syntax_rel"]) else math.nan
    return claim_row("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model,
                     ok=False, why_not=f"syntax never came within 10% of its Bayes floor (last "
                                       f"bin +{fmt(100 * last)}%): run too short (regime wrong)")
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
  note = (f"syntax within 10% from step {step_syn} ({fmt(s['tokens'][groups[b][0]])} tokens); "
          f"value within 10% from step {step_val if step_val is not None else 'never'}; "
          f"window: steps {int(s['step'][idx[0]])}-{int(s['step'][idx[-1]])} ({len(idx)} steps)")
  if floor <= 0:
    return claim_row("syntax_first", claim, q, FLOOR_TOL, None, None, "above", model=model,
                     ok=False, why_not="Bayes value bits are 0 in the window: no relative excess",
                     note=note)
  measured = float(np.dot(w, v)) / floor - 1
  rng = np.random.default_rng(SEED)
  pick = rng.integers(0, len(idx), size=(NUM_BOOT, len(idx)))
  with np.errstate(invalid="ignore", divide="ignore"):
    draws = (w[pick] * v[pick]).sum(-1) / (w[pick] * f[pick]).sum(-1) - 1
  return claim_row("syntax_first", claim, q, FLOOR_TOL, measured, percentile_ci(draws), "above",
                   model=model, formula="value excess above the 10% tolerance", note=note)

