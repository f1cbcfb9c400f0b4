"""FUSE over io_uring: with MEZZO_FUSE_URING=1 the tree server answers
requests on the CPU that made them (one thread and ring per possible CPU); by
default, or when the kernel cannot do it, it serves through /dev/fuse.

The server says which it does in <root>/run/fs.log:
  "io_uring: N queues ..."            N = possible CPUs
  "io_uring: ...; serving through /dev/fuse"
"""
import json
import os
import signal
import subprocess
import time

import pytest

PARAM = "/sys/module/fuse/parameters/enable_uring"

pytestmark = pytest.mark.skipif(not os.path.exists(PARAM),
                                reason="kernel without FUSE over io_uring")


def possible_cpus():
    with open("/sys/devices/system/cpu/possible") as f:
        top = 0
        for part in f.read().strip().split(","):
            top = max(top, int(part.split("-")[-1]))
    return top + 1


def online_cpus():
    return sorted(os.sched_getaffinity(0))


URING = {"MEZZO_FUSE_URING": "1"}  # whatever the environment says


def make_tree(mezzo, workdir, name="t", env=URING):
    src = os.path.join(workdir, "src")
    os.makedirs(os.path.join(src, "etc"), exist_ok=True)
    with open(os.path.join(src, "etc/hello"), "w") as f:
        f.write("hello\n")
    mezzo.run("image", "import", "base", src)
    mp = os.path.join(workdir, "mnt")
    os.makedirs(mp, exist_ok=True)
    mezzo.run("fs", "mount", "base", mp, "--tree", name, env=env)
    return mp


def log_line(mezzo, pattern, timeout=10):
    """Wait for a line of fs.log containing pattern; return it (or None)."""
    path = os.path.join(mezzo.root, "run", "fs.log")
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            for line in open(path, errors="replace"):
                if pattern in line:
                    return line.strip()
        time.sleep(0.05)
    return None


def on_cpu(cpu, fn):
    """Run fn() in a child pinned to cpu; return its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os.sched_setaffinity(0, {cpu})
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def server_pid(mezzo, name):
    trees = json.loads(mezzo.run("--json", "fs", "ls").stdout)
    return [t for t in trees if t["name"] == name][0]["server_pid"]


def wait_gone(pid, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the server (pid {pid}) did not exit after umount")


def run_timeout(args, timeout=20):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(args)} hung for {timeout} s")


def exercise(mp, cpu):
    d = os.path.join(mp, f"cpu{cpu}")
    os.makedirs(d, exist_ok=True)
    for i in range(200):
        p = os.path.join(d, f"f{i}")
        with open(p, "w") as f:
            f.write(f"{cpu}:{i}\n")
        os.chmod(p, 0o640)
    os.rename(os.path.join(d, "f0"), os.path.join(d, "g0"))
    os.unlink(os.path.join(d, "f1"))
    assert len(os.listdir(d)) == 199
    assert open(os.path.join(d, "g0")).read() == f"{cpu}:0\n"
    # larger than a page, both ways through the payload buffer
    big = os.urandom(60000)
    os.setxattr(d, "user.big", big)
    assert os.getxattr(d, "user.big") == big
    # a directory listing of many pages
    long = os.path.join(d, "long")
    os.mkdir(long)
    for i in range(1500):
        os.close(os.open(os.path.join(long, "n%04d-%s" % (i, "x" * 100)),
                         os.O_CREAT | os.O_WRONLY, 0o644))
    assert len(os.listdir(long)) == 1500


def test_uring_used_and_served_on_every_cpu(mezzo, workdir):
    mp = make_tree(mezzo, workdir)
    pid = server_pid(mezzo, "t")
    try:
        for cpu in online_cpus():
            assert on_cpu(cpu, lambda: exercise(mp, cpu)) == 0
        # the line that says how it serves ("set ... to Y" comes first on a
        # machine where enable_uring was still N, as after a boot)
        line = log_line(mezzo, " queues")
        assert line and f"io_uring: {possible_cpus()} queues" in line, line
        assert log_line(mezzo, "serving through /dev/fuse", timeout=0.1) is None
        with open(PARAM) as f:
            assert f.read().strip() == "Y"  # set by the server if it was N
        # the control socket still works next to the rings
        mezzo.run("fs", "snapshot", "t", "v1")
    finally:
        assert run_timeout(["umount", mp]).returncode == 0
    # the server exits once unmounted (its threads joined)
    wait_gone(pid)
    mezzo.run("fs", "mount", "t", mp, env=URING)
    try:
        for cpu in online_cpus():
            assert open(os.path.join(mp, f"cpu{cpu}", "g0")).read() == f"{cpu}:0\n"
    finally:
        mezzo.run("fs", "umount", mp)
    snap = os.path.join(workdir, "snap")
    os.mkdir(snap)
    mezzo.run("fs", "mount", "v1", snap, env=URING)
    try:
        assert os.path.exists(os.path.join(snap, "cpu0", "g0"))
    finally:
        mezzo.run("fs", "umount", snap)


def test_devfuse_knob(mezzo, workdir):
    env = {"MEZZO_FUSE_URING": "0", "MEZZO_DEBUG": "1"}  # the default; logged at debug
    mp = make_tree(mezzo, workdir, env=env)
    try:
        for cpu in online_cpus():
            assert on_cpu(cpu, lambda: exercise(mp, cpu)) == 0
        assert log_line(mezzo, "serving through /dev/fuse")
        assert log_line(mezzo, "queues", timeout=0.5) is None
    finally:
        assert run_timeout(["umount", mp]).returncode == 0


def test_umount_with_requests_in_flight(mezzo, workdir):
    """Unmount while programs on every CPU keep the rings busy: lazy umount
    detaches at once, the server still answers the programs' open files, and
    everything ends without a hang."""
    mp = make_tree(mezzo, workdir)
    assert log_line(mezzo, "queues")
    pid = server_pid(mezzo, "t")
    busy = []
    for cpu in online_cpus():
        code = ("import os,sys\nos.sched_setaffinity(0,{%d})\n"
                "d=sys.argv[1]\nos.chdir(d)\ni=0\n"
                "while True:\n"
                " i+=1\n"
                " try:\n"
                "  open('b%d-%%d'%%(i%%50),'w').write('x')\n"
                "  os.stat('etc/hello')\n"
                " except OSError:\n"
                "  sys.exit(0)\n") % (cpu, cpu)
        busy.append(subprocess.Popen(["python3", "-c", code, mp]))
    time.sleep(0.5)
    r = run_timeout(["umount", "-l", mp])
    assert r.returncode == 0, r.stderr
    # the busy programs hold the tree (their cwd): kill them, it goes away
    for p in busy:
        p.kill()
        p.wait(timeout=20)
    wait_gone(pid)


def test_kill9_leaves_a_mount_umount_l_clears(mezzo, workdir):
    mp = make_tree(mezzo, workdir)
    for cpu in online_cpus():
        assert on_cpu(cpu, lambda: os.stat(os.path.join(mp, "etc/hello"))) == 0
    assert log_line(mezzo, "queues")
    os.kill(server_pid(mezzo, "t"), signal.SIGKILL)
    time.sleep(0.2)
    r = run_timeout(["stat", mp])
    assert r.returncode != 0 and "not connected" in r.stderr, r.stderr
    assert run_timeout(["umount", "-l", mp]).returncode == 0
    with open("/proc/self/mountinfo") as f:
        assert f" {mp} " not in f.read()
    # the tree is whole: mount it again
    mezzo.run("fs", "mount", "t", mp, env=URING)
    try:
        assert open(os.path.join(mp, "etc/hello")).read() == "hello\n"
    finally:
        assert run_timeout(["umount", mp]).returncode == 0


def test_enable_uring_set_by_the_server(mezzo, workdir):
    """enable_uring is N by default: a server running as root sets it."""
    with open(PARAM, "w") as f:
        f.write("N")
    mp = make_tree(mezzo, workdir)
    try:
        assert log_line(mezzo, f"set {PARAM} to Y")
        assert log_line(mezzo, f"io_uring: {possible_cpus()} queues")
        with open(PARAM) as f:
            assert f.read().strip() == "Y"
        assert open(os.path.join(mp, "etc/hello")).read() == "hello\n"
    finally:
        assert run_timeout(["umount", mp]).returncode == 0
