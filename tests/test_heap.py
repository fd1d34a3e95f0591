"""``omnipipe.heap.keep_freed_memory``: freed activations are reused without faulting their pages in again."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys, torch
from omnipipe.heap import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else False
x, w = torch.randn(8, 32, 150, 150), torch.randn(64, 32, 3, 3)
faults = []
for _ in range(4):  # a conv layer's ~44 MiB of activations, made and freed each pass
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.relu(torch.nn.functional.conv2d(x, w)).sum()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(took, sum(faults[2:]))
"""


def faults_of_later_passes(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], check=True, capture_output=True, text=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the heap thresholds are glibc's")
def test_kept_heap_reuses_freed_activations_without_page_faults() -> None:
    took, kept = faults_of_later_passes("keep")
    _, default = faults_of_later_passes("default")
    assert took
    if default < 2_000:  # 4 KiB pages: two passes of ~44 MiB fault ~22,000 in again after glibc unmapped them
        pytest.skip(f"this system faults only {default} pages back in without the setting (huge pages?)")
    assert kept < default / 20
