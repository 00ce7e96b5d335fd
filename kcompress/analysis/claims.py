"""The paper's claims (SPEC sections 6-7), each measured with a 95% interval and judged by
one rule fixed in code before looking at any run (numpy/scipy only).

`run_claims(run, summary)` returns one row per claim (per model where the claim is per
width): {id, claim, quantity, predicted, measured, ci, kind, verdict, reason} plus
`model` ("64/0") and `formula` where they apply. Bits are bits; "tokens" are tokens
seen by the model; every interval is a 95% interval. A claim whose inputs are missing
is still listed, `inconclusive`, saying what is missing.

The verdict rule is `claims_rule.verdict`. The claims and how each is measured (the
builders' docstrings give the details; claims_stream: 1-2, claims_curves: 3 and the shared
loss-curve inputs, claims_exponents: 6-7, claims_size: 8, claims_probes: 4-5, 9-13):
 1 heaps_slope       log-log slope of K_n over the last HEAPS_DECADES decades of n; CI from
                     the replicate streams of stream_stats.json; vs the same slope of E[K_n].
 2 zipf_slope        log-log slope of ranked entity counts over ranks with count >= 5; CI
                     from replicates; vs the same slope of the expected rank-frequency curve.
 3 syntax_first      relative excess of value bits over their Bayes floor when syntax first
                     comes within 10% of its floor; bootstrap over the steps there; > 0.1.
 4 frequency_order   Spearman(occurrence bin, accuracy) at the last eval; binomial bootstrap; > 0.
 5 wider_rarer       slope of mean bin accuracy vs log2(width) at the last eval; binomial
                     bootstrap; > 0.
 6 data_exponent_model  exponent a of A t^-a (floor 0) of the knowledge excess per knowledge
                     token from a quarter decade after the local slope's peak (after syntax
                     is learned), block bootstrap; vs 1 - alpha, with the count-threshold
                     learner's exponent on the same tokens beside it (reference_exponent);
   data_exponent_vs_reference  a(model) - a(learner at the model's c), paired; vs 0.
 7 data_exponent_bayes  the Bayes code's name + value bits per sentence from independent
                     streams of the run's spec (bayes_laws.json), floor 0; vs 1 - alpha.
 8 size_*            the size law decomposed (claims_size): stored entities vs parameters,
                     value excess vs stored entities (vs 1/alpha - 1, beside the top-m
                     oracle), value excess vs parameters (the size exponent).
 9 hallucination_persists  Zucchet et al.'s overconfidence: confident-answer rate of the
                     widest model on never-seen entities, Wilson interval; above the Bayes
                     predictor's rate (H_a). No singleton floor applies to it.
10 hallucination_floor  sampled error rate on the stream's next prompts, Wilson interval; at
                     least the missing mass of facts (N1/n over fact occurrences) minus the
                     measured miscalibration delta (Kalai & Vempala; Kalai et al.).
11 finetune_*        fine-tuning runs only: acquisition vs deliveries (> 0), forgetting (< 0),
                     change of the confident rate on never-seen entities (> 0; Zucchet's
                     quantity, not Gekhman's).
12 capacity_100, capacity_1000  stored fact + name bits (clipped at 0 only in aggregate per
                     bin) per parameter over entities seen >= 100 / >= 1000 times; vs ~1 / ~2
                     (Allen-Zhu & Li), judged only where the bits offered exceed 2 x params.
13 gekhman_*         a Gekhman design's report only (`claims_probes.claims_gekhman`): slope of
                     held-out accuracy vs Unknown share at convergence (< 0); control - 50%
                     set (> 0).

Everything is deterministic (fixed seeds), so summary.json is reproduced byte for byte.
"""

from __future__ import annotations

from kcompress.analysis import (claims_curves, claims_exponents, claims_probes, claims_size,
                                claims_stream)
from kcompress.analysis.claims_rule import fmt


def run_claims(run: dict, summary: dict) -> list[dict]:
  """Every claim of a run (load.load_run's dict), in a fixed order, per model where the
  claim is per width. Measured from the run's files; `summary` (summary.summarize's) only
  says whether it is a fine-tuning run (its `finetune`, or config.init_from)."""
  keys = list(run["models"])
  out = [claims_stream.claim_heaps(run), claims_stream.claim_zipf(run)]
  out += [claims_curves.claim_syntax_first(run, k, run["models"][k]) for k in keys]
  probe_keys = keys or list(run["probes"])
  out += [claims_probes.claim_frequency_order(run, k) for k in probe_keys]
  out.append(claims_probes.claim_wider_rarer(run))
  for k in keys:
    out += claims_exponents.claims_data_exponent_model(run, k, run["models"][k])
  out.append(claims_exponents.claim_data_exponent_bayes(run))
  out += claims_size.claims_size(run)
  out.append(claims_probes.claim_hallucination_persists(run))
  out += [claims_probes.claim_hallucination_floor(run, k) for k in probe_keys]
  for k in probe_keys:
    out += claims_probes.claims_capacity(run, k)
  if claims_curves.is_finetune(run) or (summary or {}).get("finetune"):
    for k in probe_keys:
      out += claims_probes.claims_finetune(run, k)
  return out


def verdict_counts(claims: list[dict]) -> dict[str, int]:
  """{consistent, inconsistent, inconclusive}: how many rows have each verdict."""
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
    pred = f"{sign}{fmt(c['predicted'])}" + (f" ({c['formula']})" if c.get("formula") else "")
    ci = c["ci"]
    meas = fmt(c["measured"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci and None not in ci else "")
    cells = [c.get(e, "") for e in extra] + [
        c["claim"], c.get("model", ""), pred, meas, f"**{c['verdict']}**",
        f"{c['quantity']}; {c['reason']}"]
    lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
  return lines
