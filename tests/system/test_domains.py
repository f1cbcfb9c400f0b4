"""Domains through the CLI: lifecycle, isolation, bad input, crash recovery.

Each test uses its own store (fixture `mezzo`) with the default busybox
image, and real namespaces, cgroups and FUSE mounts.
"""
import glob
import json
import os
import platform
import signal
import subprocess
import time

import pytest

from conftest import cgroup_tag


@pytest.fixture
def dz(mezzo):
    mezzo.run("image", "busybox")
    yield mezzo
    for d in json.loads(mezzo.run("--json", "ls").stdout):
        mezzo.run("rm", "--force", d["name"], check=False)


def domains(m):
    return {d["name"]: d for d in json.loads(m.run("--json", "ls").stdout)}


def test_run_true_and_exit_codes(dz):
    assert dz.run("run", "--rm", "--", "/bin/true").returncode == 0
    assert dz.run("run", "--rm", "--", "/bin/sh", "-c", "exit 7", check=False).returncode == 7
    p = dz.run("run", "--rm", "--", "/bin/sh", "-c", "kill -9 $$", check=False)
    assert p.returncode == 128 + 9
    assert domains(dz) == {}, "--rm left a domain behind"


def test_run_and_exec_say_their_own_failures_apart(dz):
    """`run` and `exec` exit with their command's status, so their own
    failures get the statuses container runtimes give them: 127 the command
    was not found, 126 it is not executable, 125 mezzo failed; each with its
    message, and nothing left behind."""
    def status(*args):
        p = dz.run(*args, check=False)
        return p.returncode, p.stderr

    rc, err = status("run", "--rm", "--", "/no/such")
    assert rc == 127 and "cannot run /no/such: No such file or directory" in err, err
    rc, err = status("run", "--rm", "--", "nosuchcmd")
    assert rc == 127 and "cannot run nosuchcmd" in err, err
    rc, err = status("run", "--rm", "--", "/etc/hostname")
    assert rc == 126 and "Permission denied" in err, err
    rc, err = status("run", "--rm", "--image", "nosuch", "--", "/bin/true")
    assert rc == 125 and "nosuch" in err, err
    rc, err = status("run", "--rm", "--init", "image", "--", "/no/init")
    assert rc == 127 and "cannot run the image's init /no/init" in err, err
    rc, err = status("run", "-d", "--rm", "--", "/no/such")
    assert rc == 127 and "cannot run /no/such" in err, err
    assert status("run", "--rm", "--", "/bin/sh", "-c", "exit 125")[0] == 125
    assert domains(dz) == {}
    dz.run("run", "-d", "--name", "e", "--", "/bin/sleep", "1000")
    assert status("exec", "e", "--", "/no/such")[0] == 127
    assert status("exec", "e", "--", "/etc/hostname")[0] == 126
    assert status("exec", "e", "--", "/bin/sh", "-c", "exit 4")[0] == 4
    rc, err = status("exec", "nosuch", "--", "/bin/true")
    assert rc == 125 and "no domain named 'nosuch'" in err, err
    assert status("exec", "e")[0] == 2  # usage: no command
    dz.run("rm", "--force", "e")


def test_run_sees_its_own_world(dz):
    p = dz.run("run", "--rm", "--name", "world", "--", "/bin/sh", "-c",
               "hostname; id -u; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'")
    lines = p.stdout.split("\n")
    assert lines[0] == "world"
    assert lines[1] == "0"
    assert "mezzo-init" in lines[2] or lines[2].startswith("/")
    assert int(lines[3]) <= 5, "host processes are visible: " + p.stdout


# A bind remount changes the mount's flags only, where the mount is not
# locked: on the domain's own /tmp it works (the control), on its root it
# must not (the remount of the superblock itself would be refused anyway:
# the tree's belongs to the host).
ROOT_PROBE = ("grep ' / / ' /proc/self/mountinfo; umount -l / 2>/dev/null; echo umount=$?; "
              "mount -o remount,bind,dev / 2>&1; echo remount=$?; "
              "mount -o remount,bind,dev /tmp; echo control=$?")


def root_mount(out):
    """(type, per-mount options, the probe's other lines) of ROOT_PROBE."""
    lines = out.strip().split("\n")
    fields = lines[0].split()
    return fields[fields.index("-") + 1], set(fields[5].split(",")), lines[1:]


def test_root_is_the_tree_locked_whichever_way_it_starts(dz, workdir):
    """The domain's root is its tree, nodev, its mount locked: root in the
    domain can neither unmount it nor lift nodev.  The same whether the tree
    was mounted as the domain was made (`run`: the mount made beside the
    clone, attached afterwards, which its trace shows) or in the ordinary
    order (`start`)."""
    trace = os.path.join(workdir, "trace")
    seen = [root_mount(dz.run("run", "--rm", "--", "/bin/sh", "-c", ROOT_PROBE,
                              env={"MEZZO_TRACE": trace}).stdout)]
    with open(trace) as f:
        assert "run: the tree's mount made, beside the clone" in f.read()
    dz.run("create", "rooted", "--", "/bin/sleep", "100")
    dz.run("start", "rooted")
    seen.append(root_mount(dz.run("exec", "rooted", "--", "/bin/sh", "-c", ROOT_PROBE).stdout))
    dz.run("rm", "--force", "rooted")
    for kind, opts, rest in seen:
        assert kind == "fuse.mezzo"
        assert {"nodev", "noatime"} <= opts and "nosuid" not in opts, opts
        assert rest[0] == "umount=1", rest
        assert "permission denied" in rest[1] and rest[2] == "remount=1", rest  # EPERM
        assert rest[3] == "control=0", rest


def test_a_domain_opens_as_many_files_as_its_caller(dz):
    """The supervisor raises its own soft RLIMIT_NOFILE (its tree's server
    keeps files open), before anything is cloned: the domain gets its
    caller's soft limit, and the hard one, whether run or started."""
    import resource
    from conftest import MEZZO
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(777, hard)

    def as_caller(*args):
        p = subprocess.run([MEZZO, *args], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MEZZO_ROOT=dz.root),
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                 (low, hard)))
        assert p.returncode == 0, p.stderr
        return p.stdout

    probe = "echo $(ulimit -Sn) $(ulimit -Hn)"
    assert as_caller("run", "--rm", "--", "/bin/sh", "-c", probe) == f"{low} {hard}\n"
    dz.run("create", "files", "--", "/bin/sh", "-c", probe + "; exec sleep 100")
    as_caller("start", "files")
    for _ in range(100):
        if dz.run("logs", "files").stdout:
            break
        time.sleep(0.02)
    assert dz.run("logs", "files").stdout.split() == [str(low), str(hard)]
    dz.run("rm", "--force", "files")


def wait_stopped(m, name, timeout=5):
    """True once the domain is stopped (a kill returns before it is down)."""
    end = time.monotonic() + timeout
    while domains(m)[name]["state"] == "running" and time.monotonic() < end:
        time.sleep(0.05)
    return domains(m)[name]["state"] == "stopped"


def test_lifecycle(dz, workdir):
    dz.run("create", "svc", "--memory", "64M", "--pids", "64", "--",
           "/bin/sh", "-c", "echo started; exec sleep 1000")
    d = domains(dz)["svc"]
    assert d["state"] == "created" and d["limits"]["memory"] == 64 << 20
    dz.run("start", "svc")
    d = domains(dz)["svc"]
    assert d["state"] == "running" and d["init_pid"] > 0
    # the host sees the domain's root as an unprivileged uid
    with open(f"/proc/{d['init_pid']}/status") as f:
        uid_line = [l for l in f if l.startswith("Uid:")][0]
    assert int(uid_line.split()[1]) == d["uid_base"] >= 100000
    p = dz.fail("start", "svc")
    assert "already running" in p.stderr
    p = dz.fail("rm", "svc")
    assert "running" in p.stderr
    time.sleep(0.3)
    assert "started" in dz.run("logs", "svc").stdout
    dz.run("stop", "svc", "--timeout", "2")
    d = domains(dz)["svc"]
    assert d["state"] == "stopped"
    dz.run("restart", "svc")
    assert domains(dz)["svc"]["state"] == "running"
    # options on either side of the name, with a space or an =
    dz.run("stop", "--timeout=2", "svc")
    assert domains(dz)["svc"]["state"] == "stopped"
    dz.run("start", "svc")
    dz.run("kill", "-s", "SIGTERM", "svc")
    assert wait_stopped(dz, "svc")
    dz.run("start", "svc")
    dz.run("kill", "svc")
    assert wait_stopped(dz, "svc")
    dz.run("rm", "svc")
    assert "svc" not in domains(dz)
    mp = os.path.join(dz.root, "run/domains/svc")
    assert not any(mp in l for l in open("/proc/self/mountinfo"))


def test_listings_take_json_after_the_command(dz):
    dz.run("create", "j", "--", "/bin/true")
    assert json.loads(dz.run("ls", "--json").stdout) == json.loads(dz.run("--json", "ls").stdout)
    assert (json.loads(dz.run("inspect", "j", "--json").stdout)
            == json.loads(dz.run("inspect", "--json", "j").stdout)
            == json.loads(dz.run("--json", "inspect", "j").stdout))
    trees = json.loads(dz.run("fs", "ls", "--json").stdout)
    assert trees == json.loads(dz.run("--json", "fs", "ls").stdout) and trees
    assert "no arguments" in dz.fail("ls", "--json", "extra").stderr
    assert "need a domain NAME" in dz.fail("inspect", "--json").stderr


def test_prune_removes_what_a_killed_run_rm_left(dz):
    from conftest import MEZZO
    env = dict(os.environ, MEZZO_ROOT=dz.root, ASAN_OPTIONS="detect_leaks=0")
    dz.run("create", "keep", "--", "/bin/true")
    dz.run("run", "--name", "kept-run", "--", "/bin/true")  # without --rm: the user's
    runs = {n: subprocess.Popen([MEZZO, "run", "--rm", "--name", n, "--", "/bin/sleep", "100"],
                                env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in ("dead", "live")}
    try:
        for _ in range(200):
            d = domains(dz)
            if all(d.get(n, {}).get("state") == "running" for n in runs):
                break
            time.sleep(0.05)
        assert d["dead"]["autoremove"] and not d["keep"]["autoremove"]
        assert not d["kept-run"]["autoremove"]
        runs["dead"].kill()  # the run, supervisor of its domain: no one to remove it
        runs["dead"].wait()
        # (run by `mezzo serve`, the supervisor is the worker the killed
        # client takes along: it dies a moment later)
        for _ in range(200):
            if domains(dz)["dead"]["state"] == "orphaned":
                break
            time.sleep(0.02)
        assert domains(dz)["dead"]["state"] == "orphaned"
        assert dz.run("prune", "--dry-run").stdout.split() == ["dead"]
        assert "dead" in domains(dz)
        assert dz.run("prune").stdout.split() == ["dead"]
        d = domains(dz)
        assert set(d) == {"keep", "kept-run", "live"} and d["live"]["state"] == "running"
        assert dz.run("prune").stdout == ""
        assert "unknown argument" in dz.fail("prune", "dead").stderr
    finally:
        runs["live"].terminate()  # a run stopped so removes its domain itself
        runs["live"].wait(timeout=30)
    assert set(domains(dz)) == {"keep", "kept-run"}


def wait_gone(m, name, timeout=10):
    """True once the domain is gone: from the catalog, and its run directory
    (logs, console socket) with it."""
    end = time.monotonic() + timeout
    rundir = os.path.join(m.root, "run/domains", name)
    while (name in domains(m) or os.path.exists(rundir)) and time.monotonic() < end:
        time.sleep(0.05)
    return name not in domains(m) and not os.path.exists(rundir)


def test_run_detached(dz):
    """`run -d` makes and starts a domain in one command: it prints the name
    and returns once the command runs; the domain is then like a started one
    (logs, exec, stop, rm), and with --rm it goes away once it stops or its
    command exits.  A failure to make it changes nothing."""
    name = dz.run("run", "-d", "--", "/bin/sh", "-c", "echo out-$(hostname); exec sleep 1000").stdout
    name = name.strip()
    assert name.startswith("run-")
    d = domains(dz)[name]
    assert d["state"] == "running" and not d["autoremove"]
    assert os.getsid(d["supervisor_pid"]) == d["supervisor_pid"], "not detached"
    assert dz.run("exec", name, "--", "/bin/hostname").stdout == name + "\n"
    for _ in range(100):
        if f"out-{name}" in dz.run("logs", name).stdout:
            break
        time.sleep(0.05)
    assert f"out-{name}" in dz.run("logs", name).stdout
    assert "already exists" in dz.fail("run", "-d", "--name", name, "--", "/bin/true").stderr
    dz.run("stop", name)
    assert domains(dz)[name]["state"] == "stopped"
    dz.run("rm", name)

    # --rm: removed once stopped, and once its command exits by itself
    assert dz.run("-q", "run", "--detach", "--rm", "--name", "gone", "--",
                  "/bin/sleep", "1000").stdout == ""
    assert domains(dz)["gone"]["autoremove"]
    dz.run("stop", "gone")
    assert wait_gone(dz, "gone")
    assert dz.run("run", "-d", "--rm", "--name", "brief", "--", "/bin/true").stdout == "brief\n"
    assert wait_gone(dz, "brief")
    # its supervisor killed: an orphan that `prune` removes, as a killed `run --rm`'s
    dz.run("run", "-d", "--rm", "--name", "killed", "--", "/bin/sleep", "1000")
    os.kill(domains(dz)["killed"]["supervisor_pid"], signal.SIGKILL)
    for _ in range(100):
        if domains(dz)["killed"]["state"] == "orphaned":
            break
        time.sleep(0.05)
    assert domains(dz)["killed"]["state"] == "orphaned"
    assert dz.run("prune").stdout.split() == ["killed"]
    assert "killed" not in domains(dz)

    # bad input: the usage, or the error of a `create`; nothing made
    p = dz.fail("run", "-d", "--image", "nosuch", "--", "/bin/true")
    assert "nosuch" in p.stderr
    assert dz.run("run", "-d", "--name", "../x", "--", "/bin/true", check=False).returncode != 0
    assert dz.run("run", "-d", check=False).returncode == 2
    assert domains(dz) == {}
    for n in (name, "gone", "brief", "killed"):
        assert glob.glob(f"/sys/fs/cgroup/*/mezzo/{n}.*") == []


def trace_steps(path, until, timeout=10):
    """[(ms, step)] of a MEZZO_TRACE file, once it names the step until."""
    end = time.monotonic() + timeout
    while True:
        steps = []
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    pid, ms, step = (line.split(None, 2) + ["", "", ""])[:3]
                    if step and ms != "-":
                        steps.append((float(ms), step.strip()))
        if any(s == until for _, s in steps) or time.monotonic() > end:
            return steps
        time.sleep(0.02)


def test_trace_notes_where_a_start_goes(dz, workdir):
    """MEZZO_TRACE=FILE: the steps of a start and of its stop, each with its
    time since the command's first, in the order they happen (what
    bench/timeline summarizes).  (Off: test_serve.py, a traced server.)"""
    path = os.path.join(workdir, "trace")
    dz.run("create", "tr", "--", "/bin/sleep", "1000")
    dz.run("start", "tr", env={"MEZZO_TRACE": path})
    steps = trace_steps(path, "running recorded")
    t = {}
    for ms, s in steps:
        t.setdefault(s, ms)
    start = ["main", "supervise", "claimed", "mount namespace made", "spawn: begin",
             "spawn: cgroup v2 made", "spawn: pid 1 cloned", "spawn: id maps written",
             "spawn: both exec'd", "spawned", "running recorded"]
    assert [s for s in start if s not in t] == [], steps
    assert [t[s] for s in start] == sorted(t[s] for s in start), steps
    assert t["main"] == 0 or t.get("serve: command taken") == 0, steps
    # pid 1's and pid 2's own steps reach the supervisor's table where they
    # share its memory: on x86-64, not in a build with AddressSanitizer
    kids = ["pid 1: go; cgroups joined", "pid 1: mounts made", "pid 1: exec init",
            "pid 2: exec command"]
    from conftest import MEZZO
    shared = platform.machine() == "x86_64" and "build-san" not in os.path.realpath(MEZZO)
    if shared or any(s in t for s in kids):
        order = ["spawn: id maps written"] + kids + ["spawn: both exec'd"]
        assert [s for s in order if s not in t] == [], steps
        assert [t[s] for s in order] == sorted(t[s] for s in order), steps

    dz.run("stop", "tr")
    stop = ["init exited", "processes and cgroups gone", "tree unmounted", "stop recorded"]
    steps = trace_steps(path, "stop recorded")
    t = {s: ms for ms, s in steps}
    assert [t.get(s) for s in stop] == sorted(t[s] for s in stop if s in t), steps

    dz.run("rm", "tr")


def test_writes_are_private_and_snapshots_work(dz):
    dz.run("run", "--name", "a", "--", "/bin/sh", "-c", "echo mine > /etc/motd")
    p = dz.run("run", "--rm", "--", "/bin/sh", "-c", "cat /etc/motd 2>/dev/null; echo end")
    assert "mine" not in p.stdout
    dz.run("snapshot", "a", "a-v1")
    p = dz.run("run", "--rm", "--image", "a-v1", "--", "/bin/cat", "/etc/motd")
    assert p.stdout == "mine\n"
    dz.run("rm", "a")


def test_host_files_invisible(dz, workdir):
    marker = os.path.join("/tmp", "mezzo-host-marker-%d" % os.getpid())
    open(marker, "w").write("host secret")
    try:
        p = dz.run("run", "--rm", "--", "/bin/sh", "-c",
                   f"cat {marker} 2>&1; ls /tmp; cat /proc/mounts | grep -c ' / '")
        assert "host secret" not in p.stdout
    finally:
        os.unlink(marker)


def test_bad_input(dz):
    p = dz.fail("run", "--rm", "--image", "nosuch", "--", "/bin/true")
    assert "nosuch" in p.stderr
    dz.run("create", "dup")
    p = dz.fail("create", "dup")
    assert "already exists" in p.stderr
    p = dz.fail("create", "../evil")
    assert "invalid" in p.stderr
    p = dz.fail("rm", "missing")
    assert "no domain" in p.stderr
    p = dz.fail("stop", "dup")
    assert "not running" in p.stderr
    p = dz.run("run", check=False)
    assert p.returncode == 2
    p = dz.run("create", "x", "--memory", "lots", check=False)
    assert p.returncode == 2
    for args, says in ((["stop", "--timeout"], "wants a value"),
                       (["stop", "dup", "--timeout", "soon"], "wants seconds"),
                       (["stop", "dup", "other"], "exactly one domain NAME"),
                       (["stop", "--timeout", "1", "--timeout", "2", "dup"], "given twice"),
                       (["stop", "--frobnicate", "dup"], "unknown option"),
                       (["stop", "dup", "--timeout=+5"], "wants seconds"),
                       (["stop", "dup", "help"], "exactly one domain NAME"),
                       (["kill", "dup", "--signal", "12abc"], "unknown signal"),
                       (["kill", "dup", "--signal", " 9"], "unknown signal"),
                       (["kill", "-s", "BOGUS", "dup"], "unknown signal"),
                       (["kill"], "exactly one domain NAME")):
        p = dz.run(*args, check=False)
        assert p.returncode == 2 and says in p.stderr, (args, p.stderr)
    assert domains(dz)["dup"]["state"] == "created"
    dz.run("rm", "dup")


def test_missing_default_image_says_how_to_make_it(mezzo):
    """A store that has not made the default image tells how to."""
    p = mezzo.fail("run", "--rm", "--", "/bin/true")
    assert "no image, version or tree named 'busybox'" in p.stderr
    assert "'mezzo image busybox'" in p.stderr
    p = mezzo.fail("run", "--rm", "--image", "nosuch", "--", "/bin/true")
    assert "mezzo image busybox" not in p.stderr


def test_start_fails_cleanly_while_its_tree_is_served_elsewhere(dz, workdir):
    """A domain's tree served by `mezzo fs mount` cannot be claimed with the
    domain: the start ends with that error, and leaves no process, cgroup or
    mount behind."""
    import glob
    dz.run("create", "busy", "--", "/bin/sleep", "1000")
    mp = os.path.join(workdir, "mnt")
    os.makedirs(mp)
    dz.run("fs", "mount", "domain.busy", mp)
    p = dz.fail("start", "busy")
    assert "already served" in p.stderr
    assert domains(dz)["busy"]["state"] != "running"
    assert glob.glob("/sys/fs/cgroup/*/mezzo/busy.*") == []
    with open("/proc/self/mountinfo") as f:
        assert os.path.join(dz.root, "run/domains/busy") not in f.read()
    dz.run("fs", "umount", mp)
    dz.run("start", "busy")
    assert domains(dz)["busy"]["state"] == "running"
    dz.run("stop", "busy")


def test_supervisor_killed(dz):
    dz.run("create", "victim", "--", "/bin/sleep", "1000")
    dz.run("start", "victim")
    d = domains(dz)["victim"]
    os.kill(d["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.2)
    d = domains(dz)["victim"]
    assert d["state"] != "running", "ls must tell the truth after a supervisor crash"
    # the orphaned domain can be removed cleanly, and nothing leaks
    subprocess.run(["umount", "-l", os.path.join(dz.root, "run/domains/victim/root")],
                   capture_output=True)
    dz.run("rm", "--force", "victim")
    assert "victim" not in domains(dz)


def control_name(root, name):
    """The abstract address of a domain's control socket (src/domain/control.c)."""
    h = 1469598103934665603
    for c in root.encode():
        h = ((h ^ c) * 1099511628211) & (2**64 - 1)
    return f"mezzo-ctl/{name}.{(h ^ (h >> 32)) & 0xffffffff:08x}"


def listening(addr):
    with open("/proc/net/unix") as f:
        return any(l.split()[-1] == "@" + addr for l in f.read().splitlines()[1:]
                   if len(l.split()) >= 8)


def domain_pids(m, name):
    """The processes in the cgroups (v1 or v2, and below) of m's domain NAME."""
    pids = set()
    group = f"mezzo/{name}.{cgroup_tag(m.root)}"
    for top in glob.glob(f"/sys/fs/cgroup/*/{group}") + glob.glob(f"/sys/fs/cgroup/{group}"):
        for d, _, _ in os.walk(top):
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return sorted(pids)


def ignores_term(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            ign = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
    except (OSError, StopIteration):
        return False
    return bool(ign & (1 << (signal.SIGTERM - 1)))


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"]


def test_stop_timeout_is_the_stops_own(dz):
    """`stop --timeout N` kills after N seconds, whatever the start said (the
    supervisor hears it on its control socket)."""
    dz.run("create", "deaf", "--", "/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
    dz.run("start", "deaf")
    addr = control_name(dz.root, "deaf")
    assert listening(addr)
    # `start` returns once the command is exec'd, which can be before the
    # shell has run its `trap`: a SIGTERM then would end it at once (a served
    # start is quick enough for that to happen)
    for _ in range(500):
        if any(ignores_term(p) for p in domain_pids(dz, "deaf")):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the shell never ignored SIGTERM")
    t0 = time.monotonic()
    dz.run("stop", "deaf", "--timeout", "1")
    took = time.monotonic() - t0
    d = domains(dz)["deaf"]
    assert d["state"] == "stopped"
    # it ignores SIGTERM, so only the SIGKILL after 1 s ended it (the
    # start's timeout is 10 s)
    assert 0.9 <= took < 8, took
    assert glob.glob("/sys/fs/cgroup/*/mezzo/deaf.*") == []
    for _ in range(100):  # the socket dies with its supervisor
        if not listening(addr):
            break
        time.sleep(0.02)
    assert not listening(addr)


def test_stop_is_not_fooled_by_an_impostor(dz):
    """Someone else holding the domain's control address first (to claim
    "stopped" while it runs on) only makes stop go through the catalog and
    a signal."""
    addr = control_name(dz.root, "fooled")
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
            "s.bind('\\0'+sys.argv[1]); s.listen(4); print('bound', flush=True)\n"
            "while True:\n c,_=s.accept(); c.recv(256); c.send(b'stopped'); c.close()\n")
    imp = subprocess.Popen(NOBODY + [code, addr], stdout=subprocess.PIPE, text=True)
    try:
        assert imp.stdout.readline().strip() == "bound"
        dz.run("create", "fooled", "--", "/bin/sleep", "1000")
        dz.run("start", "fooled")  # starts, without a control socket of its own
        sup = domains(dz)["fooled"]["supervisor_pid"]
        dz.run("stop", "fooled")
        assert domains(dz)["fooled"]["state"] == "stopped"
        try:  # gone, or a zombie its new parent has yet to reap
            with open(f"/proc/{sup}/stat") as f:
                assert f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            pass
    finally:
        imp.kill()
        imp.wait()


def test_stop_answers_root_only(dz):
    """The control socket takes no request from an unprivileged user."""
    dz.run("create", "guarded", "--", "/bin/sleep", "1000")
    dz.run("start", "guarded")
    addr = control_name(dz.root, "guarded")
    assert listening(addr)
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
            "try:\n s.connect('\\0'+sys.argv[1]); s.send(b'stop 0 guarded'); a=s.recv(64)\n"
            "except (BrokenPipeError, ConnectionResetError):\n a=b''\n"
            "print('answer', a)\n")
    p = subprocess.run(NOBODY + [code, addr], capture_output=True, text=True, timeout=30)
    assert p.stdout.strip() == "answer b''", p.stdout + p.stderr  # hung up on
    time.sleep(0.2)
    assert domains(dz)["guarded"]["state"] == "running"
    # root's request for another domain's name is refused too
    code = code.replace("stop 0 guarded", "stop 0 other")
    p = subprocess.run(["/usr/bin/python3", "-c", code, addr], capture_output=True, text=True,
                       timeout=30)
    assert p.stdout.strip() == "answer b''", p.stdout + p.stderr
    assert domains(dz)["guarded"]["state"] == "running"
    dz.run("stop", "guarded")
    assert domains(dz)["guarded"]["state"] == "stopped"


def test_console_attach_and_detach(dz):
    from conftest import MEZZO
    dz.run("create", "con", "--", "/bin/cat")
    dz.run("start", "con")
    env = dict(os.environ, MEZZO_ROOT=dz.root)
    p = subprocess.Popen([MEZZO, "console", "con"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        time.sleep(0.3)
        p.stdin.write(b"ping-through-console\n")
        p.stdin.flush()
        time.sleep(0.5)
        p.stdin.write(b"\x1d")  # Ctrl-]: detach
        p.stdin.flush()
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0
    assert b"ping-through-console" in out
    # detached, the domain runs on, and its output was kept
    assert domains(dz)["con"]["state"] == "running"
    assert "ping-through-console" in dz.run("logs", "con").stdout
    dz.run("stop", "con", "--timeout", "1")


def test_services_run_restart_and_stop_in_reverse_order(dz):
    # each service logs to the console (its "up" once its trap is set); "b"
    # crashes once, then stays up
    dz.run("create", "srv",
           "--service", "a=sh -c 'trap \"echo a-down; exit 0\" TERM; echo a-up; "
                        "while :; do sleep 0.05; done'",
           "--service", "b=sh -c 'if [ ! -e /tmp/once ]; then touch /tmp/once; exit 3; fi; "
                        "trap \"echo b-down; exit 0\" TERM; echo b-up; while :; do sleep 0.05; done'")
    dz.run("start", "srv")
    deadline = time.time() + 5
    while time.time() < deadline and not all(
            w in dz.run("logs", "srv").stdout for w in ("a-up", "b-up")):
        time.sleep(0.05)
    log = dz.run("logs", "srv").stdout
    assert "a-up" in log and "b-up" in log, log
    assert "service b exited with status 3" in log, log
    # no main command: the domain stays up, its services are children of init
    ps = dz.run("exec", "srv", "--", "ps", "-o", "ppid,args").stdout
    assert domains(dz)["srv"]["state"] == "running"
    assert sum(1 for l in ps.splitlines() if l.split()[0] == "1" and "sh -c" in l) == 2, ps
    dz.run("stop", "srv")
    assert domains(dz)["srv"]["state"] == "stopped"
    log = dz.run("logs", "srv").stdout
    assert log.index("b-down") < log.index("a-down"), "services stopped out of order:\n" + log
    dz.run("rm", "srv")


def test_services_beside_a_main_command(dz):
    p = dz.run("run", "--rm", "--service", "s=sleep 1000", "--",
               "sh", "-c", "sleep 0.2; ps -o ppid,args | grep -c '^ *1 sleep 1000'; exit 5",
               check=False)
    assert p.returncode == 5 and p.stdout.strip() == "1", p.stdout + p.stderr


def test_image_init_is_pid_1(dz):
    p = dz.run("run", "--rm", "--init", "image", "--", "/bin/sh", "-c", "echo $$; cat /proc/1/cmdline")
    assert p.stdout.split("\n")[0] == "1"
    assert "mezzo-init" not in p.stdout
    p = dz.fail("run", "--rm", "--init", "image", "--", "/no/such/init")
    assert "cannot run the image's init" in p.stderr


def test_service_bad_input(dz):
    for args, msg in [
        (["--service", "novalue"], "NAME=COMMAND"),
        (["--service", "=cmd"], "NAME=COMMAND"),
        (["--service", "a b=cmd"], "NAME=COMMAND"),
        (["--service", "a="], "no command"),
        (["--service", "a=sh -c 'x"], "unterminated"),
        (["--service", "a=x", "--service", "a=y"], "twice"),
        (["--init", "image", "--service", "a=x"], "mezzo's init"),
        (["--init", "systemd"], "'mezzo' or 'image'"),
    ]:
        p = dz.fail("create", "bad", *args)
        assert msg in p.stderr, (args, p.stderr)
    assert "bad" not in domains(dz)


def test_many_domains_start_exec_stop(dz):
    """A hundred domains at once (bench/domains density does a thousand):
    each with its init and a sleeping service; all start, all answer exec,
    all stop and go without a trace."""
    n = 100
    names = [f"m{i}" for i in range(n)]
    for name in names:
        dz.run("create", name, "--service", "idle=sleep 100000")
        dz.run("start", name)
    running = [d for d in domains(dz).values() if d["state"] == "running"]
    assert len(running) == n
    for name in names:
        assert dz.run("exec", name, "--", "/bin/true").returncode == 0
    for name in names:
        dz.run("stop", name)
        dz.run("rm", name)
    assert domains(dz) == {}
    with open("/proc/self/mountinfo") as f:
        assert dz.root not in f.read(), "a domain's mount is left"
    left = subprocess.run(["pgrep", "-f", "sleep 100000"], capture_output=True, text=True)
    pids = [p for p in left.stdout.split() if p]
    ours = {f"/mezzo/{name}." for name in names}
    for p in pids:  # only ours: those whose cgroup names this store's domains
        try:
            with open(f"/proc/{p}/cgroup") as f:
                cg = f.read()
        except FileNotFoundError:
            continue
        assert not any(o in cg for o in ours), f"process {p} left: {cg}"
    import glob
    for o in ours:
        left = glob.glob(f"/sys/fs/cgroup/*{o}*") + glob.glob(f"/sys/fs/cgroup/*/*{o}*")
        assert not left, f"cgroups left: {left}"
