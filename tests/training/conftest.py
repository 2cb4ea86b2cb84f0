"""Fixtures of the training tests."""

import pytest
import torch
from synth_busi import TinyNet, write_busi


@pytest.fixture
def busi(tmp_path):
    return write_busi(tmp_path / "busi")


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return TinyNet()
