"""A reference checkpoint → an omnipipe ``Tokenizer`` with the same weights, by the explicit table in ``layout``."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from omnipipe.errors import OmnipipeError
from omnipipe.nn.relative_position import relative_position_index
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.reference.architecture import ReferenceArchitecture
from omnipipe.reference.checkpoint import load_reference_checkpoint
from omnipipe.reference.layout import IGNORED_PREFIXES, RefTensor, reference_layout
from omnipipe.registry import Registry


class ReferenceKeysError(OmnipipeError):
    """Reference state-dict keys that are unknown, missing, misshapen or hold values omnipipe cannot represent."""


@dataclass
class ImportReport:
    """What an import used and left out: counts of imported tensors, unused tensors by reason, ignored prefixes."""

    imported: int
    unused: Counter[str]
    ignored: Counter[str]


def _check(entries: list[RefTensor], state: dict[str, torch.Tensor], source: str) -> None:
    """Raise one line per kind of problem: unknown keys, missing keys, wrong shapes, non-representable values."""
    known = {entry.key for entry in entries}
    unknown = sorted(key for key in state if key not in known and not key.startswith(IGNORED_PREFIXES))
    if unknown:
        raise ReferenceKeysError(f"{source}: unknown keys (not in the reference layout for its flags): {', '.join(unknown)}")
    missing = [entry.key for entry in entries if entry.target is not None and entry.key not in state]
    if missing:
        raise ReferenceKeysError(f"{source}: missing keys: {', '.join(missing)}")
    shapes = [
        f"{e.key} {tuple(state[e.key].shape)} ≠ {e.shape}" for e in entries if e.key in state and tuple(state[e.key].shape) != e.shape
    ]
    if shapes:
        raise ReferenceKeysError(f"{source}: shapes differ from the flags' architecture: {'; '.join(shapes)}")
    for entry in entries:
        value = state.get(entry.key)
        if value is None:
            continue
        if entry.role == "zero_beta" and value.any():
            raise ReferenceKeysError(f"{source}: {entry.key} is not zero, but the reference keeps it at 0")
        if entry.role == "position_index" and not torch.equal(
            value.long(), relative_position_index(int(round(entry.shape[0] ** 0.5)))
        ):
            raise ReferenceKeysError(f"{source}: {entry.key} is not the Swin relative-position index")


def convert_state_dict(
    state: dict[str, torch.Tensor], arch: ReferenceArchitecture, source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], ImportReport]:
    """The omnipipe state dict of ``Tokenizer(arch.model_spec())`` from a reference state dict."""
    entries = reference_layout(arch)
    _check(entries, state, source)
    parts: dict[str, list[torch.Tensor]] = {}
    for entry in entries:
        if entry.target is not None:
            parts.setdefault(entry.target, []).append(state[entry.key])
    converted = {target: tensors[0] if len(tensors) == 1 else torch.cat(tensors) for target, tensors in parts.items()}
    report = ImportReport(
        imported=sum(1 for e in entries if e.target is not None),
        unused=Counter(e.note for e in entries if e.target is None and e.key in state),
        ignored=Counter(key.split(".")[0] for key in state if key.startswith(IGNORED_PREFIXES)),
    )
    return converted, report


def tokenizer_from_reference(
    state: dict[str, torch.Tensor], arch: ReferenceArchitecture, source: str, registry: Registry | None = None
) -> tuple[Tokenizer, ImportReport]:
    """Build the omnipipe tokenizer of ``arch`` and load the converted reference weights (eval mode)."""
    converted, report = convert_state_dict(state, arch, source)
    model = Tokenizer.from_spec(arch.model_spec(), registry)
    expected = model.state_dict()
    left = sorted(set(expected) - set(converted))
    extra = sorted(set(converted) - set(expected))
    if left or extra:  # the table and the spec disagree: a bug here, not in the checkpoint
        raise ReferenceKeysError(f"{source}: internal key map mismatch: not filled {left}, not in the model {extra}")
    model.load_state_dict({key: value.to(expected[key].dtype) for key, value in converted.items()})
    return model.eval(), report


def import_reference(
    path: str | Path, attention_path: str = "sdpa", registry: Registry | None = None
) -> tuple[Tokenizer, ImportReport]:
    """Load a reference Lightning ``.ckpt`` (VQ or VAE) as an omnipipe tokenizer in eval mode.

    ``attention_path``: the branch of the reference's attention the weights were trained with
    (``ReferenceArchitecture.attention_path``): ``sdpa`` (torch ≥ 2.1) or ``einsum``.
    """
    checkpoint = load_reference_checkpoint(path)
    args = {**checkpoint.args, "attention_path": attention_path}
    arch = ReferenceArchitecture.from_args(args, str(checkpoint.path))
    return tokenizer_from_reference(checkpoint.state_dict, arch, str(checkpoint.path), registry)
