"""omnipipe-bsq: binary spherical quantization as an omnipipe ``quantizer`` named ``bsq``."""
from omnipipe_bsq.bsq import BinarySphericalQuantizer

__all__ = ["BinarySphericalQuantizer"]
