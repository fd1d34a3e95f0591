"""omnipipe-lfq: lookup-free quantization as an omnipipe ``quantizer`` named ``lfq``."""
from omnipipe_lfq.lfq import LookupFreeQuantizer

__all__ = ["LookupFreeQuantizer"]
