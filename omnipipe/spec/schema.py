"""JSON Schema of spec files, where each component entry lists the registered components' params."""
from __future__ import annotations

from typing import Any

from omnipipe.registry import Registry
from omnipipe.spec.component import ComponentSpec
from omnipipe.spec.experiment import Experiment


def _component_classes() -> dict[str, type[ComponentSpec]]:
    found: dict[str, type[ComponentSpec]] = {}
    pending = list(ComponentSpec.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _alternatives(registry: Registry, spec_cls: type[ComponentSpec], generic: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """One schema per registered component of the entry's kind: its params plus ``type`` and shared keys."""
    shared = {key: value for key, value in generic.get("properties", {}).items() if key != "type"}
    options = []
    for entry in registry.entries(spec_cls.kind):
        prefix = f"{entry.kind}.{entry.name}."
        schema = entry.params_model.model_json_schema(ref_template="#/$defs/" + prefix + "{model}")
        for name, definition in schema.pop("$defs", {}).items():
            defs[prefix + name] = definition
        schema["title"] = f"{entry.kind} {entry.name}"
        schema["description"] = f"{entry.doc} (from {entry.provider})".strip()
        schema["properties"] = {"type": {"const": entry.name}, **shared, **schema.get("properties", {})}
        schema["required"] = ["type", *schema.get("required", [])]
        schema["additionalProperties"] = False
        options.append(schema)
    return options


def spec_json_schema(registry: Registry) -> dict[str, Any]:
    """The Experiment's JSON Schema with every component entry expanded into a ``oneOf``."""
    schema = Experiment.model_json_schema()
    defs = schema.setdefault("$defs", {})
    for name, spec_cls in _component_classes().items():
        if name in defs:
            options = _alternatives(registry, spec_cls, defs[name], defs)
            defs[name] = {
                "title": defs[name].get("title", name),
                "description": f"a registered {spec_cls.kind}: {{type: <name>, ...params}}",
                # JSON Schema forbids an empty oneOf; with nothing registered no entry can be valid
                **({"oneOf": options} if options else {"not": {}}),
            }
    return schema
