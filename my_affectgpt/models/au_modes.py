"""How AffectGPT's AU branch reaches the LLM (`model.au_mode`); the model layer owns the meaning:
features = AU Agent text features [T, D] -> AU Q-Former; text = the AU Agent's descriptions as
prompt words; values = OpenFace AU vectors [T, 18] -> projection -> AU Q-Former (no AU Agent, no
text encoder); hybrid = values ++ text features [T, 18 + D] -> projection -> AU Q-Former."""
from __future__ import annotations

AU_MODES = ("features", "text", "values", "hybrid")
AU_VALUE_MODES = ("values", "hybrid")           # read OpenFace AU vectors
AU_AGENT_MODES = ("features", "text", "hybrid")  # need the AU Agent (descriptions / features)
