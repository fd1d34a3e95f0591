"""Metric components (kind ``metric``): reconstruction quality, codebook use, distribution distances."""
