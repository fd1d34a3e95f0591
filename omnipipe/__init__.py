"""omnipipe: train and evaluate joint image–video tokenizers and the generators on their tokens.

The public API that plugins write against: ``hookimpl``, ``Registry``, ``QuantizerOutput``,
``Quantizer``, ``Tokenizer`` (``Tokenizer.from_checkpoint(path)``), the generator contract (``Generator``,
``TokenLayout``, ``Segment``, ``TokenBatch``, ``class_ids``, ``GuidanceSettings``, ``guide``,
``guidance_scale``), helpers for quantizer authors (``usage_stats``, ``code_usage_stats``,
``binary_entropy_terms``, ``entropy_group_bits``), ``load_spec``, ``get_registry`` and the error classes.
"""
from omnipipe.errors import OmnipipeError, PluginError, RegistryError, SpecError
from omnipipe.generate.contract import Generator, Segment, TokenBatch, TokenLayout, class_ids
from omnipipe.generate.guidance import GuidanceSettings, guidance_scale, guide
from omnipipe.hooks import hookimpl
from omnipipe.nn.binary_entropy import binary_entropy_terms, entropy_group_bits
from omnipipe.nn.code_stats import code_usage_stats, usage_stats
from omnipipe.nn.quantizer_output import Quantizer, QuantizerOutput
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry, load_registry
from omnipipe.registry import KINDS, Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import load_spec, parse_spec

__version__ = "0.2.0"

__all__ = [
    "KINDS",
    "Experiment",
    "Generator",
    "GuidanceSettings",
    "OmnipipeError",
    "PluginError",
    "Quantizer",
    "QuantizerOutput",
    "Registry",
    "RegistryError",
    "Segment",
    "SpecError",
    "TokenBatch",
    "TokenLayout",
    "Tokenizer",
    "binary_entropy_terms",
    "class_ids",
    "code_usage_stats",
    "entropy_group_bits",
    "get_registry",
    "guidance_scale",
    "guide",
    "hookimpl",
    "load_registry",
    "load_spec",
    "parse_spec",
    "usage_stats",
]
