"""Live metrics through dvclive: ``metrics.json`` for ``dvc metrics``/``dvc exp show``, TSV plots for ``dvc plots``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from dvclive import Live


class LiveLog:
    """Logs one row of scalars per step under ``directory`` (rank 0 only), and images under ``plots/images/``."""

    def __init__(self, directory: Path, resume: bool) -> None:
        self._live = Live(str(directory), resume=resume, save_dvc_exp=False, dvcyaml=None, report=None)

    def log(self, step: int, values: dict[str, float]) -> None:
        self._live.step = step
        for name, value in values.items():
            self._live.log_metric(name, value)
        self._live.next_step()

    def images(self, images: dict[str, np.ndarray]) -> None:
        """Write each uint8 (H, W, 3) image as ``plots/images/<name>.png``, replacing the previous one."""
        for name, image in images.items():
            self._live.log_image(f"{name}.png", image)

    def close(self) -> None:
        self._live.end()
