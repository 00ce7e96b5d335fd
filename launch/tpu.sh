#!/usr/bin/env bash
# Runs a kcompress sweep on a Cloud TPU VM or pod slice: create (or reuse) the VM, ship the
# code, install, run the same command on every worker with per-worker logs, optionally
# delete. jax.distributed.initialize() finds the other hosts itself (--distributed=auto).
#
#   bash launch/tpu.sh [--dry-run] --config=configs/sweep.py[:variant] [--config.x=y ...]
#
# Environment (defaults):
#   KC_TPU_NAME=kcompress      TPU VM name
#   KC_ZONE=us-central2-b
#   KC_ACCELERATOR_TYPE=v4-8   slice type (v4-32 = 4 hosts, ...)
#   KC_TPU_VERSION=tpu-ubuntu2204-base   runtime version
#   KC_PROJECT                 optional gcloud --project
#   KC_NUM_WORKERS=1           hosts in the slice (one log per worker)
#   KC_CREATE=1                create the VM when `describe` fails (0: it must exist)
#   KC_DELETE=0                1: delete the VM after the run
#   KC_WORKDIR=runs/<config>[-<variant>]   on pods use a mount every host shares (gcsfuse)
#   KC_LOGDIR=runs/tpu-logs/<name>   local per-worker logs worker_<i>.log
#   KC_PYTHON=python3
# A failing worker stops the run: the others are killed, the worker and its log are named.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/common.sh
source launch/common.sh
parse_args "$@"

NAME="${KC_TPU_NAME:-kcompress}"
ZONE="${KC_ZONE:-us-central2-b}"
TYPE="${KC_ACCELERATOR_TYPE:-v4-8}"
VERSION="${KC_TPU_VERSION:-tpu-ubuntu2204-base}"
WORKERS="${KC_NUM_WORKERS:-1}"
WORKDIR="${KC_WORKDIR:-$(default_workdir)}"
LOGDIR="${KC_LOGDIR:-runs/tpu-logs/$NAME}"
KC_PYTHON="${KC_PYTHON:-python3}"
GCLOUD=(gcloud compute tpus tpu-vm)
WHERE=("--zone=$ZONE")
[[ -n "${KC_PROJECT:-}" ]] && WHERE+=("--project=$KC_PROJECT")
TARBALL="/tmp/kcompress-$NAME.tar.gz"

# 1. Create or reuse the VM.
if [[ "$DRY_RUN" == 1 ]]; then
  echo "+ $(quote_cmd "${GCLOUD[@]}" describe "$NAME" "${WHERE[@]}") || \\"
  echo "+   $(quote_cmd "${GCLOUD[@]}" create "$NAME" "${WHERE[@]}" "--accelerator-type=$TYPE" "--version=$VERSION")"
elif ! "${GCLOUD[@]}" describe "$NAME" "${WHERE[@]}" > /dev/null 2>&1; then
  if [[ "${KC_CREATE:-1}" != 1 ]]; then
    echo "error: TPU VM $NAME does not exist in $ZONE and KC_CREATE=0" >&2
    exit 1
  fi
  run_cmd "${GCLOUD[@]}" create "$NAME" "${WHERE[@]}" "--accelerator-type=$TYPE" "--version=$VERSION"
fi

# 2. Ship the code (the committed tree) and install it on every worker.
run_cmd git archive --format=tar.gz -o "$TARBALL" HEAD
run_cmd "${GCLOUD[@]}" scp "$TARBALL" "$NAME:kcompress.tar.gz" --worker=all "${WHERE[@]}"
run_cmd "${GCLOUD[@]}" ssh "$NAME" --worker=all "${WHERE[@]}" \
  "--command=mkdir -p kcompress && tar -xzf kcompress.tar.gz -C kcompress && cd kcompress && $KC_PYTHON -m pip install -q -e . 'jax[tpu]'"

# 3. Run on every worker, each with its own local log.
python_cmd --distributed=auto "--workdir=$WORKDIR"
REMOTE="cd kcompress && $(quote_cmd "${PY_CMD[@]}")"
run_cmd mkdir -p "$LOGDIR"
for ((i = 0; i < WORKERS; i++)); do
  CMD=("${GCLOUD[@]}" ssh "$NAME" "--worker=$i" "${WHERE[@]}" "--command=$REMOTE")
  echo "+ $(quote_cmd "${CMD[@]}") > $(printf '%q' "$LOGDIR/worker_$i.log") 2>&1 &"
  if [[ "$DRY_RUN" == 0 ]]; then
    "${CMD[@]}" > "$LOGDIR/worker_$i.log" 2>&1 &
    PIDS+=("$!")
  fi
done
STATUS=0
[[ "$DRY_RUN" == 0 ]] && wait_all worker "$LOGDIR/worker_%d.log"

# 4. Optionally delete the VM.
if [[ "${KC_DELETE:-0}" == 1 ]]; then
  run_cmd "${GCLOUD[@]}" delete "$NAME" "${WHERE[@]}" --quiet
fi
exit "$STATUS"
