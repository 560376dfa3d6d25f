#!/usr/bin/env bash
# Copies of a training run's backup/ (weights and optimiser state after an epoch), and what the
# README's cldnn experiments did with them:
#
#   benchmarks/backup_copies.sh copy RUN_DIR OUT_DIR [EVERY]
#       beside a running `train`: copies RUN_DIR/backup to OUT_DIR/epN after every EVERYth
#       epoch N (default 5), until the run is finished or no `train` is running;
#   benchmarks/backup_copies.sh score RUN_DIR OUT_DIR [BATCHES]
#       validation of each copy with BatchNorm statistics as stored, recomputed, and recomputed
#       with augmentation off (benchmarks/batchnorm_recomputed.py --clean; default 20 batches);
#   benchmarks/backup_copies.sh restore RUN_DIR COPY
#       RUN_DIR-continued: RUN_DIR with COPY as its backup/ and history.csv cut to COPY's epoch,
#       so that RUN_DIR's own command (command.txt) continues it from there.
set -euo pipefail
cd "$(dirname "$0")/.."

epoch_of() {  # the epochs a backup holds (BackupAndRestore's training_metadata.json)
  python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['epoch'])" "$1/training_metadata.json"
}

copy() {
  local run=${1:?RUN_DIR} out=${2:?OUT_DIR} every=${3:-5} epoch
  while [ ! -e "$run/metrics.json" ] && pgrep -f "cli.py train" > /dev/null; do
    epoch=$(epoch_of "$run/backup" 2> /dev/null) || epoch=
    if [ -n "$epoch" ] && [ $((epoch % every)) -eq 0 ] && [ ! -d "$out/ep$epoch" ]; then
      sleep 5  # the backup is written at the end of the epoch: let it finish
      mkdir -p "$out/ep$epoch" && cp "$run"/backup/* "$out/ep$epoch/"
      echo "copied the backup after epoch $epoch to $out/ep$epoch"
    fi
    sleep 20
  done
}

score() {
  local run=${1:?RUN_DIR} out=${2:?OUT_DIR} batches=${3:-20} copy scored
  for copy in $(ls -d "$out"/ep* | sort -V); do
    scored=$out/run-$(basename "$copy")  # a run folder that batchnorm_recomputed.py reads
    mkdir -p "$scored/backup"
    cp "$run/config.json" "$run/classes.json" "$run/split.csv" "$scored/"
    cp "$copy"/* "$scored/backup/"
    python3 benchmarks/batchnorm_recomputed.py "$scored" --batches "$batches" --clean
  done
}

restore() {
  local run=${1:?RUN_DIR} copy=${2:?COPY} epoch
  local continued=${run%/}-continued
  [ ! -e "$continued" ] || { echo "$continued exists already" >&2; return 1; }
  epoch=$(epoch_of "$copy")
  cp -r "$run" "$continued"
  rm -rf "$continued/backup" && mkdir "$continued/backup" && cp "$copy"/* "$continued/backup/"
  head -n $((epoch + 1)) "$run/history.csv" > "$continued/history.csv"  # header + epochs 1..N
  echo "$continued: backup after epoch $epoch; continue it with: $(cat "$run/command.txt")"
}

case "${1:-}" in
  copy | score | restore) mode=$1; shift; "$mode" "$@" ;;
  *) echo "usage: backup_copies.sh copy RUN_DIR OUT_DIR [EVERY] | score RUN_DIR OUT_DIR [BATCHES]" \
          "| restore RUN_DIR COPY" >&2; exit 2 ;;
esac
