#!/usr/bin/env bash
# Runs one experiment at several Pitman-Yor discounts x seeds, one job after another, then
# the cross-run comparison (exponents vs alpha beside 1 - alpha and 1/alpha - 1; the runs
# of one alpha merged over seeds: Student's t interval over runs).
#
#   bash launch/alphas.sh [--dry-run] [--config=configs/paper.py:data] [--config.x=y ...]
#
# Environment (defaults):
#   KC_ALPHAS="0.3 0.5 0.7"      the discounts
#   KC_SEEDS="0 1 2"             one run per seed and alpha: seed s sets the data seed and the
#                                models' init seed (--config.seed=s --config.sweep.seeds='(s,)')
#   KC_WORKDIR=runs/<config>[-<variant>]   each run goes to $KC_WORKDIR-a<alpha> (seed 0)
#                                          or $KC_WORKDIR-a<alpha>-s<seed>
#   KC_COMPARE=$KC_WORKDIR-compare         where the comparison (report.md, summary.json,
#                                          exponents.png) is written
#   KC_PYTHON=python
# Every run is a separate `python -m kcompress.main` (resumable: rerunning the script skips
# the steps a run has done). On a cluster, submit each printed command as its own job
# (`--dry-run` prints them) and run the last one when all have finished.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/common.sh
source launch/common.sh
has_config=0
for arg in "$@"; do [[ "$arg" == --config=* ]] && has_config=1; done
if ((has_config == 0)); then set -- "$@" --config=configs/paper.py:data; fi
parse_args "$@"

ALPHAS="${KC_ALPHAS:-0.3 0.5 0.7}"
SEEDS="${KC_SEEDS:-0 1 2}"
BASE="${KC_WORKDIR:-$(default_workdir)}"
COMPARE="${KC_COMPARE:-$BASE-compare}"
PY="${KC_PYTHON:-python}"

WORKDIRS=()
for alpha in $ALPHAS; do
  for seed in $SEEDS; do
    workdir="$BASE-a$alpha"
    seeded=()
    if [[ "$seed" != 0 ]]; then
      workdir="$workdir-s$seed"
      seeded=("--config.seed=$seed" "--config.sweep.seeds=($seed,)")
    fi
    WORKDIRS+=("--workdir=$workdir")
    run_cmd "$PY" -m kcompress.main "${ARGS[@]}" "--config.data.alpha=$alpha" \
      ${seeded[@]+"${seeded[@]}"} "--workdir=$workdir"
  done
done
run_cmd "$PY" -m kcompress.analysis "${WORKDIRS[@]}" "--out=$COMPARE"
