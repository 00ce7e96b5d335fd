# Shared by the launch scripts (sourced, not run). Parses the command line, derives the
# workdir and prints or runs commands.
#
#   parse_args "$@"    sets DRY_RUN (0/1), CONFIG (the --config= value), ARGS (array: every
#                      argument but --dry-run/--help, forwarded to kcompress.main verbatim)
#   default_workdir    runs/<config file stem>[-<variant>]   (configs/sweep.py:tiny -> runs/sweep-tiny)
#   run_cmd CMD...     prints "+ CMD" (shell-quoted); runs it unless DRY_RUN=1
#   python_cmd EXTRA.. the `python -m kcompress.main` command line (array PY_CMD)

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
