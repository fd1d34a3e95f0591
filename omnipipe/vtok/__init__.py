"""VTok: a video as one key frame's spatial tokens plus one residual token per later frame (docs/vtok.md)."""
from omnipipe.vtok.model import VTok, VTokOutput, VTokTokens, load_tokenizer

__all__ = ["VTok", "VTokOutput", "VTokTokens", "load_tokenizer"]
