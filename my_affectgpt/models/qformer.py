"""Fusion modules: a sequence of modality features [B, N, D_in] -> LLM input tokens [B, Q, D_llm].

Three kinds, one interface `forward(x, mask=None) -> [B, num_tokens, out_dim]`:

- `QFormerFusion` ("qformer"): learned query tokens read the inputs through a BLIP-2 Q-Former
  (transformers Blip2QFormerModel, cross-attention in every layer), then a Linear to LLM width.
- `AttentionPooling` ("attention"): a learned score per input, softmax over the inputs,
  weighted sum, Linear -> 1 token.
- `MeanPooling` ("mean"): mean of the inputs, Linear -> 1 token.

`mask` [B, N] (True = real input) leaves padded or missing inputs out. An item with no real input
at all (an AU-less video) gives all-zero tokens, never NaN, so the caller can mask it out.
Inputs get a LayerNorm first (features of different encoders live on very different scales) and,
for the Q-Former, a learned position embedding (frame order matters; the Q-Former has none).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from my_affectgpt.common.errors import InputError

MAX_INPUTS = 256  # longest input sequence the Q-Former's position embedding covers


def _no_empty_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask with one position opened in rows that have none, which rows had any).

    Attention over an all-masked row is 0/0 (NaN); opening one position keeps it finite, and the
    caller zeroes those rows' outputs afterwards.
    """
    has_any = mask.any(dim=1)
    safe = mask.clone()
    safe[:, 0] |= ~has_any
    return safe, has_any


class QFormerFusion(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, *, num_query: int, hidden_size: int,
                 num_layers: int, num_heads: int, max_inputs: int = MAX_INPUTS):
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        if hidden_size % num_heads:
            raise InputError("model.qformer_hidden_size",
                             f"{hidden_size} is not divisible by model.qformer_heads={num_heads}")
        config = Blip2QFormerConfig(hidden_size=hidden_size, num_hidden_layers=num_layers,
                                    num_attention_heads=num_heads, intermediate_size=4 * hidden_size,
                                    cross_attention_frequency=1, encoder_hidden_size=in_dim)
        self.num_tokens = num_query
        self.max_inputs = max_inputs
        self.input_norm = nn.LayerNorm(in_dim)
        self.input_pos = nn.Embedding(max_inputs, in_dim)
        nn.init.normal_(self.input_pos.weight, std=0.02)
        self.query_tokens = nn.Parameter(torch.randn(1, num_query, hidden_size) * 0.02)
        self.qformer = Blip2QFormerModel(config)
        self.proj = nn.Linear(hidden_size, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, _ = x.shape
        if n > self.max_inputs:
            raise InputError("model", f"{n} inputs to one Q-Former; at most {self.max_inputs}")
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=x.device)
        safe, has_any = _no_empty_rows(mask.bool())
        x = self.input_norm(x) + self.input_pos.weight[:n]
        x = x * safe.unsqueeze(-1)  # masked inputs carry nothing, whatever they held
        out = self.qformer(query_embeds=self.query_tokens.expand(b, -1, -1),
                           encoder_hidden_states=x,
                           encoder_attention_mask=safe.long()).last_hidden_state
        return self.proj(out) * has_any.view(b, 1, 1)


class AttentionPooling(nn.Module):
    num_tokens = 1

    def __init__(self, in_dim: int, out_dim: int, **_):
        super().__init__()
        self.input_norm = nn.LayerNorm(in_dim)
        self.score = nn.Linear(in_dim, 1)
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_norm(x)
        scores = self.score(x).squeeze(-1)                                    # [B, N]
        if mask is not None:
            safe, has_any = _no_empty_rows(mask.bool())
            scores = scores.masked_fill(~safe, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1).unsqueeze(-1)
        out = self.proj((weights * x).sum(dim=1, keepdim=True))              # [B, 1, out]
        return out if mask is None else out * has_any.view(-1, 1, 1)


class MeanPooling(nn.Module):
    num_tokens = 1

    def __init__(self, in_dim: int, out_dim: int, **_):
        super().__init__()
        self.input_norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.input_norm(x)
        if mask is None:
            return self.proj(x.mean(dim=1, keepdim=True))
        m = mask.to(x.dtype).unsqueeze(-1)
        mean = (x * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1)
        return self.proj(mean) * mask.any(dim=1).view(-1, 1, 1)


FUSIONS = {"qformer": QFormerFusion, "attention": AttentionPooling, "mean": MeanPooling}


def build_fusion(kind: str, in_dim: int, out_dim: int, model_cfg: Mapping, *,
                 num_query: int | None = None, where: str = "model.fusion") -> nn.Module:
    """A fusion module by name; Q-Former sizes come from the model config."""
    if kind not in FUSIONS:
        raise InputError(where, f"unknown fusion '{kind}'; choose one of: {', '.join(FUSIONS)}")
    return FUSIONS[kind](in_dim, out_dim,
                         num_query=int(num_query or model_cfg["num_query_token"]),
                         hidden_size=int(model_cfg["qformer_hidden_size"]),
                         num_layers=int(model_cfg["qformer_layers"]),
                         num_heads=int(model_cfg["qformer_heads"]))
