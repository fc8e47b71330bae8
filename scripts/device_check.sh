#!/usr/bin/env bash
# One prepared check for a lent GPU (about 3-4 minutes on one GPU, well under 5), writing ONE JSON:
#   1. batched fbank on the device vs CPU: parity (max |device - cpu|) and clips/s, next to transformers' AST
#      extractor (scripts/bench_feature_extraction.py, 64 real 10 s clips);
#   2. a CR-AudioMAE ViT-B training step with bf16 at k = 1, 2, 6 views: s/step, CR(k) / (k x baseline), peak GPU
#      memory (scripts/bench_cr_step.py);
#   3. the efficiency benchmark on the device (scripts/benchmark_efficiency.py --device cuda): RTF and peak memory.
# Each step runs under its own timeout and is recorded as ok / failed (with the tail of its log), so one failing
# step does not lose the others.
#
#   bash scripts/device_check.sh                       # on the GPU machine: writes $OUT/device_check.json
#   bash scripts/device_check.sh --device cpu --quick  # the same harness on CPU with tiny settings (the tests)
#
# Options: --device cuda|cpu (default cuda), --quick (tiny models, one repeat), --output_dir DIR (default $OUT,
# else outputs/device_check). PYTHON picks the interpreter (default .venv/bin/python, else python3).
set -uo pipefail

DEVICE=cuda
QUICK=0
OUTPUT_DIR="${OUT:-outputs/device_check}"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --output_dir) OUTPUT_DIR="$2"; shift 2 ;;
    *) echo "device_check.sh: unknown argument $1 (use --device, --quick, --output_dir)" >&2; exit 2 ;;
  esac
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUTPUT_DIR" && OUTPUT_DIR="$(cd "$OUTPUT_DIR" && pwd)"
case "$PYTHON" in */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;; esac
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUTPUT_DIR/parts"
PARTS="$OUTPUT_DIR/parts"
STATUS="$PARTS/status.tsv"
: > "$STATUS"
STARTED=$(date +%s)

run_step() {  # name, timeout in s, command...
  local name="$1" limit="$2"; shift 2
  local begin end rc
  begin=$(date +%s)
  echo "[device_check] $name: $*" >&2
  timeout "$limit" "$@" > "$PARTS/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((end - begin))" >> "$STATUS"
  echo "[device_check] $name: exit $rc after $((end - begin)) s" >&2
}

if [ "$QUICK" = 1 ]; then
  FBANK_ARGS=(--clips 8 --batch-size 8 --repeats 1)
  CR_ARGS=(--models tiny --views 1 2 6 --batch_size 2 --steps 1 --rounds 1)
  EFFICIENCY_ARGS=(--quick --models hear cr_audiomae --durations 10 --threads 1)
else
  FBANK_ARGS=(--clips 64 --batch-size 64 --repeats 5)
  CR_ARGS=(--models vit-b --views 1 2 6 --batch_size 8 --steps 3 --rounds 2)
  EFFICIENCY_ARGS=(--models hear cr_audiomae ast --durations 10 60 --threads 1 --repeats 5)
fi
BF16=()
if [ "$DEVICE" != cpu ]; then BF16=(--bf16); fi  # the paper's GPUs train in bf16; CPU autocast is only slow

run_step fbank 90 "$PYTHON" scripts/bench_feature_extraction.py --device "$DEVICE" --threads 1 "${FBANK_ARGS[@]}" \
  --output "$PARTS/fbank.json"
run_step cr_step 120 "$PYTHON" scripts/bench_cr_step.py --device "$DEVICE" "${BF16[@]}" "${CR_ARGS[@]}" \
  --output "$PARTS/cr_step.json"
run_step efficiency 120 "$PYTHON" scripts/benchmark_efficiency.py --device "$DEVICE" "${EFFICIENCY_ARGS[@]}" \
  --output_dir "$PARTS/efficiency"

"$PYTHON" - "$OUTPUT_DIR" "$DEVICE" "$QUICK" "$STARTED" <<'EOF'
import json, os, platform, sys, time
from pathlib import Path

import torch

out, device, quick, started = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
parts = out / "parts"
files = {"fbank": parts / "fbank.json", "cr_step": parts / "cr_step.json", "efficiency": parts / "efficiency" / "results.json"}
report = {"device": device, "quick": quick, "torch": torch.__version__, "platform": platform.platform(),
          "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
          "load_average": os.getloadavg(), "steps": {}}
for line in (parts / "status.tsv").read_text().splitlines():
    name, rc, seconds = line.split("\t")
    step = {"exit_code": int(rc), "seconds": int(seconds), "ok": rc == "0" and files[name].is_file()}
    if step["ok"]:
        step["result"] = json.loads(files[name].read_text())
    else:
        step["log_tail"] = (parts / f"{name}.log").read_text()[-3000:]
    report["steps"][name] = step
fbank = report["steps"]["fbank"].get("result", {})
cr = report["steps"]["cr_step"].get("result", {})
efficiency = report["steps"]["efficiency"].get("result", {})
report["summary"] = {
    "fbank_device_vs_cpu_max_abs_diff": fbank.get("device_vs_cpu_max_abs_diff"),
    "fbank_clips_per_s": {row["extractor"]: row["clips_per_s"] for row in fbank.get("rows", [])},
    "cr_ratio_to_k_baseline_steps": {f"{r['model']} k={r['num_views']}": r["ratio_to_k_baseline_steps"]
                                     for r in cr.get("results", [])},
    "cr_peak_gpu_memory_mb": {f"{r['model']} k={r['num_views']}": r["peak_gpu_memory_mb"] for r in cr.get("results", [])},
    "efficiency_rtf": {r["model"]: r["rtf"] for r in efficiency.get("results", [])},
    "efficiency_peak_gpu_memory_mb": {r["model"]: r.get("peak_gpu_memory_mb") for r in efficiency.get("results", [])},
    "all_ok": all(step["ok"] for step in report["steps"].values()),
    "wall_s": time.time() - started,
}
(out / "device_check.json").write_text(json.dumps(report, indent=1))
print(json.dumps(report["summary"], indent=1))
print(f"wrote {out / 'device_check.json'}")
sys.exit(0 if report["summary"]["all_ok"] else 1)
EOF
