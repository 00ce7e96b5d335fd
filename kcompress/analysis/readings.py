"""The report's text readings, generated from `summary.summarize`'s numbers (bits, tokens)."""

from __future__ import annotations

from kcompress.analysis.summary import REFERENCE_BITS_PER_PARAM


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
  half = ", ".join(f"width {m['width']}: {m['frequency_at_50pct_accuracy']}"
                   for m in models.values())
  lines["knowledge"] = (f"Occurrences needed for 50% top-1 accuracy on a revealed fact at the last "
                        f"eval: {half} (None: no bin reached 50%).")
  conf = ", ".join(f"width {m['width']}: {m['fresh_confident_rate']}" for m in models.values())
  floor = summary.get("hallucination_floor")
  lines["hallucination"] = (
      f"Confident-answer rate on never-seen entities at the last eval: {conf}. "
      + (f"Hallucination floor: {floor['singleton_fraction']:.3f} of the "
         f"{floor['revealed_facts']:,} revealed facts were seen exactly once (Good-Turing; "
         f"tends to alpha = {floor['alpha']} as the stream grows); the Good-Turing mass of "
         f"never-seen facts is {floor['missing_mass']:.4f}." if floor else ""))
  caps = [(m["width"], m["knowledge_capacity"]) for m in models.values() if m["knowledge_capacity"]]
  lines["capacity"] = (
      "Knowledge stored at the last eval (sum over revealed facts of max(0, prior bits - model "
      "bits of the true value)): " + "; ".join(
          f"width {w}: {c['stored_bits']:,.0f} bits of {c['fact_entropy_bits']:,.0f} "
          f"({c['bits_per_param']:.4f} bits/param)" for w, c in caps)
      + f". Reference: about {REFERENCE_BITS_PER_PARAM:g} bits/param for facts seen ~1000 times."
      if caps else "No capacity figures (no knowledge probes).")
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
      per.append(f"width {m['width']}: 50% acquisition at {m['repetitions_for_50pct']} "
                 f"deliveries; " + (f"largest accuracy drop {worst[1]:+.2f} in the {worst[0]} "
                                   f"bin; " if worst else "")
                 + f"confident answers on unseen entities {m['fresh_confident_before']} -> "
                 f"{m['fresh_confident_after']}")
    lines["finetune"] = (f"Fine-tuned from {ft['init_from']} with replay fraction "
                         f"{ft['replay_fraction']}: " + "; ".join(per) + ".")
  return lines
