"""omnipipe-fsq: finite scalar quantization as an omnipipe ``quantizer`` named ``fsq``."""
from omnipipe_fsq.fsq import FiniteScalarQuantizer

__all__ = ["FiniteScalarQuantizer"]
