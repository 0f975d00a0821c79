"""Training processes keep freed memory instead of mapping and zeroing it again every step."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from pretraining import cli

ROOT = Path(__file__).resolve().parents[2]

# Page faults of touching a fresh 64 MiB tensor after an earlier one was freed: in a separate
# process, because the setting lasts for the process that makes it.
_FAULTS_SCRIPT = """
import resource, sys
import torch
from pretraining.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def faults_of_a_fresh_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.ones(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold (32 MiB)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_fresh_block()  # the first block is new memory either way
print(faults_of_a_fresh_block())
"""


def _faults(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_blocks_are_reused_without_page_faults():
    # glibc's defaults hand a freed 64 MiB block back to the kernel: its 16,384 pages fault again.
    assert _faults("defaults") > 8_000
    assert _faults("retain") < 100


def test_train_and_resume_tune_the_allocator_unless_told_not_to(monkeypatch):
    calls = []
    monkeypatch.setattr("pretraining.allocator.retain_freed_memory", lambda: calls.append(1) or True)
    for argv in (["train", "--preset", "tiny"], ["resume", "campaign/x"]):
        cli._tune_allocator(cli.build_parser().parse_args(argv))
        cli._tune_allocator(cli.build_parser().parse_args([*argv, "--malloc-defaults"]))
    assert len(calls) == 2
