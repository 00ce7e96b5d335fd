# Shared by the launch scripts (sourced, not run). Parses the command line, derives the
# workdir and prints or runs commands.
#
#   parse_args "$@"    sets DRY_RUN (0/1), CONFIG (the --config= value), ARGS (array: every
#                      argument but --dry-run/--help, forwarded to kcompress.main verbatim)
#   default_workdir    runs/<config file stem>[-<variant>]   (configs/sweep.py:tiny -> runs/sweep-tiny)
#   run_cmd CMD...     prints "+ CMD" (shell-quoted); runs it unless DRY_RUN=1
#   python_cmd EXTRA.. the `python -m kcompress.main` command line (array PY_CMD)
#   wait_all KIND LOG  waits for the background PIDS; on the first failure names it
#                      ("KIND i exited with status S; log: LOG with %d = i"), prints the
#                      log's tail, kills the rest; sets STATUS (0 when all succeed)

DRY_RUN=0
CONFIG=""

usage() {   # the calling script's header comment
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

ARGS=()

parse_args() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --dry-run) DRY_RUN=1 ;;
      --help|-h) usage; exit 0 ;;
      --config=*) CONFIG="${arg#--config=}"; ARGS+=("$arg") ;;
      *) ARGS+=("$arg") ;;
    esac
  done
  if [[ -z "$CONFIG" ]]; then
    echo "error: --config=FILE[:variant] is required (e.g. --config=configs/sweep.py)" >&2
    usage >&2
    exit 2
  fi
}

default_workdir() {
  local file="${CONFIG%%:*}" variant=""
  [[ "$CONFIG" == *:* ]] && variant="${CONFIG#*:}"
  local stem
  stem="$(basename "$file" .py)"
  if [[ -n "$variant" && "$variant" != "default" ]]; then
    echo "runs/${stem}-${variant}"
  else
    echo "runs/${stem}"
  fi
}

quote_cmd() {
  local out="" word
  for word in "$@"; do
    out+="$(printf '%q' "$word") "
  done
  echo "${out% }"
}

run_cmd() {
  echo "+ $(quote_cmd "$@")"
  if [[ "$DRY_RUN" == 0 ]]; then
    "$@"
  fi
}

python_cmd() {
  PY_CMD=("${KC_PYTHON:-python}" -m kcompress.main "$@" "${ARGS[@]}")
}

PIDS=()

wait_all() {
  local kind="$1" log_format="$2" remaining=${#PIDS[@]} i pid other log
  STATUS=0
  while ((remaining > 0)); do
    for i in "${!PIDS[@]}"; do
      pid="${PIDS[$i]}"
      [[ -z "$pid" ]] && continue
      kill -0 "$pid" 2> /dev/null && continue
      wait "$pid" || STATUS=$?
      PIDS[i]=""
      remaining=$((remaining - 1))
      if ((STATUS != 0)); then
        # shellcheck disable=SC2059  # the format is the caller's log path pattern
        log="$(printf "$log_format" "$i")"
        echo "error: $kind $i exited with status $STATUS; log: $log" >&2
        tail -n 20 "$log" >&2 || true
        for other in "${PIDS[@]}"; do
          [[ -n "$other" ]] && kill "$other" 2> /dev/null || true
        done
        wait || true
        return 0
      fi
    done
    sleep 0.2
  done
}
