"""`mezzo serve` (src/serve/): commands run in a fork of a resident server.

What must hold: a command run by the server behaves as the same command run
directly (output, errors, exit status, stdin, working directory,
environment, signals, death with its caller); a caller the server must not
serve (other namespaces, fewer capabilities, no_new_privs, another uid) is
declined and runs directly; garbage on the socket changes nothing; one
server per socket; a stopped or killed server leaves no process and no
socket behind, and commands go on running directly.
"""
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import MEZZO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

SERVED = "serve: request from pid"


def procs_with(text):
    """Pids whose command line contains text."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(p))
        except OSError:
            pass
    return out


def wait_for(cond, timeout=10):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def can_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Server:
    def __init__(self, workdir):
        self.path = os.path.join(workdir, "serve.sock")
        self.proc = None

    def start(self, *extra, env=None, preexec_fn=None):
        env = dict(os.environ, MEZZO_SOCKET="none", **(env or {}))
        self.proc = subprocess.Popen([MEZZO, "serve", "--socket", self.path, *extra],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=preexec_fn)
        if not wait_for(lambda: can_connect(self.path) or self.proc.poll() is not None, 30):
            pid = self.proc.pid
            state = {f: open(f"/proc/{pid}/{f}").read().strip() for f in ("stat", "wchan")
                     if os.path.exists(f"/proc/{pid}/{f}")}
            raise AssertionError(f"mezzo serve neither listens nor exits after 30 s: {state}; "
                                 f"socket {'exists' if os.path.exists(self.path) else 'missing'}")
        assert self.proc.poll() is None, self.proc.stderr.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def cleanup(self):
        """Whatever is left of this server (it, spares, workers): killed."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in procs_with(self.path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in (self.path, self.path + ".lock"):
            if os.path.exists(p):
                os.unlink(p)


@pytest.fixture
def server(workdir):
    s = Server(workdir)
    s.start()
    try:
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def sz(mezzo, server):
    """The test's store, its commands run through the test's server."""
    mezzo.run("image", "busybox", env={"MEZZO_SOCKET": "none"})
    real_run = mezzo.run

    def run(*args, check=True, input=None, env=None):
        e = {"MEZZO_SOCKET": server.path, "MEZZO_DEBUG": "1"}
        e.update(env or {})
        return real_run(*args, check=check, input=input, env=e)

    mezzo.run = run
    mezzo.socket = server.path
    yield mezzo
    for d in json.loads(mezzo.run("--json", "ls").stdout):
        mezzo.run("rm", "--force", d["name"], check=False)


def served(p):
    return SERVED in p.stderr


def test_served_command_behaves_as_a_direct_one(sz, workdir):
    p = sz.run("run", "--rm", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 3",
               check=False)
    assert served(p), p.stderr
    assert (p.returncode, p.stdout) == (3, "out\n") and "err\n" in p.stderr
    p = sz.run("run", "--rm", "--", "/bin/cat", input="hello from stdin\n")
    assert served(p) and p.stdout == "hello from stdin\n"
    # the caller's own failures, as a direct run says them
    for direct in (False, True):
        env = {"MEZZO_SOCKET": "none"} if direct else {}
        p = sz.run("run", "--rm", "--", "/no/such", check=False, env=env)
        assert served(p) != direct
        assert p.returncode == 127 and "cannot run /no/such" in p.stderr, p.stderr
        p = sz.run("frobnicate", check=False, env=env)
        assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
    # environment (MEZZO_ROOT names the test's store) and working directory
    src = os.path.join(workdir, "tree")
    os.makedirs(os.path.join(src, "etc"))
    with open(os.path.join(src, "etc", "motd"), "w") as f:
        f.write("relative\n")
    p = subprocess.run([MEZZO, "image", "import", "rel", "tree"], cwd=workdir,
                       env=dict(os.environ, MEZZO_ROOT=sz.root, MEZZO_SOCKET=sz.socket,
                                MEZZO_DEBUG="1"),
                       capture_output=True, text=True)
    assert p.returncode == 0 and served(p), p.stderr
    assert "rel" in sz.run("image", "ls").stdout
    # a detached domain's supervisor is a process of its own, in its own session
    name = sz.run("run", "-d", "--", "/bin/sleep", "1000").stdout.strip()
    d = {x["name"]: x for x in json.loads(sz.run("--json", "ls").stdout)}[name]
    assert d["state"] == "running"
    assert os.getsid(d["supervisor_pid"]) == d["supervisor_pid"]
    assert sz.run("exec", name, "--", "/bin/hostname").stdout == name + "\n"
    sz.run("stop", name)
    sz.run("rm", name)


def sig_ignored(pid, sig):
    with open(f"/proc/{pid}/status") as f:
        ign = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
    return bool(ign & (1 << (sig - 1)))


def msgqueue_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        return int(next(l for l in f if l.startswith("Max msgqueue size")).split()[3])


def test_the_worker_takes_on_the_callers_signals_and_limits(sz, workdir):
    """A worker ignores what its caller ignores, and only that, and has its
    caller's resource limits, whatever its spare had (a worker changes only
    what differs from its spare's own state): seen in /proc of the worker
    while it supervises a `run`, both ways round — a caller unlike the
    spares of the test's server, and a plain caller of a server whose spares
    ignore SIGHUP and have a lower limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MSGQUEUE)
    low = min(12345, soft // 2)

    def odd():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (low, hard))

    def worker_state(socket_path, name, preexec):
        env = dict(os.environ, MEZZO_ROOT=sz.root, MEZZO_SOCKET=socket_path, MEZZO_DEBUG="1",
                   ASAN_OPTIONS="detect_leaks=0")
        p = subprocess.Popen([MEZZO, "run", "--rm", "--name", name, "--", "/bin/sleep", "30"],
                             env=env, preexec_fn=preexec, stderr=subprocess.PIPE, text=True)
        try:
            pid = None
            end = time.monotonic() + 10
            while pid is None and time.monotonic() < end:
                for d in json.loads(sz.run("--json", "ls").stdout):
                    if d["name"] == name and d["state"] == "running":
                        pid = d["supervisor_pid"]
                time.sleep(0.02)
            assert pid, f"{name} did not start"
            state = sig_ignored(pid, signal.SIGHUP), msgqueue_limit(pid)
            sz.run("stop", "--timeout", "1", name)
        finally:
            err = p.communicate(timeout=20)[1]
        assert SERVED in err, err
        return state

    assert worker_state(sz.socket, "tk1", odd) == (True, low)
    other = Server(os.path.join(workdir, "odd"))
    os.makedirs(os.path.join(workdir, "odd"))
    other.start(preexec_fn=odd)
    try:
        def spares():
            return [p for p in procs_with(other.path) if p != other.proc.pid]
        assert wait_for(lambda: len(spares()) == 2)  # made once it listens
        assert all(sig_ignored(p, signal.SIGHUP) and msgqueue_limit(p) == low
                   for p in spares())
        assert worker_state(other.path, "tk2", None) == (False, soft)
    finally:
        other.cleanup()


def test_tracing_is_the_callers_choice(sz, workdir):
    """MEZZO_TRACE is the caller's: a served command traces when its caller
    asks, to the caller's file, and not because the server was started
    with it."""
    server_file = os.path.join(workdir, "server.trace")
    mine = os.path.join(workdir, "mine.trace")
    other = Server(os.path.join(workdir, "traced"))
    os.makedirs(os.path.join(workdir, "traced"))
    other.start(env={"MEZZO_TRACE": server_file})
    try:
        def run(**extra):
            p = subprocess.run([MEZZO, "run", "--rm", "--", "/bin/true"], capture_output=True,
                               text=True, env=dict(os.environ, MEZZO_ROOT=sz.root,
                                                   MEZZO_SOCKET=other.path, MEZZO_DEBUG="1",
                                                   **extra))
            assert p.returncode == 0 and SERVED in p.stderr, p.stderr
        run()
        run(MEZZO_TRACE=mine)
        with open(mine) as f:
            steps = [l.split(None, 2)[2].strip() for l in f if l.strip()]
        # whole when the command returns: written before the status goes back
        assert steps[0] == "serve: command taken" and "stop recorded" in steps, steps
        written = open(server_file).read() if os.path.exists(server_file) else ""
        assert "serve: command taken" not in written, written
    finally:
        other.cleanup()


def test_started_domains_outlive_their_caller_and_the_server(sz, server):
    """Under the server, `start` and `run -d` make no supervisor by fork: the
    worker becomes it.  It must behave as a forked one: the command returns
    once the domain runs, says what a direct start says, and the supervisor
    lives on in its own session, past its caller and past the server."""
    def doms():
        return {x["name"]: x for x in json.loads(sz.run("--json", "ls").stdout)}

    sz.run("create", "a", "--", "/bin/sleep", "1000")
    p = sz.run("start", "a")
    assert served(p) and p.stdout == ""
    sup = doms()["a"]["supervisor_pid"]
    assert os.getsid(sup) == sup
    p = sz.run("start", "a", check=False)
    assert p.returncode == 1 and "already running" in p.stderr, p.stderr
    p = sz.run("start", "nosuch", check=False)
    assert p.returncode == 1 and "no domain named 'nosuch'" in p.stderr, p.stderr
    p = sz.run("-q", "run", "-d", "--name", "b", "--", "/bin/sleep", "1000")
    assert served(p) and p.stdout == ""
    p = sz.run("run", "-d", "--rm", "--", "/no/such", check=False)
    assert p.returncode == 127 and "cannot run /no/such" in p.stderr, p.stderr
    assert set(doms()) == {"a", "b"}
    sups = [sup, doms()["b"]["supervisor_pid"]]
    server.stop()
    assert server.proc.returncode == 0
    assert all(pid in procs_with(server.path) for pid in sups)
    d = doms()
    assert d["a"]["state"] == d["b"]["state"] == "running"
    assert sz.run("exec", "b", "--", "/bin/hostname").stdout == "b\n"
    sz.run("stop", "a")
    sz.run("stop", "b")
    sz.run("rm", "a", "b")
    assert wait_for(lambda: procs_with(server.path) == [])


def test_signals_reach_the_command_and_a_killed_caller_takes_it_along(sz, server):
    env = dict(os.environ, MEZZO_ROOT=sz.root, MEZZO_DEBUG="1")

    def start(socket_path):
        """`run` of a sleep in domain "sig"; the worker's pid, if served."""
        p = subprocess.Popen([MEZZO, "run", "--rm", "--name", "sig", "--", "/bin/sleep", "1000"],
                             env=dict(env, MEZZO_SOCKET=socket_path),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        worker = None
        if socket_path != "none":
            # the worker says so first thing (and the domain's processes hold
            # stderr too: no read to its end here)
            line = p.stderr.readline()
            assert SERVED in line, line
            worker = int(line.split("[")[1].split("]")[0])
        assert wait_for(lambda: "sig" in sz.run("ls").stdout)
        return p, worker

    # SIGTERM to the caller stops the domain, as it does to a direct run
    codes = []
    for path in (server.path, "none"):
        p, worker = start(path)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        p.stderr.close()
        codes.append(p.returncode)
        assert (worker is not None) == (path != "none")
        assert wait_for(lambda: "sig" not in sz.run("ls").stdout)
    assert codes[0] == codes[1] == 128 + signal.SIGTERM, codes

    # a command that leaves SIGTERM to its default (`exec`) dies of it,
    # served as directly: the client's own blocking of the signals it
    # forwards is not the command's
    sz.run("run", "-d", "--name", "x", "--", "/bin/sleep", "1000")
    codes = []
    for path, secs in ((server.path, "1001"), ("none", "1002")):
        p = subprocess.Popen([MEZZO, "exec", "x", "--", "/bin/sleep", secs],
                             env=dict(env, MEZZO_SOCKET=path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        assert wait_for(lambda: subprocess.run(["pgrep", "-f", f"^/bin/sleep {secs}$"],
                                               capture_output=True).returncode == 0)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        codes.append(p.returncode)
    assert codes[0] == codes[1] == -signal.SIGTERM, codes
    sz.run("rm", "--force", "x")

    # SIGKILL to the caller: the worker dies with it, as a direct run would
    p, worker = start(server.path)
    assert worker in procs_with(server.path)
    p.kill()
    p.wait()
    assert wait_for(lambda: not os.path.exists(f"/proc/{worker}"))
    # what it left is what a killed direct run leaves: prune removes it
    assert wait_for(lambda: "orphaned" in sz.run("ls").stdout)
    assert sz.run("prune").stdout.split() == ["sig"]
    assert "sig" not in sz.run("ls").stdout
    p.stderr.close()


def test_callers_it_must_not_serve_run_directly(sz, server):
    env = dict(os.environ, MEZZO_ROOT=sz.root, MEZZO_SOCKET=server.path, MEZZO_DEBUG="1")

    def version(*wrapper):
        p = subprocess.run([*wrapper, MEZZO, "--version"], env=env, capture_output=True,
                           text=True)
        assert p.returncode == 0 and p.stdout.startswith("mezzo "), p.stderr
        return p.stderr

    assert SERVED in version()
    err = version("unshare", "--mount")
    assert SERVED not in err and "other namespaces" in err, err
    err = version("unshare", "--net")
    assert SERVED not in err and "other namespaces" in err, err
    err = version("setpriv", "--bounding-set", "-sys_module")
    assert SERVED not in err and "credentials" in err, err
    err = version("setpriv", "--no-new-privs")
    assert SERVED not in err and "credentials" in err, err
    # another uid cannot even connect (the socket is root's, mode 0600)
    assert oct(os.stat(server.path).st_mode & 0o777) == "0o600"
    err = version("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
    assert SERVED not in err


def test_garbage_changes_nothing_and_one_server_per_socket(sz, server, workdir):
    def exchange(data, fds=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(server.path)
        if fds:
            s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("4i", *fds))])
        elif data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(8)
        s.close()
        return struct.unpack("Ii", reply) if len(reply) == 8 else None

    null = os.open("/dev/null", os.O_RDWR)
    try:
        assert exchange(b"") == (1, 1)                      # nothing: declined
        assert exchange(b"x" * 300) == (1, 1)                # no fds
        assert exchange(b"\0" * 296, [null] * 4) == (1, 1)   # bad magic
        # a request whose blob holds fewer strings than it says
        head = struct.pack("IIIIII", 0x317a6d73, 3, 0, 4, 0o22, 0) + b"\0" * (296 - 24)
        assert exchange(head + b"ls\0\0", [null] * 4) == (1, 1)
    finally:
        os.close(null)
    assert served(sz.run("ls"))

    p = subprocess.run([MEZZO, "serve", "--socket", server.path], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "another `mezzo serve` listens" in p.stderr, p.stderr
    assert served(sz.run("ls"))


def test_stopped_or_killed_server_leaves_nothing(sz, server):
    assert wait_for(lambda: len(procs_with(server.path)) == 3)  # it and two spares
    server.stop()
    assert server.proc.returncode == 0
    assert not os.path.exists(server.path)
    assert wait_for(lambda: procs_with(server.path) == [])
    p = sz.run("ls")
    assert p.returncode == 0 and not served(p)

    # killed: its spares die with it; the stale socket is replaced by the next
    server.start()
    assert served(sz.run("ls"))
    server.proc.kill()
    server.proc.wait()
    assert wait_for(lambda: procs_with(server.path) == [])
    assert os.path.exists(server.path)
    p = sz.run("ls")
    assert p.returncode == 0 and not served(p)
    server.start()
    assert served(sz.run("ls"))

    # --detach: returns once listening, with the server's pid
    server.stop()
    p = subprocess.run([MEZZO, "serve", "--socket", server.path, "--detach"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    pid = int(p.stdout)
    assert served(sz.run("ls"))
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: procs_with(server.path) == [])
    assert not os.path.exists(server.path)


def test_commands_survive_a_server_killed_under_them(sz, server):
    """kill -9 of the server while commands come: each either is run by a
    worker (which outlives the server) or, never taken, runs directly; none
    fails, none runs twice, and the store stays consistent."""
    import threading
    results = []

    def client(k):
        for i in range(15):
            p = sz.run("-q", "create", f"c{k}-{i}", "--", "/bin/true", check=False)
            results.append((p.returncode, p.stderr))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for _ in range(4):
        time.sleep(0.05)
        server.proc.kill()
        server.proc.wait()
        server.start()
    for t in threads:
        t.join()
    bad = [r for r in results if r[0] != 0]
    assert bad == [] and len(results) == 30, bad
    names = {d["name"] for d in json.loads(sz.run("--json", "ls").stdout)}
    assert names == {f"c{k}-{i}" for k in range(2) for i in range(15)}
    assert sz.run("store", "check").returncode == 0
