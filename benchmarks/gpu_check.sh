#!/usr/bin/env bash
# GPU check of the batched trainer: batched vs a loop of nn.RNN models for M in {64, 400}, and the wall time
# of the full 20 x 20 phase diagram (Fig. 9) trained with stacked members on one GPU.
#
# Usage:
#   benchmarks/gpu_check.sh [--quick] [FIGURES_FILE]
#
# Figures are appended to FIGURES_FILE, else to $OUT/gpu_check.txt when $OUT is set, else to
# ./gpu_check.txt. With $OUT set, the phase diagram's results.csv and phase_diagram.png are copied there.
# --quick runs a few seconds of everything on the CPU (to check the script itself).
#
# Knobs (environment): PYTHON (interpreter; default .venv/bin/python, else python3), DEVICE (default cuda
# when torch sees a GPU, else cpu), PD_RESOLUTION (20), PD_MAX_EPOCHS (the epoch cap per cell; default
# 1000000, the paper's), PD_MEMBERS (cells per batched task; default 100, so a killed run keeps finished
# tasks), PD_DIR (the sweep directory; default a fresh temporary one; rerun with the same PD_DIR resumes).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
QUICK=0
if [[ "${1:-}" == "--quick" ]]; then
  QUICK=1
  shift
fi
if [[ -n "${1:-}" ]]; then
  FIGURES="$1"
elif [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  FIGURES="$OUT/gpu_check.txt"
else
  FIGURES="$PWD/gpu_check.txt"
fi
mkdir -p "$(dirname "$FIGURES")"
FIGURES="$(cd "$(dirname "$FIGURES")" && pwd)/$(basename "$FIGURES")"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg

if [[ -z "${DEVICE:-}" ]]; then
  DEVICE="$("$PYTHON" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')"
fi
if [[ "$QUICK" == 1 ]]; then DEVICE=cpu; fi

log() { echo "$*" | tee -a "$FIGURES"; }

log "# gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) quick=$QUICK device=$DEVICE"
log "# $("$PYTHON" -c 'import torch, platform; print("torch", torch.__version__, "python", platform.python_version(), "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")')"
if command -v nvidia-smi >/dev/null 2>&1; then
  log "# $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
fi
log "# git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), cpu cores $(nproc)"

# 1. batched vs loop of nn.RNN (both settings of batched_bench.py), M in {64, 400}
if [[ "$QUICK" == 1 ]]; then
  "$PYTHON" "$ROOT/benchmarks/batched_bench.py" --quick --device cpu --out "$FIGURES"
else
  "$PYTHON" "$ROOT/benchmarks/batched_bench.py" --members 64 400 --device "$DEVICE" \
    --steps 30 --repeats 3 --out "$FIGURES"
fi

# 2. the full phase diagram, timed
if [[ "$QUICK" == 1 ]]; then
  RES=2 EPOCHS=3 MEMBERS=4 EXTRA=(--hidden 8 --jobs 1)
else
  RES="${PD_RESOLUTION:-20}" EPOCHS="${PD_MAX_EPOCHS:-1000000}" MEMBERS="${PD_MEMBERS:-100}"
  EXTRA=(--jobs 1)
fi
PD="${PD_DIR:-$(mktemp -d)/phase_diagram}"
log "# phase diagram: resolution $RES, max epochs $EPOCHS, $MEMBERS cells per task, device $DEVICE, dir $PD"
START=$(date +%s.%N)
"$PYTHON" -c 'import sys; from dfalens.cli import main; main(sys.argv[1:])' \
  sweep phase-diagram --resolution "$RES" --max-epochs "$EPOCHS" --members "$MEMBERS" \
  --device "$DEVICE" "${EXTRA[@]}" -o "$PD" | tee -a "$FIGURES"
END=$(date +%s.%N)
log "phase_diagram_wall_s $("$PYTHON" -c "print(round($END - $START, 1))")"
"$PYTHON" - "$PD/results.csv" <<'EOF' | tee -a "$FIGURES"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
epochs = [int(r["epochs"]) for r in rows]
print(f"cells {len(rows)}, epochs median {statistics.median(epochs):.0f} max {max(epochs)}, "
      f"converged {sum(r['converged'] == 'true' for r in rows)}, "
      f"equivalent {sum(r['equivalent'] == 'true' for r in rows)}")
EOF
if [[ -n "${OUT:-}" ]]; then
  cp "$PD/results.csv" "$OUT/phase_diagram_results.csv"
  cp "$PD/phase_diagram.png" "$OUT/phase_diagram.png"
fi
log "# figures in $FIGURES"
