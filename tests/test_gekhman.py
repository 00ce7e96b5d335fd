"""Gekhman et al.'s design (kcompress.gekhman, kcompress.design): SliCK categories of a
hand-made predictor, the sets and the control, the held-out set's disjointness, and the
whole design trained by one command on the `:tiny` run."""

import json
import os
import subprocess
import sys
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.sweep import get_config
from kcompress import data, gekhman, probes
from kcompress.data import inject, roles, source, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARES = ("0", "0.25", "0.5", "0.75", "1")


@pytest.fixture(scope="module")
def spec_world():
  spec = data.data_spec(get_config("tiny").data)
  return spec, source.host_world(spec, 0)


def test_slick_categories_of_a_hand_made_predictor(spec_world):
  """Four facts x 2 prompt variants, answered by construction: always the truth (greedy,
  HighlyKnown), the truth on one variant only (MaybeKnown), the truth second best with 30%
  at T = 0.5 (WeaklyKnown: 16 samples miss it with probability 0.7^32 ~ 1e-5), the truth
  impossible (Unknown). The chain runs through probe_stats as a model's logits would."""
  spec, world = spec_world
  X, V = 2, spec.values_per_attribute
  ent, attr = np.array([3, 4, 5, 6]), np.array([0, 1, 2, 3])
  syntax = gekhman.prompt_variants(spec, world, attr, X, seed=0)
  ps = probes.make_probes(spec, world, np.repeat(ent, X), np.repeat(attr, X), np.zeros(8),
                          np.zeros(8), syntax=syntax)
  truth = ps.value_token_P
  other = spec.val0 + ps.attribute_P * V + (truth - spec.val0 + 1) % V   # another value
  lg = np.full((8, spec.vocab_size), -1e9, np.float32)
  rows = np.arange(8)
  fact = rows // X
  variant = rows % X
  # HighlyKnown: truth far ahead; MaybeKnown: truth ahead on variant 0, behind on 1.
  lg[rows, truth] = np.where(fact == 0, 10.0, np.where((fact == 1) & (variant == 0), 10.0, 0.0))
  lg[rows, other] = np.where(fact == 0, 0.0, np.where((fact == 1) & (variant == 0), 0.0, 5.0))
  # WeaklyKnown: at T = 0.5 the truth has p = 0.3 (logit gap ln(7/3) / 2 behind the other).
  gap = np.log(7 / 3) * probes.SAMPLE_TEMPERATURE
  lg[fact == 2, truth[fact == 2]] = 5.0 - gap
  lg[fact == 3, truth[fact == 3]] = -1e9           # Unknown: probability 0
  L = ps.inputs_PxL.shape[1]
  out = jax.device_get(probes.probe_stats(
      jnp.broadcast_to(jnp.asarray(lg)[:, None], (8, L, spec.vocab_size)), ps, spec, 0.5))
  assert out["p_true_T"][fact == 2] == pytest.approx(0.3, rel=1e-4)
  cats = gekhman.slick_categories(out["correct"].reshape(4, X), out["p_true_T"].reshape(4, X),
                                  samples=16, seed=0)
  assert [gekhman.CATEGORIES[c] for c in cats] == list(gekhman.CATEGORIES)


def _design(spec, world, N=8, Nh=6):
  """A design from fabricated SliCK results: 20 stream facts, the best N + Nh kept."""
  rng = np.random.default_rng(0)
  cand_e, cand_a = np.arange(20), rng.integers(spec.num_attributes, size=20)
  cats = rng.integers(0, 4, size=(2, 20))
  pool, held = gekhman.split_known(gekhman.rank_known(cats, rng.random((2, 20)),
                                                      rng.random((2, 20))), N, Nh, seed=0)
  unk_e, unk_a = gekhman.unknown_facts(spec, N, seed=0)
  t, syn = gekhman.example_syntax(spec, world, np.concatenate([cand_a[pool], unk_a]), seed=0)
  ex = lambda e, a, sl: {"entity": e.tolist(), "attribute": a.tolist(),
                         "template": t[sl].tolist(), "synonyms": syn[sl].tolist()}
  return {"known": ex(cand_e[pool], cand_a[pool], slice(0, N)),
          "unknown": ex(unk_e, unk_a, slice(N, 2 * N)),
          "heldout": {"entity": cand_e[held].tolist(), "attribute": cand_a[held].tolist()},
          "categories": cats, "pool": pool}


def _sentences(spec, world, design, arm):
  """The arm's sentences (one epoch), as token tuples, and their entities."""
  ex = gekhman.arm_examples(design, arm)
  inj = inject.plan_fact_set(spec, world, ex["entity"], ex["attribute"], ex["template"],
                             ex["synonyms"], design["unknown"]["entity"], 1, seed=0)
  rows = inj.rows
  real = rows.role != roles.PAD
  out = {}
  for s, tok, e in zip(rows.sentence[real], rows.token[real], rows.entity[real]):
    out.setdefault(int(s), ([], int(e)))[0].append(int(tok))
  return [(tuple(t), e) for t, e in out.values()]


def test_sets_control_and_heldout(spec_world):
  spec, world = spec_world
  design = _design(spec, world)
  N = len(design["known"]["entity"])
  new = set(design["unknown"]["entity"])
  held = set(zip(design["heldout"]["entity"], design["heldout"]["attribute"]))
  for arm in SHARES + (gekhman.CONTROL,):
    ex = gekhman.arm_examples(design, arm)
    facts = set(zip(ex["entity"].tolist(), ex["attribute"].tolist()))
    assert not facts & held, arm                        # no held-out fact in any set
    if arm != gekhman.CONTROL:                          # one size, the stated share
      assert len(ex["entity"]) == N
      assert np.sum(~ex["known"]) == round(float(arm) * N)
    assert all((e in new) != k for e, k in zip(ex["entity"].tolist(), ex["known"]))
  # The control holds exactly the Known sentences of the 50% set (rendered, as trained).
  half = _sentences(spec, world, design, "0.5")
  control = _sentences(spec, world, design, gekhman.CONTROL)
  assert Counter(t for t, e in half if e not in new) == Counter(t for t, _ in control)
  assert len(control) == N // 2 and all(e not in new for _, e in control)
  # Every example renders a sentence stating its own fact, with its own template.
  for tokens, e in half:
    parsed = text.parse_sentence(spec, np.array(tokens))
    assert parsed["attribute"] == int(np.asarray(world.attribute_T)[parsed["template"]])
  # The best-known candidates were kept: no dropped candidate is better than a kept one.
  worst = design["categories"].max(0)
  kept = np.concatenate([design["pool"], list(design["heldout"]["entity"])])
  assert worst[kept].max() <= np.delete(worst, kept).min()


def test_the_design_trains_in_one_command(tiny_workdir, tmp_path):
  """`python -m kcompress.main --config=configs/finetune.py:tiny`: the five shares and the
  control are trained (each its own fine-tuning run), the held-out set shares no fact with
  any set, and report/summary.json has `unknown_share` for every arm."""
  workdir = str(tmp_path / "design")
  cmd = [sys.executable, "-m", "kcompress.main", "--config=configs/finetune.py:tiny",
         f"--config.init_from={tiny_workdir}", "--config.finetune.epochs=2",
         f"--workdir={workdir}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(workdir, gekhman.DESIGN_FILE)) as f:
    design = json.load(f)
  held = set(zip(design["heldout"]["entity"], design["heldout"]["attribute"]))
  for arm in SHARES + (gekhman.CONTROL,):
    arm_dir = os.path.join(workdir, f"arm-{arm}")
    with open(os.path.join(arm_dir, "config.json")) as f:
      assert json.load(f)["finetune"]["arm"] == arm
    ex = gekhman.arm_examples(design, arm)
    assert not set(zip(ex["entity"].tolist(), ex["attribute"].tolist())) & held
    with open(os.path.join(arm_dir, "probes.jsonl")) as f:
      last = json.loads(f.readlines()[-1])
    assert last["heldout"]["n"] == len(held)
  with open(os.path.join(workdir, "report", "summary.json")) as f:
    summary = json.load(f)
  assert set(summary["unknown_share"]) == set(SHARES) | {gekhman.CONTROL}
  for arm, v in summary["unknown_share"].items():
    assert v["n"] == len(held)
    assert set(v["early_stop"]) == set(v["convergence"]) == set(design["models"])
  assert {c["id"] for c in summary["claims"]} == {"gekhman_slope", "gekhman_control"}
  assert "unknown_share" in proc.stdout or "Held-out accuracy" in proc.stdout


def test_gekhman_claims_on_a_made_up_design():
  """Accuracy falling with the Unknown share (n = 400 held-out facts) is `consistent`; the
  control above the 50% set too; an unfitted set or unknown held-out facts make both rows
  inconclusive, saying why."""
  from kcompress.analysis import claims_probes
  acc = {"0": 0.8, "0.25": 0.7, "0.5": 0.6, "0.75": 0.5, "1": 0.4, "control": 0.75}
  arm = lambda a, fit: {"n": 400, "early_stop": {"64/0": acc[a] + 0.05},
                        "convergence": {"64/0": acc[a]}, "fit": {"64/0": fit}}
  cats = {"64/0": {"heldout": {"HighlyKnown": 300, "MaybeKnown": 50, "WeaklyKnown": 0,
                               "Unknown": 50}}}
  design = {"models": ["64/0"], "categories": cats,
            "unknown_share": {a: arm(a, 1.0) for a in acc}}
  rows = {r["id"]: r for r in claims_probes.claims_gekhman(design)}
  assert rows["gekhman_slope"]["measured"] == pytest.approx(-0.4)
  assert rows["gekhman_slope"]["verdict"] == "consistent", rows["gekhman_slope"]
  assert rows["gekhman_control"]["verdict"] == "consistent"
  design["unknown_share"]["1"] = arm("1", 0.5)
  for r in claims_probes.claims_gekhman(design):
    assert r["verdict"] == "inconclusive" and "not converged" in r["reason"], r
  design["unknown_share"]["1"] = arm("1", 1.0)
  cats["64/0"]["heldout"]["Unknown"] = 400    # 350 of 750 known: < 0.5
  for r in claims_probes.claims_gekhman(design):
    assert r["verdict"] == "inconclusive" and "not known to the model" in r["reason"], r
