#!/usr/bin/env bash
# Train the AU Agent LoRA adapter (my_affectgpt/training/au_sft/) through `accelerate launch`:
# one process per visible GPU (DDP), or one CPU process when there is no GPU. Same command on 1..N GPUs.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
CONFIG="$SCRIPT_DIR/au_agent_lora_config.yaml"
OVERRIDES=()

usage() {
  cat <<EOF
usage: bash train_au_agent.sh [--config FILE] [--deepspeed FILE] [key=value ...]

Fine-tune the AU Agent (LoRA SFT with transformers Trainer + peft) as the YAML recipe says.
Result: <output_dir>/checkpoint-best (the adapter with the lowest eval loss). Rerunning with
the same output_dir resumes from the last complete checkpoint.

  --config FILE     YAML recipe (default: au_agent_lora_config.yaml beside this script)
  --deepspeed FILE  DeepSpeed config, same as training.deepspeed=FILE (needs: pip install deepspeed),
                    e.g. train_configs/deepspeed_zero3.json for 7B on smaller GPUs
  key=value         OmegaConf dotlist override of any config key; unknown keys are an error
  -h, --help        this help

Relative paths (in the YAML and in overrides) are relative to the current directory.
Processes: one per GPU that torch sees (set CUDA_VISIBLE_DEVICES to choose), else one on CPU.
Environment: PYTHON (interpreter, default: python), AU_AGENT_CACHE (converted embedded models).

examples:
  bash train_au_agent.sh
  bash train_au_agent.sh model=smollm2-135m-instruct output_dir=output/au_agent_smollm2_lora \\
      lora.r=16 lora.alpha=32 training.batch_size=8 training.grad_accum=1 training.epochs=1
  CUDA_VISIBLE_DEVICES=0,1 bash train_au_agent.sh --deepspeed train_configs/deepspeed_zero3.json
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --config)
      [[ $# -ge 2 ]] || { echo "error: --config needs a file" >&2; exit 2; }
      CONFIG="$2"; shift 2 ;;
    --config=*) CONFIG="${1#--config=}"; shift ;;
    --deepspeed)
      [[ $# -ge 2 ]] || { echo "error: --deepspeed needs a file" >&2; exit 2; }
      OVERRIDES+=("training.deepspeed=$2"); shift 2 ;;
    --deepspeed=*) OVERRIDES+=("training.deepspeed=${1#--deepspeed=}"); shift ;;
    -*) echo "error: $1: unknown option (see --help)" >&2; exit 2 ;;
    *=*) OVERRIDES+=("$1"); shift ;;
    *) echo "error: $1: expected key=value (see --help)" >&2; exit 2 ;;
  esac
done

# The package lives beside this script; make it importable from any working directory.
export PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}"

# Check the config (unknown keys, missing files) and print it resolved, before any process starts.
echo "== resolved config ($CONFIG)"
"$PYTHON" -m my_affectgpt.training.au_sft --config "$CONFIG" --print-config ${OVERRIDES[@]+"${OVERRIDES[@]}"}

HW="$("$PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0, torch.get_num_threads())')"
read -r NGPU NTHREADS <<<"$HW"
LAUNCH=(--num_machines 1 --mixed_precision no --dynamo_backend no)
if [[ "$NGPU" -eq 0 ]]; then
  LAUNCH+=(--cpu --num_processes 1 --num_cpu_threads_per_process "$NTHREADS")
  echo "== no GPU visible: 1 CPU process"
elif [[ "$NGPU" -eq 1 ]]; then
  LAUNCH+=(--num_processes 1)
  echo "== 1 GPU"
else
  LAUNCH+=(--multi_gpu --num_processes "$NGPU")
  echo "== $NGPU GPUs: distributed data parallel"
fi

export AU_AGENT_CONFIG_SHOWN=1  # already printed above
# Idle OpenMP threads sleep instead of spinning: on a busy CPU, spinning made steps ~10x slower.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "$PYTHON" -m accelerate.commands.launch "${LAUNCH[@]}" \
  -m my_affectgpt.training.au_sft --config "$CONFIG" ${OVERRIDES[@]+"${OVERRIDES[@]}"}
