#!/usr/bin/env bash
# `make demo`: install, pull the demo corpus, build its index, answer the seed question; each step timed.
#
# llama-cpp-python is compiled (once a machine, into $LLAMA_WHEELS) in the background while everything else is
# installed and the index is built, so the compiler is not a step of its own on the way to the first answer; it
# runs at a lower priority (nice), so the index build it overlaps keeps both cores whenever it needs them.
# Configuration comes from the Makefile's environment: PY VENV BIN STAMP TIMES QUESTION GENERATOR LLAMA_VERSION
# LLAMA_SDIST_SHA256 LLAMA_WHEELS LLAMA_CMAKE.
set -euo pipefail
cd "$(dirname "$0")/.."
timed=scripts/timed.sh
export MEDCITE_TIMES=$TIMES
rm -f "$TIMES"

if [ ! -x "$BIN/python" ]; then
  $timed "create .venv" "$PY" -m venv "$VENV"
  $timed "upgrade pip" "$BIN/pip" install -q --upgrade pip
fi

llama_pid=""
llama_log=$VENV/llama-build.log
installed=""  # by an earlier `make demo` (STAMP.demo) or `make install`/`make test` (STAMP), since pyproject changed
for stamp in "$STAMP" "$STAMP.demo"; do
  if [ -e "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then installed=yes; fi
done
if [ -z "$installed" ] && ! ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION in the background (log: $llama_log)"
  # Its own process group (set -m), so that a failure below stops the compiler too; not its own session (setsid):
  # with the kernel's autogroups each session gets an equal share of the CPU whatever its nice value, and the
  # compiler then took half the cores from the index build (1.2 instead of ~2.5 batches a second).
  set -m
  CMAKE_ARGS=$LLAMA_CMAKE nice -n 10 $timed --overlapped "build llama-cpp-python wheel (background)" \
    scripts/build_llama_wheel.sh "$LLAMA_VERSION" "$LLAMA_SDIST_SHA256" "$LLAMA_WHEELS" "$BIN/pip" \
    >"$llama_log" 2>&1 &
  llama_pid=$!
  set +m
fi
# If anything below fails, the compiler does not go on alone.
trap '[ -n "$llama_pid" ] && kill -- -"$llama_pid" 2>/dev/null; true' EXIT

if [ -z "$installed" ]; then
  $timed "install torch (CPU)" "$BIN/pip" install -q torch==2.13.0
  "$BIN/python" scripts/requirements.py --without llama-cpp-python >"$VENV/requirements-demo.txt"
  $timed "install dependencies (not llama-cpp-python)" "$BIN/pip" install -q -r "$VENV/requirements-demo.txt"
  $timed "install medcite" "$BIN/pip" install -q --no-deps -e .
fi
$timed "pull the demo corpus" "$BIN/medcite" corpus pull demo
$timed "build indexes/demo" "$BIN/medcite" index build --corpus demo --out indexes/demo
if [ -n "$llama_pid" ]; then
  echo "waiting for the llama-cpp-python build (log: $llama_log)"
  start=$(date +%s)
  rc=0
  wait "$llama_pid" || rc=$?
  llama_pid=""
  printf '%s\t%s\t%s\t\n' "wait for the llama-cpp-python wheel" "$(($(date +%s) - start))" "$rc" >>"$TIMES"
  if [ "$rc" != 0 ]; then
    tail -n 40 "$llama_log" >&2
    echo "building llama-cpp-python failed; the whole log is in $llama_log" >&2
    exit 1
  fi
fi
if [ -z "$installed" ]; then
  $timed "install llama-cpp-python" "$BIN/pip" install -q --find-links "$LLAMA_WHEELS" "llama-cpp-python==$LLAMA_VERSION"
  "$BIN/pip" check >/dev/null || { "$BIN/pip" check >&2; exit 1; }
  touch "$STAMP.demo"
fi
$timed "answer the question ($GENERATOR)" \
  "$BIN/medcite" ask "$QUESTION" --index indexes/demo --generator "$GENERATOR"
echo "where the time went (seconds, wall clock):"
$timed --table
