"""The JSON Schema lists every registered component's params, so editors can check spec files."""
from __future__ import annotations

import jsonschema
import pytest
import yaml

from omnipipe.registry import Registry
from omnipipe.spec.schema import spec_json_schema


def _validator(registry: Registry) -> jsonschema.Draft202012Validator:
    schema = spec_json_schema(registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_expands_components_per_kind(spec_registry: Registry) -> None:
    schema = spec_json_schema(spec_registry)
    quantizers = schema["$defs"]["QuantizerSpec"]["oneOf"]
    assert [option["properties"]["type"] for option in quantizers] == [{"const": "kl"}, {"const": "vq"}]
    vq = quantizers[1]
    assert vq["required"] == ["type", "codebook_size"] and vq["additionalProperties"] is False
    loss = schema["$defs"]["LossSpec"]["oneOf"][0]
    assert {"weight", "start_step"} <= set(loss["properties"])


def test_valid_spec_passes_and_typos_fail_the_schema(spec_registry: Registry, valid_spec_text: str) -> None:
    validator = _validator(spec_registry)
    document = yaml.safe_load(valid_spec_text)
    assert list(validator.iter_errors(document)) == []
    document["model"]["quantizer"]["codebook_sise"] = 5
    assert list(validator.iter_errors(document)), "a misspelled plugin parameter must not validate"
    del document["model"]["quantizer"]["codebook_sise"]
    document["model"]["quantizer"]["type"] = "vqq"
    assert list(validator.iter_errors(document))


@pytest.mark.parametrize("kind", ["AttentionSpec", "DatasetSpec"])
def test_every_component_def_is_replaced(spec_registry: Registry, kind: str) -> None:
    definition = spec_json_schema(spec_registry)["$defs"][kind]
    assert "oneOf" in definition and "additionalProperties" not in definition


def test_kind_with_nothing_registered_accepts_no_entry(spec_registry: Registry, valid_spec_text: str) -> None:
    document = yaml.safe_load(valid_spec_text)
    document["train"]["discriminators"] = {"image": {"type": "patchgan2d"}}
    assert list(_validator(spec_registry).iter_errors(document))
