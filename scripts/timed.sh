#!/usr/bin/env bash
# Where `make demo` spends its time, step by step.
#   scripts/timed.sh LABEL COMMAND [ARG...]   run COMMAND; print and record (in $MEDCITE_TIMES) how long it took
#   scripts/timed.sh --table                  print the steps recorded so far, with their total
# The record is a TSV (label, seconds, exit status); the Makefile clears it when a `make demo` starts.
set -uo pipefail
log=${MEDCITE_TIMES:-.make-times.tsv}
if [[ ${1:-} == --table ]]; then
  [[ -s $log ]] || { echo "no steps recorded in $log"; exit 0; }
  awk -F'\t' '{ printf "  %-34s %6d s  %s\n", $1, $2, ($3 == 0 ? "" : "failed (" $3 ")"); t += $2 }
              END { printf "  %-34s %6d s  (%d min %02d s)\n", "total", t, t / 60, t % 60 }' "$log"
  exit 0
fi
[[ $# -ge 2 ]] || { echo "usage: $0 LABEL COMMAND [ARG...] | --table" >&2; exit 2; }
label=$1
shift
start=$(date +%s)
"$@"
rc=$?
secs=$(($(date +%s) - start))
printf '%s\t%s\t%s\n' "$label" "$secs" "$rc" >>"$log"
printf '[%s] %s: %d s\n' "$(date +%T)" "$label" "$secs" >&2
exit $rc
