"""Bulk work defaults to the CPUs this process may use (its affinity), not a fixed count."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from facegate.settings import Settings, available_cpus

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="affinity is a Linux call")


def test_workers_follow_the_affinity_of_this_process() -> None:
    assert Settings().workers == available_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) not installed")
def test_one_allowed_core_means_one_worker() -> None:
    code = "from facegate.settings import Settings; print(Settings().workers)"
    env = {k: v for k, v in os.environ.items() if k != "FACEGATE_WORKERS"}
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == "1"
