#!/usr/bin/env bash
# Where `make demo` spends its time, step by step.
#   scripts/timed.sh LABEL COMMAND [ARG...]   run COMMAND; print and record (in $MEDCITE_TIMES) how long it took
#   scripts/timed.sh --overlapped LABEL COMMAND [ARG...]
#                                             the same for a step run in the background beside others: tabled,
#                                             but not in the total (the steps it ran beside are)
#   scripts/timed.sh --table                  print the steps recorded so far, with their total
# The record is a TSV (label, seconds, exit status, "overlapped" or nothing); `make demo` clears it when it starts.
set -uo pipefail
log=${MEDCITE_TIMES:-.make-times.tsv}
if [[ ${1:-} == --table ]]; then
  [[ -s $log ]] || { echo "no steps recorded in $log"; exit 0; }
  awk -F'\t' '{ note = ($3 == 0 ? "" : "failed (" $3 ")")
                if ($4 == "overlapped") note = note (note == "" ? "" : ", ") "in the background, beside the steps above"
                else t += $2
                printf "  %-44s %6d s  %s\n", $1, $2, note }
              END { printf "  %-44s %6d s  (%d min %02d s)\n", "total", t, t / 60, t % 60 }' "$log"
  exit 0
fi
overlapped=""
if [[ ${1:-} == --overlapped ]]; then
  overlapped=overlapped
  shift
fi
[[ $# -ge 2 ]] || { echo "usage: $0 [--overlapped] LABEL COMMAND [ARG...] | --table" >&2; exit 2; }
label=$1
shift
start=$(date +%s)
"$@"
rc=$?
secs=$(($(date +%s) - start))
printf '%s\t%s\t%s\t%s\n' "$label" "$secs" "$rc" "$overlapped" >>"$log"
printf '[%s] %s: %d s\n' "$(date +%T)" "$label" "$secs" >&2
exit $rc
