"""Gekhman et al. (2024)'s design, the data side: which facts a pretrained sweep knows
(SliCK), the fine-tuning sets of one size with a growing share of Unknown examples, the
control, the held-out set. No training here: `kcompress.design` runs the design, each
set (an "arm") as a fine-tuning run (`kcompress.finetune` with `config.finetune.arm`).

SliCK (Gekhman et al.'s Sampling-based Categorization of Knowledge), per model and fact:
P0 = share of X prompt variants (templates of the attribute, synonyms drawn from theta)
whose greedy answer is the fact's value; Ps = share of correct answers among `samples`
draws per variant at temperature SAMPLE_TEMPERATURE. HighlyKnown: P0 = 1; MaybeKnown:
0 < P0 < 1; WeaklyKnown: P0 = 0 < Ps; Unknown: P0 = Ps = 0.

The design (`design.json` in the design's workdir, written once): Known examples K_1..K_N
and held-out facts H_1..H_Nh are facts of the pretraining stream (the most-revealed
`candidates` facts, ranked by their worst category over the models, then mean P0, Ps),
the top N + Nh split at random: none is in both. Unknown examples U_1..U_N are facts of
N new entities (the top ids of the name space, never in the stream). Each example has one
sentence (a template of its attribute, synonyms drawn from theta), the same in every arm
and epoch. The set of Unknown share s is K_1..K_(N - round(s N)) + U_1..U_round(s N);
the control is the Known part of the s = 0.5 set (half the size).
"""

from __future__ import annotations

import json
import os

import numpy as np

from kcompress import probes as probes_lib
from kcompress.analysis.design_files import (  # noqa: F401 (the design's names, here too)
    CATEGORIES, CONTROL, DESIGN_FILE, arm_names)
from kcompress.data.inject import injected_entities
from kcompress.data.spec import DataSpec
from kcompress.errors import UserError

PARTS = ("known", "heldout", "unknown")


def is_design(config) -> bool:
  """A Gekhman design (its arms included): config.finetune.unknown_shares is not empty."""
  ft = config.get("finetune")
  return bool(ft is not None and ft.get("unknown_shares"))


def is_arm(config) -> bool:
  """One arm (fine-tuning set) of a design: config.finetune.arm is set."""
  ft = config.get("finetune")
  return bool(ft is not None and ft.get("arm"))


def check_design_config(config) -> None:
  """The design's sizes and shares, checked before anything is trained (UserError)."""
  ft = config.finetune
  shares = tuple(float(s) for s in ft.unknown_shares)
  if any(not 0.0 <= s <= 1.0 for s in shares) or 0.5 not in shares:
    raise UserError(f"config.finetune.unknown_shares={shares!r}: shares in [0, 1], 0.5 among "
                    f"them (the control is the 50% set's Known part)")
  for field in ("set_size", "heldout_size", "epochs", "variants", "samples"):
    if int(ft[field]) < 1:
      raise UserError(f"config.finetune.{field}={ft[field]!r}: must be >= 1")
  if int(ft.candidates) < int(ft.set_size) + int(ft.heldout_size):
    raise UserError(f"config.finetune.candidates={ft.candidates}: must be >= set_size + "
                    f"heldout_size = {int(ft.set_size) + int(ft.heldout_size)}")


def slick_categories(greedy_FxX, p_sample_FxX, samples: int, seed) -> np.ndarray:
  """SliCK category codes [F] (CATEGORIES) from each variant's greedy correctness and the
  probability of the true value at the sampling temperature (`samples` draws per variant,
  drawn with `seed`, anything np.random.default_rng takes)."""
  greedy = np.asarray(greedy_FxX, bool)
  p = np.clip(np.asarray(p_sample_FxX, np.float64), 0.0, 1.0)
  hits = np.random.default_rng(seed).binomial(samples, p)
  p0, ps = greedy.mean(-1), hits.sum(-1) / (samples * greedy.shape[-1])
  return np.where(p0 == 1, 0, np.where(p0 > 0, 1, np.where(ps > 0, 2, 3))).astype(np.int32)


def _draw_synonyms(spec: DataSpec, world, template_P, rng) -> np.ndarray:
  """Synonyms [P, F] of the given templates drawn from theta (-1 past each template's slots)."""
  theta = np.asarray(world.theta_TxFxS)[template_P]                  # [P, F, S]
  u = rng.random(theta.shape[:2])
  syn = (u[..., None] >= np.cumsum(theta, -1)[..., :-1]).sum(-1)
  used = np.arange(spec.max_fillers)[None, :] < np.asarray(world.num_fillers_T)[template_P][:, None]
  return np.where(used, syn, -1).astype(np.int32)


def prompt_variants(spec: DataSpec, world, attribute_F, variants: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(template [F * X], synonyms [F * X, F]) of X prompt variants per fact, fact-major:
  variant j uses the attribute's (j mod n_a)-th template, synonyms drawn from theta."""
  attr_T = np.asarray(world.attribute_T)
  templates = [np.flatnonzero(attr_T == a) for a in range(spec.num_attributes)]
  a = np.repeat(np.asarray(attribute_F, np.int64), variants)
  j = np.tile(np.arange(variants), len(attribute_F))
  t = np.array([templates[ai][ji % len(templates[ai])] for ai, ji in zip(a, j)], np.int64)
  return t, _draw_synonyms(spec, world, t, np.random.default_rng((seed, 1)))


def example_syntax(spec: DataSpec, world, attribute_X, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """One sentence syntax per example: a template of its attribute drawn from theta_T
  restricted to the attribute, synonyms drawn from theta."""
  rng = np.random.default_rng((seed, 2))
  attr_T, theta_T = np.asarray(world.attribute_T), np.asarray(world.theta_T)
  t = np.zeros(len(attribute_X), np.int64)
  for i, a in enumerate(np.asarray(attribute_X)):
    options = np.flatnonzero(attr_T == a)
    t[i] = rng.choice(options, p=theta_T[options] / theta_T[options].sum())
  return t, _draw_synonyms(spec, world, t, rng)


def rank_known(category_MxC, p0_MxC, ps_MxC) -> np.ndarray:
  """Candidate indices, best known first: by the worst category over the models, then the
  mean greedy and sampled correctness (ties: candidate order)."""
  worst = np.asarray(category_MxC).max(0)
  return np.lexsort((np.arange(worst.size), -np.asarray(ps_MxC).mean(0),
                     -np.asarray(p0_MxC).mean(0), worst))


def split_known(ranked_C, set_size: int, heldout_size: int, seed: int):
  """(known pool [N], held-out [Nh]): the best N + Nh candidates in a random split."""
  top = np.asarray(ranked_C)[:set_size + heldout_size]
  if len(top) < set_size + heldout_size:
    raise UserError(f"config.finetune.set_size + heldout_size = {set_size + heldout_size}: the "
                    f"pretraining stream revealed only {len(top)} candidate facts")
  top = np.random.default_rng((seed, 3)).permutation(top)
  return top[:set_size], top[set_size:]


def unknown_facts(spec: DataSpec, set_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(entities, attributes) of the N Unknown examples: one fact of each of N new entities
  (the top ids of the name space), the attribute uniform."""
  entity, _ = injected_entities(spec, (1,), set_size)
  return entity, np.random.default_rng((seed, 4)).integers(spec.num_attributes, size=set_size)


def arm_parts(design: dict, arm: str) -> tuple[int, int]:
  """(Known examples, Unknown examples) of an arm: K_1..K_k and U_1..U_u."""
  n = len(design["known"]["entity"])
  if arm == CONTROL:
    return n - int(round(0.5 * n)), 0
  u = int(round(float(arm) * n))
  return n - u, u


def arm_examples(design: dict, arm: str) -> dict[str, np.ndarray]:
  """The arm's examples: entity, attribute, template, synonyms [X, F], known (bool)."""
  k, u = arm_parts(design, arm)
  take = lambda part, m: {f: np.asarray(design[part][f])[:m] for f in
                          ("entity", "attribute", "template", "synonyms")}
  known, unknown = take("known", k), take("unknown", u)
  out = {f: np.concatenate([known[f], unknown[f].reshape((-1,) + known[f].shape[1:])])
         for f in known}
  out["known"] = np.arange(k + u) < k
  return out


def arm_probes(spec: DataSpec, world, design: dict, arm: str) -> probes_lib.ProbeSet:
  """The held-out facts (HELDOUT) and the arm's own examples (SET_KNOWN, SET_UNKNOWN),
  canonical prompts, padded (kind -1) to Nh + N probes."""
  ex = arm_examples(design, arm)
  held = design["heldout"]
  n_pad = len(design["known"]["entity"]) - len(ex["entity"])
  ent = np.concatenate([held["entity"], ex["entity"], np.zeros(n_pad, np.int64)])
  attr = np.concatenate([held["attribute"], ex["attribute"], np.zeros(n_pad, np.int64)])
  kind = np.concatenate([np.full(len(held["entity"]), probes_lib.HELDOUT),
                         np.where(ex["known"], probes_lib.SET_KNOWN, probes_lib.SET_UNKNOWN),
                         np.full(n_pad, -1)])
  return probes_lib.make_probes(spec, world, ent, attr, kind, np.zeros(len(ent)))


def write_design(path: str, design: dict) -> None:
  """Writes the design file whole (a temporary file renamed over it)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(design, f)
  os.replace(tmp, path)


def read_design(path: str) -> dict:
  """The design file (`design.json`), or a UserError naming it."""
  if not os.path.exists(path):
    raise UserError(f"config.finetune.design_file={path!r}: no such file (a design's arms are "
                    f"run by `python -m kcompress.main` on the design's config)")
  with open(path) as f:
    return json.load(f)
