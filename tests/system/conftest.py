"""Shared fixtures for mezzo's system tests.

Every test gets its own store root under /tmp and its own mount points; the
fixtures unmount and remove everything they made, even when a test fails.
"""
import os
import shutil
import subprocess
import tempfile

import pytest

MEZZO = os.environ.get("MEZZO") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "mezzo")


class Mezzo:
    def __init__(self, root):
        self.root = root
        self.mounts = []

    def run(self, *args, check=True, input=None, env=None):
        e = dict(os.environ)
        e["MEZZO_ROOT"] = self.root
        # ASan: the CLI exits through _exit in forked daemons; leaks there are
        # not the test's business.
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if env:
            e.update(env)
        p = subprocess.run([MEZZO, *args], capture_output=True, text=True,
                           input=input, env=e, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(
                f"mezzo {' '.join(args)} failed ({p.returncode}):\n"
                f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def fail(self, *args):
        p = self.run(*args, check=False)
        assert p.returncode != 0, f"mezzo {' '.join(args)} should have failed"
        return p


def _umount_all_under(path):
    with open("/proc/self/mountinfo") as f:
        mps = [line.split()[4] for line in f]
    for mp in sorted((m for m in mps if m.startswith(path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="mezzo-test-")
    try:
        yield d
    finally:
        _umount_all_under(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mezzo(workdir):
    root = os.path.join(workdir, "store")
    m = Mezzo(root)
    try:
        yield m
    finally:
        _umount_all_under(workdir)
        # servers of this store exit once their mounts are gone
        subprocess.run(["pkill", "-f", f"MEZZO_ROOT={root}"], capture_output=True)
