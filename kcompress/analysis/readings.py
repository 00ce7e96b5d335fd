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
  exps = ", ".join(f"width {m['width']}: {m['data_fit']['a']:.2f} "
                   f"[{m['data_fit']['a_ci'][0]:.2f}, {m['data_fit']['a_ci'][1]:.2f}]"
                   for m in models.values() if m["data_fit"])
  lines["scaling"] = (f"Fitted data exponents (loss vs tokens, 95% CI): {exps}; predicted for the "
                      f"knowledge part: 1 - alpha = {summary['predicted_data_exponent']:.2f}. "
                      + (f"Size exponent {summary['size_fit']['a']:.2f} "
                         f"[{summary['size_fit']['a_ci'][0]:.2f}, "
                         f"{summary['size_fit']['a_ci'][1]:.2f}]" if summary["size_fit"] else
                         "Too few widths for a size fit.")
                      + f" (predicted, in stored capacity: 1/alpha - 1 = "
                      f"{summary['predicted_size_exponent_in_capacity']:.2f}).")
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
                 f"rate) {m['fresh_confident_before']} -> "
                 f"{m['fresh_confident_after']}")
    lines["finetune"] = (f"Fine-tuned from {ft['init_from']} with replay fraction "
                         f"{rounded(ft['replay_fraction'])}: " + "; ".join(per) + ".")
  return lines


def _f(x, spec: str = ".3f") -> str:
  return "n/a" if x is None else format(x, spec)


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
