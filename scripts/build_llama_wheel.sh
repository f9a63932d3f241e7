#!/usr/bin/env bash
# Build the llama-cpp-python wheel with only the libraries medcite loads (libllama and the ggml libraries).
#
#   scripts/build_llama_wheel.sh VERSION SHA256 WHEEL_DIR PIP
#
# llama-cpp-python's CMakeLists forces llama.cpp's "common" library on (chat parsers, argument parsing, the
# server's helpers) and installs it, though its Python package never loads it: on 2 cores that library is most of
# the compile (one core: 334 s CPU for the whole build, 126 s for libllama and ggml alone). Its own Emscripten
# build turns it off the same way. The sdist is checked against SHA256 before it is changed; CMAKE_ARGS from the
# caller pass through (instruction sets, AMX off).
set -euo pipefail
version=$1 sha=$2 out=$3 pip=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$pip" download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version" 2>&1 \
  | grep -v "WARNING: Location" || true
sdist="$work/llama_cpp_python-$version.tar.gz"
echo "$sha  $sdist" | sha256sum -c --quiet - || { echo "$sdist: sha256 differs from $sha; not building it" >&2; exit 1; }
tar -xzf "$sdist" -C "$work"
src="$work/llama_cpp_python-$version"
forced='set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)'
[ "$(grep -cF "$forced" "$src/CMakeLists.txt")" = 1 ] || { echo "$src/CMakeLists.txt: no single '$forced'" >&2; exit 1; }
sed -i "s/$(printf '%s' "$forced" | sed 's/[][\.*^$/]/\\&/g')/${forced/ ON / OFF }/" "$src/CMakeLists.txt"
grep -qF "${forced/ ON / OFF }" "$src/CMakeLists.txt"
# libllama (llama.cpp's src/: model loading, graph building, vocabulary, sampling) at -O1; the kernels are ggml's,
# which keep -O3. On a 2-core EPYC src/ took 76 s of CPU at -O3 and 53 s at -O1 (ggml: 35 s), and the bundled model
# answered alike with either library (1,300 prompt tokens and 64 generated: 7.77/7.88 s against 7.71/7.83 s).
features='target_compile_features   (llama PRIVATE cxx_std_17) # don'"'"'t bump'
lib="$src/vendor/llama.cpp/src/CMakeLists.txt"
[ "$(grep -cF "$features" "$lib")" = 1 ] || { echo "$lib: no single '$features'" >&2; exit 1; }
sed -i "/^$(printf '%s' "$features" | sed 's/[][\.*^$/]/\\&/g')\$/a target_compile_options(llama PRIVATE -O1)" "$lib"
grep -qxF 'target_compile_options(llama PRIVATE -O1)' "$lib"
"$pip" wheel -q --no-deps --no-cache-dir -w "$out" "$src"
