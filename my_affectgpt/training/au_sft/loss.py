"""AU Agent SFT loss: the output layer and cross-entropy run only at answer positions (the
vocabulary is large, the answers are short), same value as the full computation; optionally the
prompt head that all rows share runs once per batch."""
from __future__ import annotations

from my_affectgpt.models.generation import MIN_SHARED_HEAD, head_cache
from my_affectgpt.training.au_sft.data import IGNORE


def shared_prefix_length(input_ids, attention_mask, keep) -> int:
    """Leading columns that every row of the batch shares: same token, attended, and not scored
    (`keep[:, t]` marks positions whose next token is labelled). 0 for a batch of one."""
    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0) & ~keep.any(0)
    return int(same.long().cumprod(0).sum())


def answer_loss_sum(model, input_ids, attention_mask, labels, share_prefix: bool = False):
    """(summed token cross-entropy, token count, outputs) over labelled positions only.

    Position t predicts token t+1. The boolean `logits_to_keep` mask makes the model apply its
    output layer only where the next token is labelled, instead of at every position.

    share_prefix: run the prompt head that all rows share (system prompt + instruction: 38 of
    the ~150 tokens of an AU Agent sample for SmolLM2) once for the whole batch and let every
    row attend to its keys/values, instead of recomputing it per row. Same loss and gradients
    (a test pins it), fewer FLOPs. Needs one process without gradient checkpointing (the second
    forward call reuses the first one's cache); the Trainer below decides.
    """
    import torch
    import torch.nn.functional as F

    targets = labels[:, 1:]
    wanted = targets.ne(IGNORE)
    keep = F.pad(wanted, (0, 1), value=False)
    shared = shared_prefix_length(input_ids, attention_mask, keep) if share_prefix else 0
    if not MIN_SHARED_HEAD <= shared < input_ids.shape[1]:
        shared = 0
    cache = head_cache(model, input_ids[:1, :shared], attention_mask[:1, :shared]) if shared else None
    if cache is None:
        shared = 0
    else:
        cache.batch_repeat_interleave(input_ids.shape[0])  # differentiable copies of one row
    outputs = model(input_ids=input_ids[:, shared:], attention_mask=attention_mask,
                    past_key_values=cache, logits_to_keep=keep[:, shared:], use_cache=cache is not None)
    logits = outputs.logits
    if logits.dim() == 3:  # a model that ignores a mask-shaped logits_to_keep: full logits
        logits = logits[keep[:, shared:]]  # keep's last column is False: same rows as `wanted`
    flat_targets = targets[wanted]
    loss_sum = F.cross_entropy(logits.float(), flat_targets, reduction="sum")
    return loss_sum, torch.as_tensor(flat_targets.numel(), device=loss_sum.device), outputs
