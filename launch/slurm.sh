#!/usr/bin/env bash
# Submits a kcompress run as a multi-node SLURM GPU job: one process per GPU, started by
# srun; jax.distributed.initialize() reads the SLURM environment (--distributed=on).
#
#   bash launch/slurm.sh [--dry-run] --config=configs/sweep.py[:variant] [--config.x=y ...]
#
# Environment (defaults):
#   KC_NODES=1                 nodes
#   KC_GPUS_PER_NODE=8         GPUs per node = tasks per node
#   KC_PARTITION, KC_ACCOUNT   optional sbatch --partition / --account
#   KC_TIME=04:00:00           time limit; SIGTERM 120 s before it (the run checkpoints, exits 143)
#   KC_JOB_NAME=kcompress-<config stem>
#   KC_WORKDIR=runs/<config>[-<variant>]   fixed, NOT per job id: a requeued job resumes from
#                              its checkpoints. Must be on a filesystem every node shares.
#   KC_PYTHON=python
# Writes the batch script to $KC_WORKDIR/logs/<job name>.sbatch and submits it with
# --requeue; SLURM output goes to $KC_WORKDIR/logs/slurm-<job id>.out.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=launch/common.sh
source launch/common.sh
parse_args "$@"

NODES="${KC_NODES:-1}"
GPUS="${KC_GPUS_PER_NODE:-8}"
TIME="${KC_TIME:-04:00:00}"
WORKDIR="${KC_WORKDIR:-$(default_workdir)}"
STEM="$(basename "${CONFIG%%:*}" .py)"
JOB="${KC_JOB_NAME:-kcompress-$STEM}"
LOGDIR="$WORKDIR/logs"
SCRIPT="$LOGDIR/$JOB.sbatch"

python_cmd --distributed=on "--workdir=$WORKDIR"
BODY="#!/usr/bin/env bash
#SBATCH --job-name=$JOB
#SBATCH --nodes=$NODES
#SBATCH --ntasks-per-node=$GPUS
#SBATCH --gpus-per-node=$GPUS
#SBATCH --time=$TIME
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
#SBATCH --output=$LOGDIR/slurm-%j.out"
[[ -n "${KC_PARTITION:-}" ]] && BODY+=$'\n'"#SBATCH --partition=$KC_PARTITION"
[[ -n "${KC_ACCOUNT:-}" ]] && BODY+=$'\n'"#SBATCH --account=$KC_ACCOUNT"
BODY+="
set -euo pipefail
cd $(printf '%q' "$PWD")
# Forward SIGTERM to the tasks so every process checkpoints before the time limit.
trap 'kill -TERM \$SRUN_PID; wait \$SRUN_PID' TERM
srun --kill-on-bad-exit=1 $(quote_cmd "${PY_CMD[@]}") &
SRUN_PID=\$!
wait \$SRUN_PID"

run_cmd mkdir -p "$LOGDIR"
if [[ "$DRY_RUN" == 1 ]]; then
  echo "+ cat > $(printf '%q' "$SCRIPT") <<'SBATCH'"
  echo "$BODY"
  echo "SBATCH"
else
  printf '%s\n' "$BODY" > "$SCRIPT"
fi
run_cmd sbatch "$SCRIPT"
