"""Discriminators (kind ``discriminator``): PatchGANs on frames (2-D) and on clips (3-D)."""
