#!/usr/bin/env bash
# Starts N processes of one kcompress run on this host (jax.distributed over localhost).
#
#   bash launch/local.sh [--dry-run] --config=configs/sweep.py[:variant] [--config.x=y ...]
#
# Environment (defaults):
#   KC_NUM_PROCESSES=2         processes to start (process 0 is the coordinator)
#   KC_PORT=12355              coordinator port on localhost
#   KC_PLATFORM=cpu            cpu: JAX_PLATFORMS=cpu and KC_DEVICES_PER_PROCESS simulated
#                              devices each; gpu: CUDA_VISIBLE_DEVICES=<process id>
#   KC_DEVICES_PER_PROCESS=1   CPU devices per process (XLA_FLAGS host device count)
#   KC_WORKDIR=runs/<config>[-<variant>]   the run directory, shared by all processes
#   KC_LOGDIR=$KC_WORKDIR/logs  per-process logs process_<i>.log
#   KC_PYTHON=python
# If a process fails, the others are killed and the script exits with its status,
# naming the process and printing the tail of its log.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/common.sh
source launch/common.sh
parse_args "$@"

NUM="${KC_NUM_PROCESSES:-2}"
PORT="${KC_PORT:-12355}"
PLATFORM="${KC_PLATFORM:-cpu}"
DEVICES="${KC_DEVICES_PER_PROCESS:-1}"
WORKDIR="${KC_WORKDIR:-$(default_workdir)}"
LOGDIR="${KC_LOGDIR:-$WORKDIR/logs}"

run_cmd mkdir -p "$LOGDIR"
for ((i = 0; i < NUM; i++)); do
  if [[ "$PLATFORM" == cpu ]]; then
    ENV=(env JAX_PLATFORMS=cpu "XLA_FLAGS=--xla_force_host_platform_device_count=$DEVICES")
  else
    ENV=(env "CUDA_VISIBLE_DEVICES=$i")
  fi
  python_cmd "--workdir=$WORKDIR" "--coordinator_address=localhost:$PORT" \
    "--num_processes=$NUM" "--process_id=$i"
  echo "+ $(quote_cmd "${ENV[@]}" "${PY_CMD[@]}") > $(printf '%q' "$LOGDIR/process_$i.log") 2>&1 &"
  if [[ "$DRY_RUN" == 0 ]]; then
    "${ENV[@]}" "${PY_CMD[@]}" > "$LOGDIR/process_$i.log" 2>&1 &
    PIDS+=("$!")
  fi
done
[[ "$DRY_RUN" == 1 ]] && exit 0

# Wait for all; on the first failure kill the rest and name the failed process.
wait_all process "$LOGDIR/process_%d.log"
((STATUS == 0)) || exit "$STATUS"
echo "all $NUM processes finished; metrics and report in $WORKDIR"
