"""Shared fixtures for mezzo's system tests.

Every test gets its own store root under /tmp and its own mount points; the
fixtures unmount and remove everything they made, even when a test fails.
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time

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


def cgroup_tag(root):
    """The store's tag in its domains' cgroup names (supervisor.c,
    mz_domain_cgroup_name: FNV-1a of the store root, folded to 32 bits)."""
    h = 1469598103934665603
    for b in os.path.realpath(root).encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%08x" % ((h ^ (h >> 32)) & 0xFFFFFFFF)


def _remove_cgroups_of(root):
    """What a failed test left of its store's domains in the cgroup
    hierarchies (v2 and v1): their processes killed, the groups removed."""
    tag = cgroup_tag(root)
    groups = (glob.glob(f"/sys/fs/cgroup/*/mezzo/*.{tag}") +
              glob.glob(f"/sys/fs/cgroup/mezzo/*.{tag}"))
    for g in groups:
        try:
            with open(os.path.join(g, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            pass
    for g in groups:
        rmdir_cgroup(g)


def rmdir_cgroup(g):
    """rmdir a cgroup, waiting up to 2 s for its last task to leave it (a
    task leaves its group a little after it dies)."""
    for _ in range(100):
        try:
            os.rmdir(g)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


@pytest.fixture(scope="session", autouse=True)
def serve_everything():
    """MEZZO_TEST_SERVE=1: every mezzo command of the session is run by one
    `mezzo serve` (src/serve/), started here, so that the same tests show
    that a served command behaves as a direct one."""
    if os.environ.get("MEZZO_TEST_SERVE") != "1":
        yield
        return
    d = tempfile.mkdtemp(prefix="mezzo-serve-")
    path = os.path.join(d, "serve.sock")
    p = subprocess.Popen([MEZZO, "serve", "--socket", path],
                         env=dict(os.environ, MEZZO_SOCKET="none"))
    try:
        for _ in range(500):
            if os.path.exists(path) or p.poll() is not None:
                break
            time.sleep(0.01)
        assert p.poll() is None, "mezzo serve did not start"
        os.environ["MEZZO_SOCKET"] = path
        yield
    finally:
        os.environ.pop("MEZZO_SOCKET", None)
        p.terminate()
        p.wait(timeout=10)
        # workers still running (none should be) and spares: by command line
        subprocess.run(["pkill", "-KILL", "-f", path], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


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
        _remove_cgroups_of(root)
