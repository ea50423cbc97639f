"""AffectGPT (ICML 2025, MER-Caption+) with the AU branch, in one file to read top to bottom.

    faces/frames --CLIP (frozen)--> [B, F, Dv] --fusion--> [B, Q, D_llm] --\
    audio clips  --HuBERT (frozen)-> [B, C, Da] --fusion--> [B, Q, D_llm] ---+--> placeholder
    audio ++ faces (or frames), each projected to one width --fusion--> multi  |   positions of
    AU features [B, T, D_au] --Q-Former--> [B, num_au_query_token, D_llm] ----/   the prompt
                                                                               --> LLM + LoRA
`model.au_mode` (models/au_modes.py AU_MODES) decides what the AU branch reads:
- features: the AU Agent's text features [B, T, D_au] (batch "au") -> AU Q-Former;
- text: the AU Agent's descriptions as prompt words (below), no AU tokens;
- values: OpenFace AU vectors [B, T, 18] (batch "au_values", au_values.py) -> trainable projection
  (`au_proj`) -> AU Q-Former; no AU Agent or text encoder anywhere;
- hybrid: values ++ text features [B, T, 18 + D_au] -> projection -> AU Q-Former.
The prompt holds one placeholder block per modality present, in `Modalities.ordered` order:
`<Multi><MultiHere>…</Multi> <Audio><AudioHere>…</Audio> <Face>…</Face> <Frame>…</Frame> <AU>…</AU>`
(each placeholder repeated once per fused token), or with `au_mode: text` the frames' AU
descriptions as `<Nonverbal>desc1; desc2</Nonverbal>`, then `Subtitle: …` and the question, wrapped
in the LLM's chat template (or "### Human: … ### Assistant:" when its tokenizer has none). The
embeddings at placeholder positions are replaced by the fused modality tokens (`inputs_embeds`).
The loss covers the answer tokens only (+ end-of-sequence); everything else is labelled -100.

Trainable: LoRA on the LLM, the fusion modules, the multi projections and the AU-values projection.
Encoders and the base LLM are frozen. A video whose AU input is unusable (`au_mask` False, in
every AU mode) gets zeroed AU tokens that are masked out of attention. Position ids follow the
attention mask (masked tokens take no position), identically in training and in generation.
"""
from __future__ import annotations

import warnings
from typing import Iterable, Mapping

import torch
from torch import nn

from my_affectgpt.common.config import choice_error
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.au_modes import AU_MODES, AU_VALUE_MODES
from my_affectgpt.models.au_values import NUM_AU_VALUES, AUValueProjection
from my_affectgpt.models.encoders import AudioEncoder, VisualEncoder, feature_dir_dims
from my_affectgpt.models.qformer import QFormerFusion, build_fusion
from my_affectgpt.models.affectgpt_llm import PLACEHOLDERS, load_llm, load_tokenizer

DEFAULT_AU_FEATURE_DIM = 512  # CLIP ViT-B/32 text features, the AU Agent's default encoder
TAGS = {"multi": "Multi", "audio": "Audio", "face": "Face", "frame": "Frame", "au": "AU"}
BATCH_KEYS = {"face": "faces", "frame": "frames", "audio": "audio"}  # modality -> batch key
PLAIN_HUMAN, PLAIN_ASSISTANT = "### Human: ", "### Assistant: "
# Words every prompt uses, so a tokenizer trained from the dataset's text encodes them compactly.
PROMPT_VOCABULARY = (
    " ".join(f"<{t}></{t}>" for t in (*TAGS.values(), "Nonverbal")),
    "Subtitle: ", PLAIN_HUMAN, PLAIN_ASSISTANT, "user assistant system",
    "Please recognize all possible emotional states of the character.",
    "Please infer the person's emotional state and provide your reasoning process.",
)


def collapse_repeats(items: Iterable[str]) -> list:
    """Consecutive equal descriptions said once: 'a; a; b; a' -> 'a; b; a'."""
    out = []
    for item in items:
        item = str(item).strip()
        if item and (not out or out[-1] != item):
            out.append(item)
    return out


class AffectGPT(nn.Module):
    def __init__(self, model_cfg: Mapping, modalities, *, tokenizer_corpus: Iterable[str] = (),
                 work_dir=None, feature_dims: Mapping[str, int] | None = None):
        """`feature_dims` gives input widths the config cannot: "au" (the AU text encoder's D;
        else model_cfg.au_feature_dim, else 512) and, with encoder_feature_dir, "face", "frame",
        "audio" (else read from the first .npy per folder)."""
        super().__init__()
        self.modalities = modalities
        self.au_mode = str(model_cfg.get("au_mode", "features"))
        if choice_error(self.au_mode, AU_MODES):
            raise InputError("model.au_mode", choice_error(self.au_mode, AU_MODES))
        self.max_length = int(model_cfg["max_length"])
        self.max_new_tokens = int(model_cfg["max_new_tokens"])
        self.feature_dir = model_cfg.get("encoder_feature_dir")

        # Language model + tokenizer, LoRA on the frozen base.
        self.tokenizer = load_tokenizer(model_cfg, [*tokenizer_corpus, *PROMPT_VOCABULARY], work_dir)
        self.llm = self._with_lora(load_llm(model_cfg, self.tokenizer), model_cfg["lora"])
        d_llm = self.llm.get_base_model().get_input_embeddings().embedding_dim

        # Frozen encoders (or none: precomputed features) and the input width of every modality.
        self.visual_encoder = self.audio_encoder = None
        dims = self._input_dims(model_cfg, feature_dims)

        # Trainable fusion: one module per modality token that becomes LLM tokens.
        self.fusion = nn.ModuleDict()
        for token in modalities.ordered:
            if token == "text" or (token == "au" and self.au_mode == "text"):
                continue  # these go into the prompt as words
            where = f"model.fusion.{token}"
            if token == "au":
                au_width = dims.get("au")
                if self.au_mode in AU_VALUE_MODES:  # values (++ text features) -> one width
                    self.au_proj = AUValueProjection(int(model_cfg["qformer_hidden_size"]),
                                                     text_dim=dims["au"] if self.au_mode == "hybrid" else 0)
                    au_width = self.au_proj.out_dim
                self.fusion["au"] = QFormerFusion(
                    au_width, d_llm, num_query=int(model_cfg["num_au_query_token"]),
                    hidden_size=int(model_cfg["qformer_hidden_size"]),
                    num_layers=int(model_cfg["qformer_layers"]), num_heads=int(model_cfg["qformer_heads"]))
            elif token == "multi":
                # Audio clips and images come from different encoders: bring both to one width,
                # then one fusion module reads the concatenated sequence.
                width = int(model_cfg["qformer_hidden_size"])
                self.multi_proj = nn.ModuleDict({
                    "audio": nn.Linear(dims["audio"], width),
                    "visual": nn.Linear(dims[modalities.multi_visual], width)})
                self.fusion["multi"] = build_fusion(model_cfg["fusion"]["multi"], width, d_llm,
                                                    model_cfg, where=where)
            else:
                self.fusion[token] = build_fusion(model_cfg["fusion"][token], dims[token], d_llm,
                                                  model_cfg, where=where)
        self.input_dims = dims
        self.placeholder_ids = {t: self.tokenizer.convert_tokens_to_ids(PLACEHOLDERS[t])
                                for t in self.fusion}
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_id = self.tokenizer.eos_token_id
        # Free text must not smuggle in a placeholder or a chat-control token.
        self._reserved = sorted({*PLACEHOLDERS.values(), *self.tokenizer.all_special_tokens},
                                key=len, reverse=True)

    # ---- construction helpers ---------------------------------------------------------------

    @staticmethod
    def _with_lora(llm, lora: Mapping):
        from peft import get_peft_model

        from my_affectgpt.models.lora import peft_lora_config

        config = peft_lora_config(lora, llm.config.num_hidden_layers)
        try:
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
                return get_peft_model(llm, config)  # freezes every base parameter
        except ValueError as err:  # e.g. a target module the LLM does not have
            raise InputError("model.lora", str(err)) from None

    def _input_dims(self, model_cfg: Mapping, feature_dims: Mapping | None) -> dict:
        mods = self.modalities
        needed = sorted(mods.visual_inputs) + (["audio"] if mods.needs_audio else [])
        given = dict(feature_dims or {})
        dims = {}
        if self.feature_dir:
            missing = [n for n in needed if n not in given]
            dims.update(feature_dir_dims(self.feature_dir, missing) if missing else {})
        else:
            if mods.visual_inputs:
                self.visual_encoder = VisualEncoder.from_config(model_cfg)
                dims.update({n: self.visual_encoder.out_dim for n in mods.visual_inputs})
            if mods.needs_audio:
                self.audio_encoder = AudioEncoder.from_config(model_cfg)
                dims["audio"] = self.audio_encoder.out_dim
            given = {k: v for k, v in given.items() if k not in dims}  # encoders decide those
        dims.update({k: int(v) for k, v in given.items()})
        if "au" in mods and self.au_mode in AU_VALUE_MODES:
            dims["au_values"] = NUM_AU_VALUES
        if self.au_mode == "values":
            dims.pop("au", None)  # no text features in this mode
        else:
            dims.setdefault("au", int(model_cfg.get("au_feature_dim") or DEFAULT_AU_FEATURE_DIM))
        return dims

    @property
    def device(self) -> torch.device:
        return self.llm.get_base_model().get_input_embeddings().weight.device

    # ---- modality tokens --------------------------------------------------------------------

    def _encoded(self, batch: Mapping, name: str, cache: dict) -> torch.Tensor:
        """[B, N, D] features of "face", "frame" or "audio" (encoded once per call)."""
        if name not in cache:
            key = BATCH_KEYS[name]
            if key not in batch:
                raise InputError(key, f"batch has no '{key}' but the modalities need it")
            x = batch[key].to(self.device)
            if self.feature_dir is None:
                x = (self.audio_encoder if name == "audio" else self.visual_encoder)(x)
            x = x.float()
            if x.dim() != 3 or x.shape[-1] != self.input_dims[name]:
                raise InputError(key, f"expected [B, N, {self.input_dims[name]}] features, "
                                      f"got {tuple(x.shape)}")
            cache[name] = x
        return cache[name]

    def _au_batch(self, batch: Mapping, key: str) -> torch.Tensor:
        """[B, T, width] of batch "au" (text features) or "au_values", width checked."""
        if key not in batch:
            raise InputError(key, f"batch has no '{key}' but model.au_mode {self.au_mode} needs it")
        x = batch[key].to(self.device).float()
        if x.dim() != 3 or x.shape[-1] != self.input_dims[key]:
            what = "AU values" if key == "au_values" else "AU features"
            raise InputError(key, f"{what} have width {x.shape[-1]} but the model was built for "
                                  f"{self.input_dims[key]} (feature_dims)")
        return x

    def _au_inputs(self, batch: Mapping) -> torch.Tensor:
        """The AU Q-Former's input [B, T, width] for this au_mode (module docstring)."""
        if self.au_mode == "features":
            return self._au_batch(batch, "au")
        values = self._au_batch(batch, "au_values")
        text = self._au_batch(batch, "au") if self.au_mode == "hybrid" else None
        if text is not None and text.shape[:2] != values.shape[:2]:
            raise InputError("au_values", f"AU values {tuple(values.shape)} and AU features "
                                          f"{tuple(text.shape)} do not cover the same frames")
        return self.au_proj(values, text)

    def modality_tokens(self, batch: Mapping) -> dict:
        """token -> (fused embeddings [B, Q, D_llm], valid [B] bool)."""
        cache, out = {}, {}
        for token, fuse in self.fusion.items():
            if token == "au":
                au = self._au_inputs(batch)
                valid = _au_mask(batch, au.shape[0]).to(self.device)
                out[token] = (fuse(au, valid[:, None].expand(-1, au.shape[1])), valid)
                continue
            if token == "multi":
                audio = self.multi_proj["audio"](self._encoded(batch, "audio", cache))
                visual = self.multi_proj["visual"](
                    self._encoded(batch, self.modalities.multi_visual, cache))
                x = torch.cat([audio, visual], dim=1)
            else:
                x = self._encoded(batch, token, cache)
            out[token] = (fuse(x), torch.ones(x.shape[0], dtype=torch.bool, device=x.device))
        return out

    # ---- prompts ----------------------------------------------------------------------------

    def _clean(self, text) -> str:
        text = "" if text is None else str(text)
        for tok in self._reserved:
            text = text.replace(tok, "")
        return text.strip()

    def user_text(self, batch: Mapping, i: int, subtitle: str | None = None) -> str:
        """The user turn for item i (`subtitle` overrides the batch's, for truncation)."""
        blocks, lines = [], []
        for token in self.modalities.ordered:
            if token == "text":
                sub = batch["subtitles"][i] if subtitle is None else subtitle
                lines.append(f"Subtitle: {self._clean(sub)}")
            elif token == "au" and self.au_mode == "text":
                descs = []
                if bool(_au_mask(batch, len(batch["questions"]))[i]):
                    descs = collapse_repeats(self._clean(d) for d in batch["au_text"][i])
                blocks.append(f"<Nonverbal>{'; '.join(descs)}</Nonverbal>")
            else:
                n = self.fusion[token].num_tokens
                blocks.append(f"<{TAGS[token]}>{PLACEHOLDERS[token] * n}</{TAGS[token]}>")
        head = [" ".join(blocks)] if blocks else []
        return "\n".join([*head, *lines, self._clean(batch["questions"][i])])

    def render(self, user: str) -> str:
        """Chat template with the generation prompt, or the plain Human/Assistant format."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                                      tokenize=False, add_generation_prompt=True)
        return f"{PLAIN_HUMAN}{user}\n{PLAIN_ASSISTANT}"

    def _ids(self, text: str) -> list:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, batch: Mapping, i: int) -> list:
        """Token ids of item i's prompt; a subtitle too long for max_length is cut (the
        placeholders and the question must stay whole)."""
        ids = self._ids(self.render(self.user_text(batch, i)))
        budget = self.max_length - 1  # room for at least one answer token
        if len(ids) > budget and "text" in self.modalities:
            sub = self._ids(self._clean(batch["subtitles"][i]))
            keep = max(0, len(sub) - (len(ids) - budget) - 2)  # 2: re-tokenising may merge differently
            cut = self.tokenizer.decode(sub[:keep], skip_special_tokens=True)
            ids = self._ids(self.render(self.user_text(batch, i, subtitle=cut)))
        if len(ids) > budget:
            raise InputError("model.max_length", f"the prompt of '{batch['names'][i]}' has "
                                                 f"{len(ids)} tokens; max_length is {self.max_length}")
        return ids

    def tokenize(self, batch: Mapping, with_answers: bool, padding_side: str):
        """(input_ids, attention_mask, labels) [B, L]; labels -100 outside the answers."""
        seqs, labels = [], []
        for i in range(len(batch["questions"])):
            prompt = self.prompt_ids(batch, i)
            answer = []
            if with_answers:
                answer = self._ids(self._clean(batch["answers"][i])) + [self.eos_id]
                answer = answer[:self.max_length - len(prompt)]
            seqs.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
        length = max(map(len, seqs))
        ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        lab = torch.full_like(ids, -100)
        attn = torch.zeros_like(ids)
        for row, (seq, lbl) in enumerate(zip(seqs, labels)):
            span = slice(length - len(seq), length) if padding_side == "left" else slice(0, len(seq))
            ids[row, span] = torch.tensor(seq)
            lab[row, span] = torch.tensor(lbl)
            attn[row, span] = 1
        return ids.to(self.device), attn.to(self.device), lab.to(self.device)

    # ---- embedding ---------------------------------------------------------------------------

    def embed(self, ids: torch.Tensor, attn: torch.Tensor, tokens: Mapping):
        """Word embeddings with placeholder positions replaced by the modality tokens; invalid
        modality tokens (au_mask False) are masked out of attention. Returns (embeds, attn)."""
        emb = self.llm.get_base_model().get_input_embeddings()(ids)
        for token, (feats, valid) in tokens.items():
            where = ids == self.placeholder_ids[token]
            if int(where.sum()) != feats.shape[0] * feats.shape[1]:
                raise RuntimeError(f"{token}: {int(where.sum())} placeholders for "
                                   f"{feats.shape[0]}x{feats.shape[1]} modality tokens")
            emb = emb.masked_scatter(where.unsqueeze(-1), feats.to(emb.dtype))
            attn = attn * ~(where & ~valid[:, None])
        return emb, attn

    @staticmethod
    def position_ids(attn: torch.Tensor) -> torch.Tensor:
        """As generate computes them: masked tokens take no position."""
        return (attn.long().cumsum(-1) - 1).clamp(min=0)

    # ---- public API -------------------------------------------------------------------------

    def forward(self, batch: Mapping):
        """Teacher-forced pass; `.loss` covers the answer tokens only, `.logits` [B, L, V]."""
        ids, attn, labels = self.tokenize(batch, with_answers=True, padding_side="right")
        emb, attn = self.embed(ids, attn, self.modality_tokens(batch))
        labels = labels.masked_fill(attn == 0, -100)
        return self.llm(inputs_embeds=emb, attention_mask=attn,
                        position_ids=self.position_ids(attn), labels=labels)

    @torch.no_grad()
    def generate(self, batch: Mapping, max_new_tokens: int | None = None) -> list:
        """Greedy answers, one string per item (answers in the batch are ignored)."""
        from transformers import GenerationConfig

        was_training = self.training
        self.eval()
        try:
            ids, attn, _ = self.tokenize(batch, with_answers=False, padding_side="left")
            emb, attn = self.embed(ids, attn, self.modality_tokens(batch))
            base_eos = self.llm.get_base_model().generation_config.eos_token_id
            eos = sorted({self.eos_id, *(base_eos if isinstance(base_eos, list) else
                                          [base_eos] if base_eos is not None else [])})
            # A fresh config: the base model's own may ask for sampling.
            config = GenerationConfig(max_new_tokens=int(max_new_tokens or self.max_new_tokens),
                                      do_sample=False, num_beams=1, eos_token_id=eos,
                                      pad_token_id=self.pad_id)
            out = self.llm.generate(inputs_embeds=emb, attention_mask=attn,
                                    position_ids=self.position_ids(attn), generation_config=config)
        finally:
            self.train(was_training)
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def trainable_state_dict(self) -> dict:
        """The trained parameters only (LoRA, fusion, projections incl. au_proj), by stable names."""
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: Mapping) -> None:
        own = {name: p for name, p in self.named_parameters() if p.requires_grad}
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise InputError("checkpoint", "does not fit this model: "
                             f"{len(missing)} missing (e.g. {missing[:3]}), "
                             f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        with torch.no_grad():
            for name, p in own.items():
                if tuple(state[name].shape) != tuple(p.shape):
                    raise InputError("checkpoint", f"{name}: shape {tuple(state[name].shape)}, "
                                                   f"model has {tuple(p.shape)}")
                p.copy_(state[name])


def _au_mask(batch: Mapping, size: int) -> torch.Tensor:
    mask = batch.get("au_mask")
    if mask is None:
        return torch.ones(size, dtype=torch.bool)
    return torch.as_tensor(mask, dtype=torch.bool)
