#!/usr/bin/env bash
# The results rows that need a GPU, in one call of an offline GPU machine (CUDA JAX, no TensorFlow,
# no internet: README "A GPU machine without TensorFlow or internet").
#
#   benchmarks/offline_gpu_runs.sh bundle
#       here, with package access and ../shared/data/ravdess: fills the ignored .offline/ with the
#       JAX path's wheels (../shared/offline-gpu/fetch-wheels.sh, plus lazy_loader, which librosa
#       imports, and typing_extensions, which optree imports), the RAVDESS corpus and this
#       checkout's commit (about 57 MB in all);
#   benchmarks/offline_gpu_runs.sh run OUT_DIR [MINUTES] [ARCH:PROTOCOL[:OPTIONS] ...]
#       there: installs the wheels, trains the runs side by side on the one GPU (default
#       cldnn:speaker cldnn:paper bigru_mha:speaker; OPTIONS are more `train` options, e.g.
#       "cldnn:speaker:--seed 1"), each the preset's command with
#       `--set train.time_limit_minutes=MINUTES` (default 7, so that every run ends with its test
#       part scored), and copies the new run folders and the logs to OUT_DIR.
#
# Back here (openSMILE is not on that machine), for each run folder R copied back:
#   python cli.py baseline R --data-dir ../shared/data/ravdess
#   python benchmarks/results_table.py R --record-to results --readme README.md
set -euo pipefail
shopt -s nullglob  # runs/* with no run in it is no run, not a file named "runs/*"
cd "$(dirname "$0")/.."
corpus=../shared/data/ravdess  # the CPU rows' --data-dir, so the table's commands read the same

bundle() {
  local extra
  extra=$(python -m pip freeze | grep -i -E '^(lazy[-_]loader|typing[-_]extensions)==')
  # shellcheck disable=SC2086  # one NAME==VERSION per word
  bash ../shared/offline-gpu/fetch-wheels.sh .offline/whl $extra > /dev/null
  rm -rf .offline/ravdess && cp -r "$corpus" .offline/ravdess
  python -c "from ser_keras.runs import code_version; print(code_version())" > .offline/commit
  echo "bundled: $(ls .offline/whl | wc -l) wheels, $(du -sh .offline | cut -f1) in .offline/ (code $(cat .offline/commit))"
}

run() {
  local out=${1:?usage: offline_gpu_runs.sh run OUT_DIR [MINUTES] [ARCH:PROTOCOL[:OPTIONS] ...]}
  local minutes=${2:-7}
  shift $(( $# < 2 ? $# : 2 ))
  local jobs=("$@")
  [ ${#jobs[@]} -gt 0 ] || jobs=(cldnn:speaker cldnn:paper bigru_mha:speaker)
  # librosa (the front ends' filterbanks) imports numba, which the bundle leaves out: its wheels
  # (llvmlite, about 45 MB) do not fit beside the corpus in one carry
  python3 -c "import numba" 2> /dev/null || { echo "numba is not installed here; librosa needs it (pip download numba llvmlite, for this machine's python)"; return 1; }
  if ! python3 -c "import keras, librosa, soundfile" 2> /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target .offline/site .offline/whl/*.whl
    export PYTHONPATH=$PWD/.offline/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  # several processes share the GPU: each takes memory as it needs it, not 75 % up front
  export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
  if [ -f .offline/commit ] && [ ! -e .git ]; then export SER_KERAS_CODE; SER_KERAS_CODE=$(cat .offline/commit); fi
  if [ ! -e "$corpus" ]; then mkdir -p "$(dirname "$corpus")" && ln -s "$PWD/.offline/ravdess" "$corpus"; fi
  mkdir -p "$out" runs
  local job arch protocol options before
  before=$(ls runs)
  for job in "${jobs[@]}"; do  # one after the other, so that no two runs write one cache entry at once
    python3 cli.py prepare --arch "${job%%:*}" --dataset ravdess --data-dir "$corpus" >> "$out/prepare.log" 2>&1 ||
      { tail -n 5 "$out/prepare.log"; echo "prepare failed: $out/prepare.log"; return 1; }
  done
  local pids=()
  for job in "${jobs[@]}"; do
    IFS=: read -r arch protocol options <<< "$job"
    # shellcheck disable=SC2086  # OPTIONS are split into words on purpose
    python3 cli.py train --arch "$arch" --dataset ravdess --data-dir "$corpus" --protocol "$protocol" $options \
      --set train.time_limit_minutes="$minutes" --verbose 2 > "$out/$(tr -c 'A-Za-z0-9_.\n-' _ <<< "$job").log" 2>&1 &
    pids+=($!)
  done
  local failed=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  for run_dir in runs/*; do  # the new run folders, weights included (a few MB each)
    grep -qx "$(basename "$run_dir")" <<< "$before" && continue
    cp -r "$run_dir" "$out/"
    rm -rf "$out/$(basename "$run_dir")/backup"  # a time-cut run's backup: weights and optimiser again
  done
  tail -n 3 "$out"/*_*.log
  echo "$failed of ${#jobs[@]} runs failed; run folders in $out"
  return "$failed"
}

case "${1:-}" in
  bundle) bundle ;;
  run) shift; run "$@" ;;
  *) echo "usage: offline_gpu_runs.sh bundle | run OUT_DIR [MINUTES] [ARCH:PROTOCOL[:OPTIONS] ...]" >&2; exit 2 ;;
esac
