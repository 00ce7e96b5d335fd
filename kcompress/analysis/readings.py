"""The report's text readings, generated from `summary.summarize`'s numbers (bits, tokens)."""

from __future__ import annotations

from kcompress.analysis.summary import REFERENCE_BITS_PER_PARAM


def rounded(x, decimals: int = 2) -> str:
  """A headline number at its precision: None as "None", a whole number without decimals
  (an occurrence count 256.0 -> "256"), anything else to `decimals` places (a rate of
  31/128 probes -> "0.24"; 2 places resolve the ~1/100 steps of a few hundred probes)."""
  if x is None:
    return "None"
  return f"{x:,.0f}" if float(x).is_integer() else f"{x:.{decimals}f}"


def by_section(summary: dict) -> dict[str, str]:
  """{section: text} of the report, from the summary's numbers alone: code, roles, knowledge,
  hallucination, capacity, scaling, ksf, two_part, and finetune for fine-tuning runs."""
  models = summary["models"]
  lines = {}
  ratio = ", ".join(f"width {m['width']}: {m['redundancy_ratio']:.3f}" for m in models.values()
                    if m["redundancy_ratio"])
  comp = summary["compressors_bits"]
  best = min(comp.items(), key=lambda kv: kv[1]) if comp else None
  lines["code"] = (f"Prequential code / Bayes code at the end of the stream: {ratio}. "
                   + (f"The best classical compressor ({best[0]}) needs "
                      f"{best[1] / summary['tokens']:.3f} bits/token." if best else ""))
  syn = [m["syntax_within_5pct_step"] for m in models.values()]
  val = [m["value_within_5pct_step"] for m in models.values()]
  lines["roles"] = (f"Syntax bits come within 5% of the Bayes floor at steps {syn}; value bits "
                    f"at steps {val} (None: not within the run). Final value bits/token: "
                    + ", ".join(f"width {m['width']}: {m['final_bits_per_token']['value']:.3f}"
                                f" (Bayes {m['final_bayes_bits_per_token']['value']:.3f})"
                                for m in models.values()) + ".")
  half = ", ".join(f"width {m['width']}: {rounded(m['frequency_at_50pct_accuracy'])}"
                   for m in models.values())
  lines["knowledge"] = (f"Occurrences needed for 50% top-1 accuracy on a revealed fact at the last "
                        f"eval: {half} (None: no bin reached 50%).")
  lines["hallucination"] = hallucination_reading(summary)
  lines["capacity"] = capacity_reading(summary)
  lines["scaling"] = data_law_reading(summary)
  o = summary.get("oracle")
  lines["ksf"] = (f"Oracle: syntax alone (m = 0) codes the stream in "
                  f"{o['data_bits_m0']:,.0f} bits; storing every entity "
                  f"({o['complexity_bits_all']:,.0f} bits of knowledge) "
                  f"leaves {o['data_bits_all']:,.0f}; the best two-part total "
                  f"{o['best_total_bits']:,.0f} bits stores the {o['best_m']} most frequent "
                  f"entities." if o else "No oracle_ksf.json in this workdir.")
  t = summary.get("two_part")
  if t:
    fin = "; ".join(
        f"width {k.split('/')[0]}: best quantised p={m['best_quantised']['precision']} "
        f"{m['best_quantised']['complexity_bits']:,.0f} + {m['best_quantised']['data_bits']:,.0f} "
        f"= {m['best_quantised']['total_bits']:,.0f} bits, prequential complexity "
        + (f"{m['prequential_complexity_bits']:,.0f}"
           if m["prequential_complexity_bits"] is not None else "n/a")
        + " bits" for k, m in t["final"].items())
    b = t["best"]
    lines["two_part"] = (
        f"Two-part codes of the {t['data_tokens']:,} training tokens at the last eval: {fin}. "
        f"The best point of the whole run is width {b['width']} at step {b['step']} "
        f"({b['kind']}): {b['complexity_bits']:,.0f} + {b['data_bits']:,.0f} = "
        f"{b['total_bits']:,.0f} bits. The empirical structure function has "
        f"{len(t['hull'])} hull vertices.")
  else:
    lines["two_part"] = "No ksf.jsonl in this workdir."
  ft = summary.get("finetune")
  if ft:
    per = []
    for m in ft["models"].values():
      worst = min(m["forgetting"].items(), key=lambda kv: kv[1]) if m["forgetting"] else None
      per.append(f"width {m['width']}: 50% acquisition at {rounded(m['repetitions_for_50pct'])} "
                 f"deliveries; " + (f"largest accuracy drop {worst[1]:+.2f} in the {worst[0]} "
                                   f"bin; " if worst else "")
                 + f"overconfidence on never-seen entities (Zucchet et al.: confident-answer "
                 f"rate) {rounded(m['fresh_confident_before'])} -> "
                 f"{rounded(m['fresh_confident_after'])}")
    lines["finetune"] = (f"Fine-tuned from {ft['init_from']} with replay fraction "
                         f"{rounded(ft['replay_fraction'])}: " + "; ".join(per) + ".")
  return lines


def _f(x, spec: str = ".3f") -> str:
  return "n/a" if x is None else format(x, spec)


def data_law_reading(summary: dict) -> str:
  """The data and size laws as the claims table measures them (not the total loss, which
  mixes the fast syntax phase in): per width the knowledge excess's floor-0 exponent with
  its interval, the threshold learner's on the same tokens and the local slope at the end;
  the Bayes code's exponent from independent streams; the size exponent."""
  rows = summary.get("claims") or []
  pick = lambda cid: [c for c in rows if c["id"] == cid]
  ci = lambda c: (f"{c['measured']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}]"
                  if c.get("measured") is not None and c.get("ci") and None not in c["ci"]
                  else "n/a")
  parts = []
  for c in pick("data_exponent_model"):
    if c.get("measured") is None:
      parts.append(f"width {c['model']}: {c['verdict']} ({c['reason'].split(';')[0]})")
      continue
    ref = (f"; learner (c = {c['reference_c']}) {c['reference_exponent']:.2f}"
           if c.get("reference_exponent") is not None else "")
    parts.append(f"width {c['model']}: {ci(c)}{ref}; local slope at the end "
                 f"{c['local_exponent_end']:.2f}" if c.get("local_exponent_end") is not None
                 else f"width {c['model']}: {ci(c)}{ref}")
  bayes = pick("data_exponent_bayes")
  size = pick("size_exponent")
  pred = summary["predicted_data_exponent"]
  return (f"Data law of the knowledge excess over the Bayes code (floor 0, after syntax and "
          f"the onset; claims table): {'; '.join(parts) or 'no models'}; predicted 1 - alpha "
          f"= {pred:.2f}. The Bayes code's own knowledge bits (independent streams): "
          f"{ci(bayes[0]) if bayes else 'n/a'}. Size exponent of the value excess: "
          f"{ci(size[0]) if size else 'n/a'} ({size[0]['verdict'] if size else 'n/a'}; "
          f"predicted {summary['predicted_size_exponent_in_capacity']:.2f}). The loss-vs-tokens "
          f"fits of scaling.png are of the total loss, a mix of the syntax and knowledge "
          f"phases, and are not the law.")


def hallucination_reading(summary: dict) -> str:
  """The sampled error against the missing mass (Kalai et al.), then overconfidence on
  never-seen entities (Zucchet et al.), at the last eval."""
  h = summary.get("hallucination")
  if not h:
    return "No hallucination figures (no probes)."
  per = "; ".join(
      f"width {m['width']}: sampled error {_f(m['error'])} (greedy {_f(m['greedy_error'])}), "
      f"bound missing mass - delta = {_f(h['missing_mass'])} - {_f(m['delta'])}"
      for m in h["models"].values())
  bayes = next(iter(h["models"].values()), {}).get("bayes_error")
  over = ", ".join(f"width {m['width']}: {_f(m['fresh_confident_rate'])} (KL to H_a "
                   f"{_f(m['fresh_kl_bits'], '.2f')} bits)" for m in h["models"].values())
  return (f"Sampled answers on the stream's next prompts at the last eval: {per}. The Bayes "
          f"predictor's sampled error there is {_f(bayes)}; the missing mass of facts is "
          f"{_f(h['missing_mass'], '.4f')} by Good-Turing (N1/n over fact occurrences; exact "
          f"Pitman-Yor: {_f(h['missing_mass_py'], '.4f')}). Kalai et al. bound the sampled "
          f"error below by missing mass - delta; a model under it is miscalibrated by more "
          f"than delta measures, or the small terms matter. Overconfidence on never-seen "
          f"entities (Zucchet et al.: confident-answer rate; the Bayes predictor's is 0): "
          f"{over}.")


def capacity_reading(summary: dict) -> str:
  """Stored knowledge as an aggregate lower bound, per width and exposure level."""
  caps = [(m["width"], m["knowledge_capacity"]) for m in summary["models"].values()
          if m["knowledge_capacity"]]
  if not caps:
    return "No capacity figures (no knowledge probes)."

  def level(c, key):
    at = (c.get("by_exposure") or {}).get(key)
    if not at:
      return f">= {key} exposures: not probed"
    bound = "" if at["capacity_bound"] else ", not capacity-bound"
    return f">= {key} exposures: {at['bits_per_param']:.4f} bits/param{bound}"
  per = "; ".join(
      f"width {w}: {c['total_stored_bits']:,.0f} of {c['offered_bits']:,.0f} bits offered "
      f"({c['stored_bits']:,.0f} fact + {c['name_stored_bits']:,.0f} name bits; "
      f"{c['bits_per_param']:.4f} bits/param; {level(c, '100')}; {level(c, '1000')})"
      for w, c in caps)
  return (f"Knowledge stored at the last eval, a lower bound (per occurrence bin, the sum over "
          f"its facts and names of prior bits - model bits, clipped at 0 only in aggregate): "
          f"{per}. Reference: about 1 bit/param at ~100 exposures, "
          f"{REFERENCE_BITS_PER_PARAM:g} at ~1000 (Allen-Zhu & Li).")


def design_reading(summary: dict) -> str:
  """A Gekhman design: held-out accuracy by Unknown share at early stop and convergence."""
  us = summary.get("unknown_share", {})
  arms = sorted((a for a in us if a != "control"), key=float) + (
      ["control"] if "control" in us else [])
  per = []
  for model in summary.get("models", []):
    cells = ", ".join(f"{a}: {_f(us[a]['early_stop'].get(model), '.2f')} / "
                      f"{_f(us[a]['convergence'].get(model), '.2f')} (fit "
                      f"{_f(us[a]['fit'].get(model), '.2f')})" for a in arms)
    per.append(f"{model}: {cells}")
  n = next(iter(us.values()), {}).get("n")
  return (f"Held-out accuracy ({n} known facts) at early stop / convergence by share of "
          f"Unknown examples (fit: accuracy on the set's own examples at convergence): "
          + "; ".join(per) + ".")
