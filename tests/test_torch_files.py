"""torch files are read with ``weights_only=True``; a refusal or a foreign file is one line naming the file."""
from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from omnipipe.losses.lpips import BackboneWeightsError, LPIPSLoss
from omnipipe.torch_files import TorchFileError, load_torch_file


class Payload:
    """Not a tensor: torch refuses to unpickle it with weights_only."""


def test_plain_tensors_load(tmp_path: Path) -> None:
    torch.save({"w": torch.arange(3), "nested": [torch.ones(2)], "order": collections.OrderedDict(a=1)}, tmp_path / "ok.pt")
    loaded = load_torch_file(tmp_path / "ok.pt", "weights")
    assert torch.equal(loaded["w"], torch.arange(3)) and loaded["order"] == {"a": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"w": torch.zeros(1), "code": Payload()}, "weights refused by torch.load(weights_only=True): it holds "
                                                   "test_torch_files.Payload, not only tensors and plain containers"),
        (b"not a torch file at all", "weights is not a readable torch file ("),
    ],
    ids=["unpickling-refused", "foreign-bytes"],
)
def test_refusals_are_one_line_naming_the_file(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(TorchFileError) as caught:
        load_torch_file(path, "weights")
    assert str(caught.value).startswith(f"{path}: {message}") and "\n" not in str(caught.value)


def test_lpips_backbone_that_torch_refuses_is_one_line(tmp_path: Path) -> None:
    torch.save({"features.0.weight": Payload()}, tmp_path / "alexnet.pth")
    with pytest.raises(BackboneWeightsError) as caught:
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(tmp_path / "alexnet.pth")))
    assert str(caught.value).startswith(f"{tmp_path / 'alexnet.pth'}: lpips 'alex' backbone refused by torch.load")
    assert "\n" not in str(caught.value)
