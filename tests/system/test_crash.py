"""Crash safety: kill -9 of any mezzo process at any moment leaves a store
that `mezzo store check` finds consistent, and loses nothing fsync'ed."""
import json
import os
import random
import signal
import subprocess
import time

GRACE0 = {"MEZZO_ORPHAN_GRACE_SECONDS": "0"}


def check_consistent(mezzo):
    p = mezzo.run("store", "check", check=False, env=GRACE0)
    assert p.returncode == 0 and "0 problems" in p.stdout, p.stdout + p.stderr
    mezzo.run("store", "gc", env=GRACE0)
    p = mezzo.run("store", "check", env=GRACE0)
    assert "leftover" not in p.stdout, p.stdout


def big_dir(workdir, n=3000):
    src = os.path.join(workdir, "src")
    for i in range(n):
        d = os.path.join(src, "d%02d" % (i % 50))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(os.urandom(2000 + i))
    return src


def test_import_killed_at_random_moments(mezzo, workdir):
    src = big_dir(workdir)
    rng = random.Random(1)
    env = dict(os.environ, MEZZO_ROOT=mezzo.root, ASAN_OPTIONS="detect_leaks=0")
    from conftest import MEZZO
    for i in range(4):
        p = subprocess.Popen([MEZZO, "image", "import", "img%d" % i, src], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        check_consistent(mezzo)
    names = [i["name"] for i in json.loads(mezzo.run("--json", "image", "ls").stdout)]
    # an import either finished or left no image at all
    for n in names:
        mezzo.run("image", "inspect", n)
    mezzo.run("image", "import", "whole", src)
    check_consistent(mezzo)


def test_server_killed_during_churn(mezzo, workdir):
    src = os.path.join(workdir, "small")
    os.makedirs(src)
    open(os.path.join(src, "seed"), "w").write("seed")
    mezzo.run("image", "import", "base", src)
    mp = os.path.join(workdir, "mp")
    os.mkdir(mp)
    for round_ in range(3):
        args = ["fs", "mount", "base", mp, "--tree", "t"] if round_ == 0 else \
            ["fs", "mount", "t", mp]
        mezzo.run(*args)
        # something fsync'ed before the storm survives it
        keep = os.path.join(mp, "kept%d" % round_)
        with open(keep, "w") as f:
            f.write("round %d" % round_)
            f.flush()
            os.fsync(f.fileno())
        churn = subprocess.Popen(
            ["/usr/bin/python3", "-c", CHURN, mp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5 + 0.3 * round_)
        trees = json.loads(mezzo.run("--json", "fs", "ls").stdout)
        pid = [t for t in trees if t["name"] == "t"][0]["server_pid"]
        os.kill(pid, signal.SIGKILL)
        churn.wait(timeout=60)
        subprocess.run(["umount", "-l", mp], check=True)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        check_consistent(mezzo)
    mezzo.run("fs", "mount", "t", mp)
    try:
        for r in range(3):
            assert open(os.path.join(mp, "kept%d" % r)).read() == "round %d" % r
    finally:
        mezzo.run("fs", "umount", mp)
    check_consistent(mezzo)


CHURN = r"""
import os, sys
mp = sys.argv[1]
i = 0
try:
    while True:
        d = os.path.join(mp, "dir%d" % (i % 7))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "f%d" % i)
        with open(p, "w") as f:
            f.write("x" * (i % 5000))
        if i % 3 == 0:
            os.rename(p, p + ".renamed")
        if i % 5 == 0:
            os.link(p if i % 3 else p + ".renamed", os.path.join(d, "l%d" % i))
        if i % 4 == 0:
            os.unlink(p if i % 3 else p + ".renamed")
        if i % 11 == 0:
            os.setxattr(d, "user.n", str(i).encode())
        i += 1
except OSError:
    pass
"""
