"""AU Agent: OpenFace CSV -> sampled frames -> one description per frame -> text features.

Rooms: config.py (AUAgentConfig, CONFIG_KEYS, load_agent_config), identity.py (what identifies a
description: base model, adapter, prompt), backends.py (hf, template, vllm describers),
runtime.py (AUAgent: describe, cache, encode, per-video features), extract.py (a whole OpenFace
folder, resumable, one share per process), cli.py + __main__.py (`python -m
my_affectgpt.models.au_agent extract|plot`).
"""
from my_affectgpt.models.au_agent.backends import resolve_device
from my_affectgpt.models.au_agent.cli import main
from my_affectgpt.models.au_agent.config import (BACKENDS, CONFIG_KEYS, AUAgentConfig, find_agent_section,
                                                 load_agent_config)
from my_affectgpt.models.au_agent.extract import extract
from my_affectgpt.models.au_agent.runtime import NEUTRAL_DESCRIPTION, NEUTRAL_PROMPT, AUAgent

__all__ = ["AUAgent", "AUAgentConfig", "BACKENDS", "CONFIG_KEYS", "NEUTRAL_DESCRIPTION", "NEUTRAL_PROMPT",
           "extract", "find_agent_section", "load_agent_config", "main", "resolve_device"]
