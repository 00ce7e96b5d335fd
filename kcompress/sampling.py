"""What a trained model says: sentences sampled from it, each fact marked against the world
(`python -m kcompress.sample`; the report's sample per width, WORKDIR/samples.jsonl).

A model writes rows token by token from BOS (temperature 1, a fixed PRNG key), as in
training; each row is cut into sentences at END (an unfinished tail is dropped). A
sentence is parsed (`data.text.parse_sentence`) and must follow the grammar (its template's
fillers, the value at its slot, of its attribute); its fact (name, attribute, value) is
then marked against the world and the data the model read (`seen`, the counts of the
sentences trained on):

  true       the value of a seen entity's attribute
  false      another value for a seen entity (a hallucination about a known entity)
  invented   a name no entity read so far has (a fact about an invented entity)
  malformed  not a sentence of the grammar

(true / false add "(never stated)" when that fact was never in the data read), beside
the Bayes predictor's code length of the same sentence read next (bits; inf where it gives
it probability 0: another value for a stated fact; None for a malformed sentence).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from kcompress import model as model_lib
from kcompress.data.bayes import bayes_code_bits
from kcompress.data.spec import BOS, END, DataSpec
from kcompress.data.stream import Sentences, StreamState
from kcompress.data.text import decode_text, parse_sentence
from kcompress.data.world import fact_values, name_codes

MARKS = ("true", "false", "invented", "malformed")
_name_codes = jax.jit(name_codes, static_argnums=0)
_fact_values = jax.jit(fact_values, static_argnums=0)
_bayes_bits = jax.jit(bayes_code_bits, static_argnums=0)


@functools.partial(jax.jit, static_argnums=(1, 4))
def generate_rows(params, cfg: model_lib.ModelConfig, width, key: jax.Array,
                  num_rows: int) -> jax.Array:
  """Rows [num_rows, C] of tokens sampled from one model, each starting after BOS."""
  C = cfg.context_length

  def body(p, tokens):
    logits = model_lib.apply(params, cfg, tokens[:, :C], width)[:, p]
    nxt = jax.random.categorical(jax.random.fold_in(key, p), logits, -1)
    return tokens.at[:, p + 1].set(nxt.astype(jnp.int32))

  start = jnp.zeros((num_rows, C + 1), jnp.int32).at[:, 0].set(BOS)
  return jax.lax.fori_loop(0, C, body, start)[:, 1:]


def split_sentences(rows_RxC) -> list[np.ndarray]:
  """The token runs of each row ending at END (a row's unfinished tail dropped)."""
  out = []
  for row in np.asarray(rows_RxC):
    ends = np.flatnonzero(row == END)
    starts = np.concatenate([[0], ends[:-1] + 1])
    out += [row[a:b + 1] for a, b in zip(starts, ends)]
  return out


def _grammatical(spec: DataSpec, world, parsed: dict) -> bool:
  t = parsed["template"]
  return (t is not None and parsed["attribute"] is not None
          and len(parsed["synonyms"]) == int(np.asarray(world.num_fillers_T)[t])
          and parsed["value_pos"] == int(np.asarray(world.value_pos_T)[t])
          and parsed["attribute"] == int(np.asarray(world.attribute_T)[t]))


def known_names(spec: DataSpec, world, seen: StreamState) -> dict[int, int]:
  """Name code -> entity, for every entity the data read holds."""
  entities = np.flatnonzero(np.asarray(seen.entity_counts_E) > 0)
  with jax.enable_x64(True):
    codes = np.asarray(_name_codes(spec, world, jnp.asarray(entities, jnp.int32)))
  return dict(zip(codes.tolist(), entities.tolist()))


def _truth(spec: DataSpec, world, entity: int, attribute: int) -> int:
  """The world's value of (entity, attribute)."""
  with jax.enable_x64(True):
    return int(np.asarray(_fact_values(spec, world, jnp.asarray([entity], jnp.int32),
                                       jnp.asarray([attribute], jnp.int32)))[0])


def bayes_sentence_bits(spec: DataSpec, world, seen: StreamState, parsed: dict,
                        entity: int) -> float:
  """-log2 P_Bayes(this sentence next | the data read), bits: the Bayes code's parts with
  the counts of `seen` (an entity absent from them is new); inf for another value of a
  stated fact (the Bayes predictive puts probability 1 on the stated one)."""
  counts = np.asarray(seen.entity_counts_E)
  n, k = int(counts.sum()), int((counts > 0).sum())
  n_e = int(counts[entity]) if entity < len(counts) else 0
  t, a, syn = parsed["template"], parsed["attribute"], parsed["synonyms"]
  F = spec.max_fillers
  syn_F = np.full(F, -1, np.int64)
  syn_F[:len(syn)] = syn
  used = syn_F >= 0
  c_syn = np.where(used, np.asarray(seen.synonym_counts_TxFxS)[t, np.arange(F),
                                                                np.maximum(syn_F, 0)], 0)
  stated = n_e > 0 and int(np.asarray(seen.fact_counts_ExA)[entity, a]) > 0
  with jax.enable_x64(True):
    one = lambda x, dt=jnp.int32: jnp.asarray([x], dt)
    s = Sentences(
        index_N=one(n), entity_N=one(entity), is_new_N=one(n_e == 0, bool),
        entities_before_N=one(k), occurrences_before_N=one(n_e), template_N=one(t),
        template_count_before_N=one(int(np.asarray(seen.template_counts_T)[t])),
        synonym_NxF=jnp.asarray(syn_F[None], jnp.int32),
        synonym_count_before_NxF=jnp.asarray(c_syn[None], jnp.int32),
        attribute_N=one(a), value_N=one(parsed["value"]), first_reveal_N=one(not stated, bool),
        length_N=one(spec.name_length + len(syn) + 2))
    bits = float(np.asarray(_bayes_bits(spec, world, s).total_N)[0])
  return math.inf if stated and parsed["value"] != _truth(spec, world, entity, a) else bits


def mark_sentence(spec: DataSpec, world, seen: StreamState, names: dict[int, int],
                  tokens) -> dict:
  """{text, mark, stated, entity, attribute, value, truth, bayes_bits} of one sentence."""
  text = decode_text(spec, tokens).replace("\n", " ")
  try:
    parsed = parse_sentence(spec, tokens)
  except ValueError:
    parsed = None
  if parsed is None or not _grammatical(spec, world, parsed):
    return {"text": text, "mark": "malformed", "stated": None, "entity": None,
            "attribute": None, "value": None, "truth": None, "bayes_bits": None}
  entity = names.get(parsed["name_code"])
  invented = entity is None
  if invented:   # an id beyond every counted entity: the Bayes code prices it as new
    entity = len(np.asarray(seen.entity_counts_E))
  a = parsed["attribute"]
  truth = _truth(spec, world, entity, a)
  stated = (not invented) and int(np.asarray(seen.fact_counts_ExA)[entity, a]) > 0
  mark = "invented" if invented else ("true" if parsed["value"] == truth else "false")
  return {"text": text, "mark": mark, "stated": None if invented else bool(stated),
          "entity": None if invented else int(entity), "attribute": int(a),
          "value": int(parsed["value"]), "truth": None if invented else truth,
          "bayes_bits": bayes_sentence_bits(spec, world, seen, parsed, entity)}


def model_sentences(setup, states, i: int, spec: DataSpec, world, seen: StreamState, num: int,
                    seed: int) -> list[dict]:
  """`num` marked sentences (fewer if the rows end early) of model i of the sweep: rows are
  sampled until `num` sentences have ended (at most 16 batches of rows)."""
  cfg = setup.model_config(i)
  b, j = next((b, idx.index(i)) for b, (_, idx) in enumerate(setup.layout.buckets) if i in idx)
  params = jax.tree.map(lambda x: x[j], states[b].params)
  width = states[b].width[j]
  names = known_names(spec, world, seen)
  rows = max(1, -(-num // max(1, spec.context_length // spec.max_sentence_length)))
  out = []
  for r in range(16):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), r)
    for tokens in split_sentences(jax.device_get(generate_rows(params, cfg, width, key, rows))):
      out.append(mark_sentence(spec, world, seen, names, tokens))
    if len(out) >= num:
      break
  return out[:num]


def describe(row: dict) -> str:
  """One printed line: the mark, the sentence, the Bayes predictor's bits."""
  mark = row["mark"] + (" (never stated)" if row["stated"] is False else "")
  bits = row["bayes_bits"]
  bayes = "" if bits is None else f"   [Bayes {bits:.1f} bits, p = {2.0 ** -bits:.2g}]"
  return f"{mark:>24}  {row['text']}{bayes}"
