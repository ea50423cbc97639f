"""Every prompt the AU Agent and its teachers use, versioned in one place.

Bump PROMPT_VERSION whenever any text here changes: cached descriptions and AU features are
keyed by it, so old ones become stale instead of silently mixing with new ones.
"""
from __future__ import annotations

PROMPT_VERSION = "au-v3"  # v3: FACS band words (pronounced = marked, extreme = severe), compact long states

# Short on purpose: every token of the system prompt is paid for in every training step and
# every generated description.
SYSTEM_PROMPT = "You describe facial muscle movements objectively."

USER_TEMPLATE = ("Describe these facial Action Units briefly, by face region, with intensity "
                 "words and no emotion words.\nAUs: {au_text}")


def user_prompt(au_text: str) -> str:
    return USER_TEMPLATE.format(au_text=au_text)


def chat_messages(au_text: str, answer: str | None = None) -> list:
    """System + user (+ assistant) messages for one frame, as stored in the JSONL dataset."""
    msgs = [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt(au_text)}]
    if answer is not None:
        msgs.append({"role": "assistant", "content": answer})
    return msgs


# Instruction for an external teacher model (GPT-4o, Gemini, a local vLLM/Ollama server). It
# pins the output style to what the rule teacher writes and the lexicon scores.
API_TEACHER_SYSTEM = (
    "You are a FACS (Facial Action Coding System) expert. Given OpenFace Action Unit "
    "intensities on a 0-5 scale, write a short fluent description of the visible "
    "muscle movements, one sentence per face region (brows, eyes, cheeks, nose, mouth, chin and jaw). "
    "Name every listed AU by its FACS name or a plain paraphrase, without AU codes, e.g. "
    "'a marked cheek raiser', in under 55 words (a CLIP text encoder reads at most 77 tokens). "
    "Use exactly these intensity words: below 1.0 'faint', "
    "1.0-1.9 'slight', 2.0-2.9 'marked', 3.0-3.9 'strong', 4.0 and above 'maximal'. "
    "Never mention an AU that is not listed. Never name or guess an emotion. "
    "If the input is 'neutral', say that no facial action unit is active.")
