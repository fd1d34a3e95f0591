"""omnipipe: train and evaluate joint image–video tokenizers and the generators on their tokens.

The public API that plugins write against: ``hookimpl``, ``Registry``, ``QuantizerOutput``,
``Quantizer``, ``load_spec``, ``get_registry`` and the error classes.
"""
from omnipipe.errors import OmnipipeError, PluginError, RegistryError, SpecError
from omnipipe.hooks import hookimpl
from omnipipe.nn.quantizer_output import Quantizer, QuantizerOutput
from omnipipe.plugins import get_registry, load_registry
from omnipipe.registry import KINDS, Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import load_spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "Experiment",
    "OmnipipeError",
    "PluginError",
    "Quantizer",
    "QuantizerOutput",
    "Registry",
    "RegistryError",
    "SpecError",
    "get_registry",
    "hookimpl",
    "load_registry",
    "load_spec",
    "parse_spec",
]
