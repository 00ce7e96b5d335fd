"""Benchmarks that print figures (never run in tests).

  python -m kcompress.bench data [--num_sentences=1000000] [--repeats=5]
  python -m kcompress.bench sweep [--config=configs/sweep.py[:gpu]]
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m kcompress.bench sharded
  python -m kcompress.bench compress [--compress_workdir=DIR] [--compress_sentences=1000]

`data`: generator throughput (tokens/s, generate + render + pack) and Bayes-code
throughput (sentences/s, counts + bits from the raw draws), medians over repeats,
compile time excluded.

`sweep`: tokens/s of the one-step sweep of the config's widths vs the same widths
trained one after another (each its own jitted step, unpadded), median step times;
the useful-FLOP fraction (unpadded FLOPs / executed padded FLOPs); and the model
FLOP utilisation relative to a float32 matmul peak measured in the same run.

`sharded`: median step time of the sweep on one device vs on every (model x data) mesh
of all the devices; the ratio is the cost (or gain) of sharding.

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
  import jax
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_peak_flops(size: int = 1024, repeats: int = 10) -> float:
  """FLOP/s of a float32 [size, size] @ [size, size] matmul on the default device."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  mm = jax.jit(lambda x: x @ x)
  return 2 * size ** 3 / _median_seconds(mm, a, repeats=repeats)


def bench_sweep(config, repeats: int) -> dict:
  """One compiled step for all widths vs each width trained alone (each separately jitted)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from kcompress import model as model_lib, step as step_lib, sweep
  from kcompress.data import spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  widths = [int(w) for w in config.model.widths]
  B, C = config.train.batch_size, spec.context_length
  rng = np.random.default_rng(0)
  targets = rng.integers(1, spec.vocab_size, (B, C)).astype(np.int32)
  batch = {"inputs_BxL": jnp.asarray(np.concatenate([np.zeros((B, 1), np.int32), targets[:, :-1]], 1)),
           "targets_BxL": jnp.asarray(targets), "roles_BxL": jnp.zeros((B, C), jnp.int32)}
  steps = config.train.num_steps

  def step_seconds(model_cfg, ws):
    """Median seconds of one jitted sweep step over the models `ws` laid out by model_cfg."""
    models = [(w, 0) for w in ws]
    layout = sweep.make_layout(model_cfg, spec.vocab_size, C, models)
    opt = step_lib.make_optimizer(config.optim, steps)
    holder = [sweep.init(layout, config.optim, opt, ws, [0] * len(ws))]
    fn = sweep.make_step(layout, opt, config.optim, steps)

    def run(b):
      holder[0], m = fn(holder[0], b)
      return m
    return _median_seconds(run, batch, repeats=repeats)

  timings = {}
  for buckets in (1, 2, 0):
    cfg = config.model.copy_and_resolve_references()
    cfg.buckets = buckets
    timings[buckets] = step_seconds(cfg, widths)
  alone_s = {}
  for w in widths:
    cfg = config.model.copy_and_resolve_references()
    cfg.widths = (w,)
    alone_s[w] = step_seconds(cfg, [w])
  sequential_s = sum(alone_s.values())
  full = model_lib.ModelConfig.from_config(config.model, spec.vocab_size, C)
  chosen = int(config.model.buckets)
  sweep_s = timings.get(chosen) or step_seconds(config.model, widths)
  layout = sweep.make_layout(config.model, spec.vocab_size, C, [(w, 0) for w in widths])
  useful = sum(model_lib.flops_per_token(full, w) for w in widths) * B * C
  executed = sum(len(idx) * model_lib.flops_per_token(cfg, cfg.max_width)
                 for cfg, idx in layout.buckets) * B * C
  peak = matmul_peak_flops()
  model_tokens = len(widths) * B * C
  return dict(benchmark="sweep", device=str(jax.devices()[0].device_kind), widths=widths,
              batch_tokens=B * C, repeats=repeats,
              buckets=chosen,
              sweep_step_s_median_by_buckets={str(k): v for k, v in timings.items()},
              sweep_step_s_median=sweep_s, sequential_step_s_median=sequential_s,
              per_width_step_s_median={str(w): s for w, s in alone_s.items()},
              sweep_tokens_per_second=model_tokens / sweep_s,
              sequential_tokens_per_second=model_tokens / sequential_s,
              speedup=sequential_s / sweep_s,
              useful_flop_fraction=useful / executed,
              matmul_peak_flops=peak,
              mfu_sweep=useful / sweep_s / peak,
              mfu_sequential=useful / sequential_s / peak)


def bench_sharded(config, repeats: int) -> dict:
  """Median step time of the config's sweep on one device vs sharded over every (model, data)
  mesh of all devices (simulate N CPU devices with XLA_FLAGS=--xla_force_host_platform_device_count=N)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import Mesh
  from kcompress import mesh as mesh_lib, step as step_lib, sweep
  from kcompress.data import spec as spec_lib
  spec = spec_lib.data_spec(config.data)
  widths = [int(w) for w in config.model.widths]
  B, C, steps = config.train.batch_size, spec.context_length, config.train.num_steps
  rng = np.random.default_rng(0)
  targets = rng.integers(1, spec.vocab_size, (B, C)).astype(np.int32)
  batch = {"inputs_BxL": np.concatenate([np.zeros((B, 1), np.int32), targets[:, :-1]], 1),
           "targets_BxL": targets, "roles_BxL": np.zeros((B, C), np.int32)}
  devices = jax.devices()
  n = len(devices)

  def step_seconds(model_axis: int, data_axis: int) -> float:
    mesh = Mesh(np.asarray(devices[:model_axis * data_axis]).reshape(model_axis, data_axis),
                mesh_lib.AXES)
    layout = sweep.make_layout(config.model, spec.vocab_size, C, [(w, 0) for w in widths],
                               model_axis)
    opt = step_lib.make_optimizer(config.optim, steps)
    holder = [sweep.place(layout, sweep.init(layout, config.optim, opt, widths,
                                             [0] * len(widths)), mesh)]
    fn = sweep.make_step(layout, opt, config.optim, steps, mesh)
    b = mesh_lib.put(batch, mesh_lib.replicated(mesh))

    def run(x):
      holder[0], m = fn(holder[0], x)
      return m
    return _median_seconds(run, b, repeats=repeats)

  one = step_seconds(1, 1)
  meshes = [(m, n // m) for m in range(1, n + 1) if n % m == 0 and B % (n // m) == 0]
  sharded = {f"{m}x{d}": step_seconds(m, d) for m, d in meshes}
  return dict(benchmark="sharded", device=str(devices[0].device_kind), num_devices=n,
              widths=widths, batch_tokens=B * C, repeats=repeats, one_device_step_s_median=one,
              sharded_step_s_median=sharded,
              sharded_over_one_device={k: v / one for k, v in sharded.items()},
              one_device_tokens_per_second=len(widths) * B * C / one)


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
