"""Training processes keep freed memory instead of mapping and zeroing it again every step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pretraining import cli
from pretraining.allocator import has_glibc_malloc

ROOT = Path(__file__).resolve().parents[2]

# Page faults of touching fresh 64 MiB tensors, one after another (each freed before the next),
# as a training loop does: in a separate process, because the setting lasts for the process
# that makes it. The first blocks are new memory either way; with the setting, the heap also
# grows for a block or two more until a freed block, merged with its neighbours, holds the next
# 64-byte-aligned request (seen: 2 or 3 blocks), so the blocks after the 4th are compared.
# Transparent huge pages are off there (prctl PR_SET_THP_DISABLE), so a block faults per 4 KiB
# page whatever the kernel's setting.
_FAULTS_SCRIPT = """
import ctypes, resource, sys
import torch
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
from pretraining.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def faults_of_a_fresh_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold (32 MiB)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(*[faults_of_a_fresh_block() for _ in range(10)][4:])
"""


def _faults(mode: str) -> list[int]:
    # glibc's own defaults in the child, whatever this process was started with
    env = {**{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    return [int(n) for n in out.stdout.strip().splitlines()[-1].split()]


@pytest.mark.skipif(not has_glibc_malloc(), reason="glibc's malloc only")
def test_freed_blocks_are_reused_without_page_faults():
    # glibc's defaults hand a freed 64 MiB block back to the kernel: its 16,384 pages fault again.
    assert min(_faults("defaults")) > 8_000
    assert max(_faults("retain")) < 100


def test_train_and_resume_tune_the_allocator_unless_told_not_to(monkeypatch):
    calls = []
    monkeypatch.setattr("pretraining.allocator.retain_freed_memory", lambda: calls.append(1) or True)
    for argv in (["train", "--preset", "tiny"], ["resume", "campaign/x"]):
        cli._tune_allocator(cli.build_parser().parse_args(argv))
        cli._tune_allocator(cli.build_parser().parse_args([*argv, "--malloc-defaults"]))
    assert len(calls) == 2
