"""AU Agent supervised fine-tuning: a base chat LM + LoRA, trained with the transformers Trainer.

One readable recipe driven by `au_agent_lora_config.yaml`:
    python -m my_affectgpt.training.au_sft --config au_agent_lora_config.yaml [key=value ...]
(`train_au_agent.sh` runs the same through `accelerate launch`, on 1..N GPUs or the CPU).

What this package adds to Trainer + peft, and nothing more (one room each):
- data.py: JSONL chat samples (DESIGN.md §4) -> token ids, labels only on the answer + end-of-turn;
- loss.py: the output layer and cross-entropy run only at answer positions (the vocabulary is large,
  the answers are short), same value as the full computation;
- checkpoints.py: checkpoint-best, a copy of the adapter with the lowest eval loss, loadable by
  PeftModel.from_pretrained; the last step is always evaluated and saved so it can compete.
Checkpointing, resume, best-model tracking, logging, mixed precision and multi-GPU are the Trainer's.
config.py holds the recipe's schema and checks (the `lora` section is models/lora.py's LoraSettings),
trainer.py the Trainer subclass and its TrainingArguments, recipe.py build/run, cli.py the command.
"""
from my_affectgpt.models.lora import peft_lora_config
from my_affectgpt.training.au_sft.checkpoints import (BEST_DIR, RUN_RECORD, export_best, last_complete_checkpoint,
                                                      resume_point, run_record)
from my_affectgpt.training.au_sft.config import SFTConfig, check_config, load_config
from my_affectgpt.training.au_sft.data import (IGNORE, PadCollator, TokenizedChats, encode_chat,
                                               read_chat_jsonl)
from my_affectgpt.training.au_sft.loss import answer_loss_sum, shared_prefix_length
from my_affectgpt.training.au_sft.recipe import RESOLVED_CONFIG, build, run

__all__ = ["BEST_DIR", "IGNORE", "RESOLVED_CONFIG", "RUN_RECORD", "PadCollator", "SFTConfig", "TokenizedChats",
           "answer_loss_sum", "build", "check_config", "encode_chat", "export_best", "last_complete_checkpoint",
           "load_config", "peft_lora_config", "read_chat_jsonl", "resume_point", "run", "run_record",
           "shared_prefix_length"]
