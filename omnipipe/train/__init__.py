"""Training: progressive stages, checkpoints, resume, distributed data parallel."""
