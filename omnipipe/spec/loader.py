"""Load a spec file: safe YAML → forbidden-key check → pydantic → components against the registry."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from omnipipe.errors import RegistryError, SpecError
from omnipipe.registry import FORBIDDEN_KEYS, Registry
from omnipipe.spec.bounded_yaml import MAX_BYTES, YamlError, line_of, read_yaml
from omnipipe.spec.component import ComponentSpec, ParamsError
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.generate import generation_problems
from omnipipe.spec.vtok import vtok_problems
from omnipipe.spec.problems import Loc, Problem, problems_from


def load_spec(path: str | Path, registry: Registry | None = None) -> Experiment:
    """Read and validate an experiment spec; any problem raises one SpecError listing each, one per line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading it
            raise SpecError(f"{path}: {size:,} bytes, more than the {MAX_BYTES:,}-byte limit for YAML files")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read spec file ({error})") from None
    return parse_spec(text, source=str(path), registry=registry)


def parse_spec(text: str, source: str = "<spec>", registry: Registry | None = None) -> Experiment:
    """Validate spec ``text``; ``source`` names it in error messages."""
    if registry is None:
        from omnipipe.plugins import get_registry

        registry = get_registry()
    try:
        document = read_yaml(text)
    except YamlError as error:
        raise SpecError(error.at(source)) from None
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise SpecError(f"{source}: a spec must be a YAML mapping of sections, found {found}")
    problems = list(_forbidden_keys(data, ()))
    if not problems:
        try:
            spec = Experiment.model_validate(data)
        except ValidationError as error:
            problems = problems_from(error, Experiment)
        else:
            problems = list(resolve_components(spec, (), registry))
            if not problems:
                problems = list(_patch_grid_fits_data(spec)) or list(_windows_fit_token_grid(spec))
            if not problems:
                problems = list(generation_problems(spec, registry))
            if not problems:
                problems = list(vtok_problems(spec))
    if problems:
        problems.sort(key=lambda problem: line_of(lines, problem.loc) or 0)
        raise SpecError("\n".join(_locate(source, lines, problem) for problem in problems))
    return spec


def _locate(source: str, lines: dict[Loc, int], problem: Problem) -> str:
    line = line_of(lines, problem.loc)
    where = f"{source}:{line}" if line else source
    return f"{where}: {problem.path}: {problem.message}"


def _patch_grid_fits_data(spec: Experiment) -> Iterator[Problem]:
    """Clips and resolutions must fit the patchifier's grid (checked when it declares patch sizes)."""
    params = spec.model.patchifier.params
    patch, tube = getattr(params, "patch_size", None), getattr(params, "temporal_patch_size", None)
    frames = spec.data.clip_frames
    if isinstance(tube, int) and (frames - 1) % tube:
        yield Problem(
            ("data", "clip_frames"),
            f"{frames} frames do not fit model.patchifier.temporal_patch_size {tube}: use 1 + k·{tube} (e.g. {1 + tube})",
        )
    if isinstance(patch, int):
        for index, (height, width) in enumerate(spec.data.resolutions):
            if height % patch or width % patch:
                yield Problem(
                    ("data", "resolutions", index),
                    f"{height}×{width} is not a multiple of model.patchifier.patch_size {patch}",
                )


def _windows_fit_token_grid(spec: Experiment) -> Iterator[Problem]:
    """A spatial window larger than the token grid pads every frame up to it: the same result as full
    attention, many times slower (checked when the patchifier declares ``patch_size``)."""
    patch = getattr(spec.model.patchifier.params, "patch_size", None)
    if not isinstance(patch, int):
        return
    for stack in ("encoder", "decoder"):
        for number, entry in enumerate(getattr(spec.model, stack).spatial):
            window = getattr(entry.params, "window_size", None)
            for height, width in spec.data.resolutions if isinstance(window, int) else []:
                grid = (height // patch, width // patch)
                if window > min(grid):
                    yield Problem(
                        ("model", stack, "spatial", number, "window_size"),
                        f"{window} is larger than the {grid[0]}×{grid[1]} token grid of resolution {height}×{width} "
                        f"(patch_size {patch}); windows are padded to full size, so use at most {min(grid)} "
                        "or a full attention",
                    )
                    break


def _forbidden_keys(value: Any, loc: Loc) -> Iterator[Problem]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key in FORBIDDEN_KEYS:
                yield Problem(
                    (*loc, key),
                    f"key name '{key}' is not allowed: DVC leaves keys named "
                    f"{' or '.join(sorted(FORBIDDEN_KEYS))} out of its run-cache hash, so changing it "
                    "would silently reuse stale outputs; use a specific name such as image_size",
                )
            yield from _forbidden_keys(child, (*loc, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _forbidden_keys(child, (*loc, index))


def resolve_components(value: Any, loc: Loc, registry: Registry) -> Iterator[Problem]:
    """Validate every component entry's params against its registered class."""
    if isinstance(value, ComponentSpec):
        try:
            value.resolve(registry)
        except ParamsError as error:
            yield from (Problem((*loc, *p.loc), p.message) for p in error.problems)
        except RegistryError as error:
            yield Problem((*loc, "type"), str(error))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from resolve_components(getattr(value, name), (*loc, name), registry)
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from resolve_components(child, (*loc, key), registry)
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from resolve_components(child, (*loc, index), registry)
