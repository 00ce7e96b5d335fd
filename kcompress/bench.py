"""Benchmarks that print figures (never run in tests).

  python -m kcompress.bench data [--num_sentences=1000000] [--repeats=5]
  python -m kcompress.bench sweep [--config=configs/sweep.py[:gpu]]
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m kcompress.bench sharded
  python -m kcompress.bench compress [--compress_workdir=DIR] [--compress_sentences=1000]

`data`: generator throughput (tokens/s, generate + render + pack) and Bayes-code
throughput (sentences/s, counts + bits from the raw draws), medians over repeats,
compile time excluded.

`sweep`: step time of the one-step sweep of the config's widths (every `buckets` layout,
and the chosen one without its bucket-after-bucket ordering) vs the same widths trained
one after another (each its own jitted step, unpadded), timed in interleaved rounds:
min / median / max over rounds and the ratio of the medians; the useful-FLOP fraction
(unpadded FLOPs / executed padded FLOPs); and the model FLOP utilisation relative to a
float32 matmul peak measured in the same run.

`sharded`: step time (min / median / max) of the sweep on one device vs on every
(model x data) mesh of all the devices, interleaved rounds; the ratio of medians is the
cost (or gain) of sharding; and the FLOPs each device carries (`sweep.device_flops`).

Each prints a readable summary, then one JSON line.

`compress`: `kcompress.compress` of fresh stream text with the widest model of DIR (default:
a :tiny sweep trained here for 40 steps): medians over repeats of the range coder's
encode throughput alone and with the model's forward passes, decode throughput (with
the model), and the overhead over the ideal code in bits per token.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Config file.",
                                          lock_config=True)
_NUM = flags.DEFINE_integer("num_sentences", 1_000_000, "Stream length for `data`.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats (the median is reported).")
_WORKDIR = flags.DEFINE_string("compress_workdir", None, "Run directory for `compress` (default: train "
                               ":tiny in a temporary directory).")
_COMPRESS_SENTENCES = flags.DEFINE_integer("compress_sentences", 1000,
                                           "Fresh sentences coded by `compress`.")


def bench_data(config, num_sentences: int, repeats: int) -> dict:
  import jax
  from kcompress.data import report, spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  gen, bayes, num_tokens = [], [], 0
  for r in range(repeats):
    seconds, out = report.time_generation(spec, config.seed + r, num_sentences)
    world, _, sentences, _, _ = out
    num_tokens = int(jax.device_get(sentences.length_N).sum())
    gen.append(num_tokens / seconds)
    bayes.append(num_sentences / report.time_bayes(spec, world, sentences))
  return dict(benchmark="data", device=str(jax.devices()[0].device_kind),
              num_sentences=num_sentences, num_tokens_last=num_tokens, repeats=repeats,
              generate_tokens_per_second_median=statistics.median(gen),
              bayes_sentences_per_second_median=statistics.median(bayes),
              generate_tokens_per_second_all=gen, bayes_sentences_per_second_all=bayes)


def _median_seconds(fn, *args, repeats: int) -> float:
  """Median wall time of `fn(*args)` over `repeats` calls after one warm-up call."""
  return statistics.median(_times({"fn": lambda: fn(*args)}, repeats, inner=1)["fn"])


def _times(fns: dict, repeats: int, inner: int = 3) -> dict:
  """{name: [seconds per call, one per repeat]}: the callables interleaved round by round
  (load drifting on a shared machine hits them alike), each round the mean of `inner`
  calls, after two warm-up calls each (compilation and the first donated run)."""
  import jax
  for fn in fns.values():
    jax.block_until_ready(fn())
    jax.block_until_ready(fn())
  out = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      for _ in range(inner):
        jax.block_until_ready(fn())
      out[name].append((time.perf_counter() - start) / inner)
  return out


def _spread(samples) -> dict:
  return dict(min=min(samples), median=statistics.median(samples), max=max(samples))


def _fmt(samples) -> str:
  s = _spread(samples)
  return f"median {s['median']:.4f} s (min {s['min']:.4f}, max {s['max']:.4f})"


def matmul_peak_flops(size: int = 1024, repeats: int = 10) -> float:
  """FLOP/s of a float32 [size, size] @ [size, size] matmul on the default device."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  return 2 * size ** 3 / _median_seconds(mm, a, repeats=repeats)


def _random_batch(spec, batch_size: int) -> dict:
  """Token rows of the spec's shape (host numpy): inputs, targets and roles (all real)."""
  import numpy as np
  C = spec.context_length
  targets = np.random.default_rng(0).integers(1, spec.vocab_size, (batch_size, C)).astype(np.int32)
  return {"inputs_BxL": np.concatenate([np.zeros((batch_size, 1), np.int32), targets[:, :-1]], 1),
          "targets_BxL": targets, "roles_BxL": np.zeros((batch_size, C), np.int32)}


def _stepper(config, spec, model_cfg, widths, mesh=None, **step_kw):
  """(layout, a no-argument callable running one jitted sweep step of `widths` x the
  config's seeds laid out by `model_cfg` on `mesh`, feeding its states back, returning
  the metrics)."""
  import jax
  import jax.numpy as jnp
  from kcompress import mesh as mesh_lib, step as step_lib, sweep
  steps = config.train.num_steps
  model_axis = mesh.shape["model"] if mesh is not None else 1
  models = [(int(w), int(s)) for w in widths for s in config.sweep.seeds]
  layout = sweep.make_layout(model_cfg, spec.vocab_size, spec.context_length, models,
                             model_axis)
  opt = step_lib.make_optimizer(config.optim, steps)
  states = sweep.init(layout, config.optim, opt, [w for w, _ in models], [s for _, s in models])
  batch = _random_batch(spec, config.train.batch_size)
  if mesh is None:
    batch = jax.tree.map(jnp.asarray, batch)
  else:
    states = mesh_lib.put(states, mesh_lib.replicated(mesh))
    batch = mesh_lib.put(batch, mesh_lib.replicated(mesh))
  holder = [sweep.place(layout, states, mesh)]
  fn = sweep.make_step(layout, opt, config.optim, steps, mesh, **step_kw)

  def run():
    holder[0], metrics = fn(holder[0], batch)
    return metrics
  return layout, run


def bench_sweep(config, repeats: int) -> dict:
  """One compiled step for all widths vs each width alone (each separately jitted), timed
  in interleaved rounds: min / median / max over rounds, and the ratio of the medians."""
  import jax
  from kcompress import model as model_lib, sweep
  from kcompress.data import spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  widths = [int(w) for w in config.model.widths]
  B, C = config.train.batch_size, spec.context_length
  chosen = int(config.model.buckets)

  def model_cfg(**changes):
    cfg = config.model.copy_and_resolve_references()
    for k, v in changes.items():
      cfg[k] = v
    return cfg

  fns = {}
  for buckets in dict.fromkeys((chosen, 1, 2, 0)):
    fns[f"sweep buckets={buckets}"] = _stepper(config, spec, model_cfg(buckets=buckets), widths)[1]
  # The same layout without the CPU's bucket-after-bucket ordering (sweep.make_step).
  fns[f"sweep buckets={chosen} unchained"] = _stepper(
      config, spec, model_cfg(buckets=chosen), widths, chain_buckets=False)[1]
  for w in widths:
    fns[f"width {w} alone"] = _stepper(config, spec, model_cfg(widths=(w,)), [w])[1]
  times = _times(fns, repeats)
  # Sequential: each round, the widths' own steps one after another (the sum of their times).
  times["sequential"] = [sum(ts) for ts in zip(*(times[f"width {w} alone"] for w in widths))]
  sweep_key = f"sweep buckets={chosen}"
  sweep_s, seq_s = times[sweep_key], times["sequential"]
  full = model_lib.ModelConfig.from_config(config.model, spec.vocab_size, C)
  seeds = len(tuple(config.sweep.seeds))
  layout = sweep.make_layout(config.model, spec.vocab_size, C,
                             [(w, s) for w in widths for s in config.sweep.seeds])
  useful = seeds * sum(model_lib.flops_per_token(full, w) for w in widths) * B * C
  executed = sweep.executed_flops(layout, B)
  peak = matmul_peak_flops()
  model_tokens = seeds * len(widths) * B * C
  med = lambda k: statistics.median(times[k])
  print(f"sweep of widths {widths} x {seeds} seed(s), {B} x {C} tokens per step, {repeats} "
        f"rounds of 3 steps, {jax.devices()[0].device_kind}:")
  for name, samples in times.items():
    ratio = "" if "alone" in name else f"   sequential / this {med('sequential') / med(name):.2f}"
    print(f"  {name:28s} {_fmt(samples)}{ratio}")
  paired = [q / s for q, s in zip(seq_s, sweep_s)]
  print(f"  sequential / one-step sweep ({sweep_key}): ratio of medians "
        f"{med('sequential') / med(sweep_key):.2f} (> 1: the sweep is faster); per round "
        f"median {statistics.median(paired):.2f}, min {min(paired):.2f}, max {max(paired):.2f}")
  return dict(benchmark="sweep", device=str(jax.devices()[0].device_kind), widths=widths,
              batch_tokens=B * C, repeats=repeats, buckets=chosen,
              step_s={k: _spread(v) for k, v in times.items()},
              sweep_step_s=_spread(sweep_s), sequential_step_s=_spread(seq_s),
              sweep_step_s_median=med(sweep_key), sequential_step_s_median=med("sequential"),
              sweep_tokens_per_second=model_tokens / med(sweep_key),
              sequential_tokens_per_second=model_tokens / med("sequential"),
              speedup=med("sequential") / med(sweep_key), speedup_per_round=_spread(paired),
              per_width_step_s_median={str(w): med(f"width {w} alone") for w in widths},
              useful_flop_fraction=useful / executed,
              matmul_peak_flops=peak,
              mfu_sweep=useful / med(sweep_key) / peak,
              mfu_sequential=useful / med("sequential") / peak)


def bench_sharded(config, repeats: int) -> dict:
  """Step time of the config's sweep on one device vs sharded over every (model, data)
  mesh of all devices (simulate N CPU devices with XLA_FLAGS=--xla_force_host_platform_device_count=N),
  interleaved rounds; and the FLOPs each device carries (`sweep.device_flops`)."""
  import jax
  import numpy as np
  from jax.sharding import Mesh
  from kcompress import mesh as mesh_lib, sweep
  from kcompress.data import spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  widths = [int(w) for w in config.model.widths]
  B, C = config.train.batch_size, spec.context_length
  devices = jax.devices()
  n = len(devices)
  meshes = [(m, n // m) for m in range(1, n + 1) if n % m == 0 and B % (n // m) == 0]
  fns, flops, placed = {}, {}, {}
  layout, fns["one device"] = _stepper(config, spec, config.model, widths)
  flops["one device"] = sweep.device_flops(layout, B)
  for m, d in meshes:
    mesh = Mesh(np.asarray(devices[:m * d]).reshape(m, d), mesh_lib.AXES)
    layout, fns[f"{m}x{d}"] = _stepper(config, spec, config.model, widths, mesh)
    flops[f"{m}x{d}"] = sweep.device_flops(layout, B, d)
    placed[f"{m}x{d}"] = sweep.placement(layout, d)
  times = _times(fns, repeats)
  one = statistics.median(times["one device"])
  print(f"sweep of widths {widths} x {len(tuple(config.sweep.seeds))} seed(s), {B} x {C} tokens "
        f"per step, {repeats} rounds of 3 steps, {n} {devices[0].device_kind} devices:")
  for name, samples in times.items():
    f = flops[name]
    where = "; ".join(f"w{p['max_width']}: {p['models']} model(s) over {p['groups']}, rows over "
                      f"{p['row_shards']}" for p in placed.get(name, []))
    print(f"  {name:10s} {_fmt(samples)}   / one device {statistics.median(samples) / one:.2f}"
          f"   GFLOP per device {f.min() / 1e9:.3f}-{f.max() / 1e9:.3f} (sum {f.sum() / 1e9:.3f})"
          + (f"\n             placement: {where}" if where else ""))
  return dict(benchmark="sharded", device=str(devices[0].device_kind), num_devices=n,
              widths=widths, batch_tokens=B * C, repeats=repeats,
              one_device_step_s=_spread(times["one device"]), one_device_step_s_median=one,
              sharded_step_s={k: _spread(v) for k, v in times.items() if k != "one device"},
              sharded_step_s_median={k: statistics.median(v) for k, v in times.items()
                                     if k != "one device"},
              sharded_over_one_device={k: statistics.median(v) / one for k, v in times.items()
                                       if k != "one device"},
              device_flops={k: v.tolist() for k, v in flops.items()}, placement=placed,
              one_device_tokens_per_second=len(widths) * len(tuple(config.sweep.seeds)) * B * C
              / one)


def bench_compress(workdir: str | None, num_sentences: int, repeats: int) -> dict:
  import tempfile
  from configs.sweep import get_config
  from kcompress import compress, train
  if workdir is None:
    workdir = tempfile.mkdtemp(prefix="kcompress-bench-")
    cfg = get_config("tiny")
    train.run(cfg, workdir)
  runs = [compress.compress(workdir, None, num_sentences, decode=True) for _ in range(repeats)]
  med = lambda key: statistics.median(r[key] for r in runs)
  first = runs[0]
  return dict(benchmark="compress", workdir=workdir, width=first["width"], step=first["step"],
              num_tokens=first["num_tokens"], repeats=repeats,
              roundtrip_ok=all(r["roundtrip_ok"] for r in runs),
              encode_tokens_per_s_median=med("encode_tokens_per_s"),
              encode_with_model_tokens_per_s_median=med("encode_with_model_tokens_per_s"),
              decode_tokens_per_s_median=med("decode_tokens_per_s"),
              overhead_bits_per_token=first["overhead_bits_per_token"],
              overhead_bound_bits_per_token=first["overhead_bound_bits"] / first["num_tokens"],
              bits_ideal_per_token=first["bits_ideal"] / first["num_tokens"],
              bayes_bits_per_token=first["bayes_bits"] / first["num_tokens"])


def main(argv):
  what = argv[1:] or ["data"]
  for name in what:
    if name == "data":
      result = bench_data(_CONFIG.value, _NUM.value, _REPEATS.value)
    elif name == "sweep":
      result = bench_sweep(_CONFIG.value, max(_REPEATS.value, 10))
    elif name == "sharded":
      result = bench_sharded(_CONFIG.value, max(_REPEATS.value, 10))
    elif name == "compress":
      result = bench_compress(_WORKDIR.value, _COMPRESS_SENTENCES.value, _REPEATS.value)
    else:
      sys.exit(f"unknown benchmark {name!r}; choose from: data, sweep, sharded, compress")
    print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
