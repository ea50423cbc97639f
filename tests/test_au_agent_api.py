"""The AU Agent's public surface after the split into a package: the documented import and command,
and the encoder parameter, which takes a loaded encoder, never the spec string of the config."""
from __future__ import annotations

import pytest

from conftest import run_cli
from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig


class _Encoder:
    dim = 4

    def encode(self, texts):
        raise AssertionError("not called here")


def test_encoder_takes_a_loaded_encoder_not_a_spec():
    config = AUAgentConfig(backend="template")
    with pytest.raises(TypeError, match="text_encoder='minilm'"):
        AUAgent(config, encoder="minilm")
    encoder = _Encoder()
    assert AUAgent(config, encoder=encoder).text_encoder() is encoder


def test_text_encoder_is_the_config_spec():
    agent = AUAgent(AUAgentConfig(backend="template"), text_encoder="minilm")
    assert agent.config.text_encoder == "minilm"
    with pytest.raises(TypeError, match="encoder=..."):
        AUAgent(backend="template", text_encoder=_Encoder())


def test_module_command_still_runs():
    res = run_cli("-m", "my_affectgpt.models.au_agent", "--help")
    assert res.returncode == 0 and "extract" in res.stdout and "plot" in res.stdout
