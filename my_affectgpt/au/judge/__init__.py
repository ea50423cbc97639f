"""The AU judge: what a free-text face description asserts about each of the 18 OpenFace AUs.

`read_description(text)` -> `Reading` (present AUs with their band, denied AUs, movements
outside the 18, emotion words); `judge_scores` scores readings against the AU values the texts
were written from, `agreement` compares two readings of the same texts. The judge shares no
vocabulary with the rule teacher or the lexicon (tests/test_au_judge.py checks its imports), so
it can score them; it sits in the au layer so the AU Agent's runtime can check its own outputs.
Its command line: `python -m my_affectgpt.evaluation.au_judge`.
"""
from .reader import Reading, read_description
from .scores import agreement, judge_scores

__all__ = ["Reading", "read_description", "judge_scores", "agreement"]
