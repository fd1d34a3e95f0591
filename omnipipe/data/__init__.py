"""The data layer: media sources, ``omnipipe prepare`` (decode → clips → shards) and the training loader."""
