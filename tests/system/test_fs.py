"""The domain file system: POSIX semantics of a mounted tree, for real.

Each test imports a small image, mounts a tree of it with FUSE passthrough
and exercises the kernel interface the way unmodified Debian software does.
"""
import ctypes
import errno
import fcntl
import glob
import mmap
import os
import random
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


GRACE0 = {"MEZZO_ORPHAN_GRACE_SECONDS": "0"}  # store check/gc: no file is young


def make_image(mezzo, workdir, name="base"):
    src = os.path.join(workdir, "src-" + name)
    os.makedirs(os.path.join(src, "etc"))
    os.makedirs(os.path.join(src, "usr/bin"))
    with open(os.path.join(src, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(src, "usr/bin/tool"), "wb") as f:
        f.write(b"\x7fELF" + os.urandom(100000))
    os.chmod(os.path.join(src, "usr/bin/tool"), 0o755)
    os.symlink("usr/bin", os.path.join(src, "bin"))
    mezzo.run("image", "import", name, src)
    return src


def mount(mezzo, workdir, source, *extra, name=None):
    mp = os.path.join(workdir, name or ("mnt-" + source.replace(":", "_")))
    os.makedirs(mp, exist_ok=True)
    mezzo.run("fs", "mount", source, mp, *extra)
    return mp


@pytest.fixture
def tree(mezzo, workdir):
    os.chmod(workdir, 0o755)  # other users must reach the mount point
    make_image(mezzo, workdir)
    mp = mount(mezzo, workdir, "base", "--tree", "t", "--dev")
    yield mp
    subprocess.run(["umount", "-l", mp], capture_output=True)


def as_user(uid, gid, fn):
    """Run fn() in a child with the given ids; return its exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fn()
            os._exit(0)
        except PermissionError:
            os._exit(13)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_image_content_visible(tree):
    assert open(os.path.join(tree, "etc/passwd")).read().startswith("root:")
    assert os.readlink(os.path.join(tree, "bin")) == "usr/bin"
    st = os.stat(os.path.join(tree, "bin/tool"))
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_size == 100004


def test_open_flags(tree):
    p = os.path.join(tree, "f")
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    os.write(fd, b"hello")
    os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b" world")
    os.close(fd)
    assert open(p, "rb").read() == b"hello world"
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    assert os.stat(p).st_size == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640


def test_write_to_image_file_is_copy_on_write(mezzo, workdir, tree):
    p = os.path.join(tree, "etc/passwd")
    with open(p, "a") as f:
        f.write("bob:x:1000:1000::/home/bob:/bin/sh\n")
    assert "bob" in open(p).read()
    other = mount(mezzo, workdir, "base", name="other")
    try:
        assert "bob" not in open(os.path.join(other, "etc/passwd")).read()
    finally:
        mezzo.run("fs", "umount", other)


def test_tmpfile_and_linkat(tree):
    fd = os.open(tree, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, b"anon")
    # os.link() calls link(2), which does not follow the /proc magic link
    AT_SYMLINK_FOLLOW = 0x400
    r = libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD,
                    os.path.join(tree, "named").encode(), AT_SYMLINK_FOLLOW)
    assert r == 0, os.strerror(ctypes.get_errno())
    os.close(fd)
    assert open(os.path.join(tree, "named"), "rb").read() == b"anon"


def test_unlinked_open_file_stays_readable(tree):
    p = os.path.join(tree, "gone")
    with open(p, "w") as f:
        f.write("still here")
    fd = os.open(p, os.O_RDONLY)
    os.unlink(p)
    assert not os.path.exists(p)
    assert os.pread(fd, 100, 0) == b"still here"
    os.close(fd)


def test_refused_second_server_leaves_the_first_ones_files(mezzo, workdir, tree):
    """A mount of a tree that is already served fails (EBUSY) before it
    claims the tree: nothing of that tree is its to clean up, not even the
    files the serving one keeps unlinked while open."""
    p = os.path.join(tree, "held")
    with open(p, "w") as f:
        f.write("held open")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.unlink(p)
        other = os.path.join(workdir, "other")
        os.mkdir(other)
        assert "already" in mezzo.fail("fs", "mount", "t", other).stderr
        assert os.fstat(fd).st_size == 9
        assert os.pread(fd, 100, 0) == b"held open"
    finally:
        os.close(fd)
    p = mezzo.run("store", "check")
    assert "0 problems" in p.stdout, p.stdout


def test_last_close_reaps_only_its_own_file(tree):
    """Closing one unlinked file frees that one, not another still open."""
    fds = []
    for name in ("u1", "u2"):
        p = os.path.join(tree, name)
        with open(p, "w") as f:
            f.write(name * 10)
        fds.append(os.open(p, os.O_RDWR))
        os.unlink(p)
    os.close(fds[0])
    st = os.fstat(fds[1])
    assert st.st_nlink == 0 and st.st_size == 20
    os.pwrite(fds[1], b"more", 20)
    assert os.fstat(fds[1]).st_size == 24
    assert os.pread(fds[1], 100, 0) == b"u2" * 10 + b"more"
    os.close(fds[1])


def test_rename_semantics(tree):
    a, b = os.path.join(tree, "a"), os.path.join(tree, "b")
    open(a, "w").write("A")
    open(b, "w").write("B")
    with pytest.raises(FileExistsError):
        renameat2(a, b, RENAME_NOREPLACE)
    renameat2(a, b, RENAME_EXCHANGE)
    assert open(a).read() == "B" and open(b).read() == "A"
    os.rename(a, b)  # replaces
    assert not os.path.exists(a) and open(b).read() == "B"
    os.makedirs(os.path.join(tree, "d1/sub"))
    os.makedirs(os.path.join(tree, "d2"))
    os.rename(os.path.join(tree, "d1/sub"), os.path.join(tree, "d2/sub"))
    assert os.path.isdir(os.path.join(tree, "d2/sub"))
    assert os.stat(os.path.join(tree, "d1")).st_nlink == 2
    assert os.stat(os.path.join(tree, "d2")).st_nlink == 3
    open(os.path.join(tree, "d2/sub/x"), "w").close()
    os.makedirs(os.path.join(tree, "d3"))
    with pytest.raises(OSError) as e:
        os.rename(os.path.join(tree, "d3"), os.path.join(tree, "d2/sub"))
    assert e.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    # an image directory renamed away and back
    os.rename(os.path.join(tree, "etc"), os.path.join(tree, "etc2"))
    assert open(os.path.join(tree, "etc2/passwd")).read().startswith("root")
    assert not os.path.exists(os.path.join(tree, "etc"))


def test_links_dirs_and_special_files(tree):
    p = os.path.join(tree, "orig")
    open(p, "w").write("x")
    os.link(p, os.path.join(tree, "hard"))
    assert os.stat(p).st_nlink == 2
    assert os.stat(p).st_ino == os.stat(os.path.join(tree, "hard")).st_ino
    os.symlink("/nonexistent/target", os.path.join(tree, "sym"))
    assert os.readlink(os.path.join(tree, "sym")) == "/nonexistent/target"
    os.mkdir(os.path.join(tree, "dir"))
    open(os.path.join(tree, "dir/f"), "w").close()
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(tree, "dir"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(os.path.join(tree, "dir/f"))
    os.rmdir(os.path.join(tree, "dir"))
    os.mkfifo(os.path.join(tree, "fifo"))
    assert stat.S_ISFIFO(os.stat(os.path.join(tree, "fifo")).st_mode)
    os.mknod(os.path.join(tree, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.stat(os.path.join(tree, "null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    with open(os.path.join(tree, "null"), "wb") as f:  # mounted --dev: a real device
        f.write(b"discarded")
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(tree, "sock"))
    s.close()
    assert stat.S_ISSOCK(os.stat(os.path.join(tree, "sock")).st_mode)


def test_attributes(tree):
    p = os.path.join(tree, "attr")
    open(p, "w").write("data")
    os.chown(p, 1234, 5678)  # (chown clears set-id bits, so it goes first)
    os.chmod(p, 0o4751)
    os.utime(p, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(p)
    assert stat.S_IMODE(st.st_mode) == 0o4751
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert st.st_mtime_ns == 2_000_000_456 and st.st_atime_ns == 1_000_000_123
    os.truncate(p, 2)
    assert open(p).read() == "da"
    fd = os.open(p, os.O_RDWR)
    os.posix_fallocate(fd, 0, 1 << 20)
    os.close(fd)
    assert os.stat(p).st_size == 1 << 20
    os.setxattr(p, "user.k", b"v")
    os.setxattr(p, "security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert os.getxattr(p, "user.k") == b"v"
    assert set(os.listxattr(p)) >= {"user.k", "security.capability"}
    os.removexattr(p, "user.k")
    with pytest.raises(OSError):
        os.getxattr(p, "user.k")
    sv = os.statvfs(tree)
    assert sv.f_namemax == 255 and sv.f_blocks > 0


def test_write_by_other_user_clears_setuid(tree):
    p = os.path.join(tree, "suid")
    open(p, "w").write("x")
    os.chmod(p, 0o6777)
    os.setxattr(p, "security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    def write():
        with open(p, "a") as f:
            f.write("y")
    assert as_user(1000, 1000, write) == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o777, oct(os.stat(p).st_mode)
    # an open for writing that writes nothing: the kernel must not keep
    # showing a mode that is no longer true
    os.chmod(p, 0o6777)
    assert as_user(1000, 1000, lambda: open(p, "a").close()) == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o777, oct(os.stat(p).st_mode)
    assert "security.capability" not in os.listxattr(p)
    open(p, "a").write("root writes keep nothing to clear")


def test_fsync_and_locks(tree):
    p = os.path.join(tree, "locked")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"x")
    os.fsync(fd)
    os.fdatasync(fd)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    fcntl.flock(fd, fcntl.LOCK_EX)
    code = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\n"
         "try:\n fcntl.lockf(fd,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError: sys.exit(7)\n"
         "sys.exit(0)", p]).returncode
    assert code == 7, "POSIX lock not enforced across processes"
    code = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\n"
         "try:\n fcntl.flock(fd,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError: sys.exit(7)\n"
         "sys.exit(0)", p]).returncode
    assert code == 7, "BSD lock not enforced across processes"
    os.close(fd)


def test_mmap_shared_and_private(tree):
    p = os.path.join(tree, "mapped")
    open(p, "wb").write(b"\0" * 8192)
    with open(p, "r+b") as f:
        m = mmap.mmap(f.fileno(), 8192, flags=mmap.MAP_SHARED)
        m[0:5] = b"SHARE"
        m.flush()
        m.close()
        pm = mmap.mmap(f.fileno(), 8192, flags=mmap.MAP_PRIVATE)
        pm[0:5] = b"PRIVA"
        pm.close()
    assert open(p, "rb").read(5) == b"SHARE"


def test_permissions_sticky_and_setgid(tree):
    secret = os.path.join(tree, "secret")
    open(secret, "w").write("s")
    os.chmod(secret, 0o600)
    assert as_user(1000, 1000, lambda: open(secret).read()) == 13
    tmp = os.path.join(tree, "tmp")
    os.mkdir(tmp)
    os.chmod(tmp, 0o1777)
    mine = os.path.join(tmp, "roots")
    open(mine, "w").close()
    assert as_user(1000, 1000, lambda: os.unlink(mine)) == 13, "sticky bit ignored"
    assert as_user(1000, 1000, lambda: open(os.path.join(tmp, "users"), "w").close()) == 0
    assert os.stat(os.path.join(tmp, "users")).st_uid == 1000
    sg = os.path.join(tree, "shared")
    os.mkdir(sg)
    os.chown(sg, 0, 4242)
    os.chmod(sg, 0o2775)
    open(os.path.join(sg, "f"), "w").close()
    os.mkdir(os.path.join(sg, "sub"))
    assert os.stat(os.path.join(sg, "f")).st_gid == 4242
    assert os.stat(os.path.join(sg, "sub")).st_gid == 4242
    assert os.stat(os.path.join(sg, "sub")).st_mode & stat.S_ISGID


def test_big_sparse_file(tree):
    p = os.path.join(tree, "sparse")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"end", 5 << 30)
    os.close(fd)
    st = os.stat(p)
    assert st.st_size == (5 << 30) + 3
    assert st.st_blocks * 512 < 1 << 20
    fd = os.open(p, os.O_RDONLY)
    assert os.pread(fd, 3, 5 << 30) == b"end"
    assert os.lseek(fd, 0, os.SEEK_DATA) >= (5 << 30) - 4096
    os.close(fd)


def test_names_and_depth(tree):
    ok = "n" * 255
    open(os.path.join(tree, ok), "w").close()
    with pytest.raises(OSError) as e:
        open(os.path.join(tree, "n" * 256), "w")
    assert e.value.errno == errno.ENAMETOOLONG
    d = tree
    for i in range(100):
        d = os.path.join(d, "deep%d" % i)
    os.makedirs(d)
    open(os.path.join(d, "leaf"), "w").write("deep")
    assert open(os.path.join(d, "leaf")).read() == "deep"


def test_large_directory(tree):
    d = os.path.join(tree, "many")
    os.mkdir(d)
    n = 100_000
    for i in range(n):
        os.close(os.open(os.path.join(d, "f%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    names = os.listdir(d)
    assert len(names) == n and len(set(names)) == n


def test_readdir_stable_under_changes(tree):
    d = os.path.join(tree, "busy")
    os.mkdir(d)
    stable = {"s%04d" % i for i in range(3000)}
    for name in stable:
        open(os.path.join(d, name), "w").close()
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            p = os.path.join(d, "c%06d" % i)
            open(p, "w").close()
            if i % 2:
                os.unlink(p)
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(5):
            seen = []
            with os.scandir(d) as it:
                for e in it:
                    seen.append(e.name)
            assert len(seen) == len(set(seen)), "an entry was listed twice"
            assert stable <= set(seen), "an entry that never moved was lost"
    finally:
        stop.set()
        t.join()


def test_durable_after_server_kill(mezzo, workdir):
    make_image(mezzo, workdir)
    mp = mount(mezzo, workdir, "base", "--tree", "dur")
    p = os.path.join(mp, "precious")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"fsynced data")
    os.fsync(fd)
    os.close(fd)
    os.rename(p, os.path.join(mp, "renamed"))
    # A rename is durable once its directory is fsync'ed (POSIX; sync(2)
    # does not reach a FUSE server: the kernel sends SYNCFS to virtiofs only).
    dfd = os.open(mp, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    info = [t for t in __import__("json").loads(mezzo.run("--json", "fs", "ls").stdout)
            if t["name"] == "dur"][0]
    os.kill(info["server_pid"], signal.SIGKILL)
    time.sleep(0.2)
    subprocess.run(["umount", "-l", mp], check=True)
    mezzo.run("fs", "mount", "dur", mp)
    try:
        assert open(os.path.join(mp, "renamed"), "rb").read() == b"fsynced data"
        assert not os.path.exists(os.path.join(mp, "precious"))
    finally:
        mezzo.run("fs", "umount", mp)


def server_threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def test_two_trees_fill_at_once_while_gc_runs(mezzo, workdir):
    """Two tree servers make files at once, each under object ids the
    catalog reserved for it (src/store/pool.c), while `store gc` with no
    grace period runs in a loop and takes their made-ahead files for
    orphans: every file keeps its content, also after a remount, and the
    store stays consistent."""
    make_image(mezzo, workdir)
    rng = random.Random(7)
    want = {f"f{i}": rng.randbytes(i * 7 % 3000 + 1) for i in range(1500)}
    mps = [mount(mezzo, workdir, "base", "--tree", f"fill{k}", name=f"fill{k}")
           for k in range(2)]
    stop = threading.Event()
    errors = []

    def gc_loop():
        while not stop.is_set():
            p = mezzo.run("store", "gc", check=False, env=GRACE0)
            if p.returncode != 0:
                errors.append(p.stderr)

    def write_files(mp, files):
        for name, data in files.items():
            with open(os.path.join(mp, name), "wb") as f:
                f.write(data)

    def fill(mp):
        try:
            write_files(mp, want)
        except OSError as e:
            errors.append(repr(e))

    gc = threading.Thread(target=gc_loop)
    gc.start()
    try:
        fills = [threading.Thread(target=fill, args=(mp,)) for mp in mps]
        for t in fills:
            t.start()
        for t in fills:
            t.join()
    finally:
        stop.set()
        gc.join()
    if errors:  # what the tree servers said about it
        logs = "".join(open(f).read() for f in glob.glob(os.path.join(mezzo.root, "run", "*.log")))
        assert errors == [], logs[-4000:]
    # A pool is a stack refilled from half way: in a steady burst its older
    # half waits.  Here gc takes all of a full pool's files at once, and
    # the next creates reach them.
    time.sleep(0.3)
    mezzo.run("store", "gc", env=GRACE0)
    more = {f"g{i}": b"%d" % i * 9 for i in range(100)}
    for mp in mps:
        write_files(mp, more)
    want.update(more)
    for mp in mps:
        for name, data in want.items():
            assert open(os.path.join(mp, name), "rb").read() == data, (mp, name)
        mezzo.run("fs", "umount", mp)
    p = mezzo.run("store", "check", env=GRACE0)
    assert "0 problems" in p.stdout, p.stdout
    mezzo.run("fs", "mount", "fill1", mps[1])
    try:
        for name, data in want.items():
            assert open(os.path.join(mps[1], name), "rb").read() == data, name
    finally:
        mezzo.run("fs", "umount", mps[1])


def test_files_made_ahead_are_named_once_and_leave_nothing(mezzo, workdir):
    """A burst of creates takes object files the server made ahead, under
    ids reserved for it (src/store/pool.c): each file gets its own, the
    made-ahead ones never used are removed once the creates stop, and after
    a kill -9 they are orphans that `store check` calls garbage, not
    problems, and `store gc` removes."""
    make_image(mezzo, workdir)
    mp = mount(mezzo, workdir, "base", "--tree", "burst")
    info = [t for t in __import__("json").loads(mezzo.run("--json", "fs", "ls").stdout)
            if t["name"] == "burst"][0]
    pid = info["server_pid"]
    idle = server_threads(pid)
    for i in range(300):
        with open(os.path.join(mp, f"f{i}"), "wb") as f:
            f.write(b"%d" % i * (i % 7))
    assert server_threads(pid) == idle + 1, "no thread making files ahead"
    for i in range(300):
        assert open(os.path.join(mp, f"f{i}"), "rb").read() == b"%d" % i * (i % 7)
    dfd = os.open(mp, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    objects = os.path.join(mezzo.root, "objects")

    def nfiles():
        return sum(len(fs) for _, _, fs in os.walk(objects))
    before = nfiles()
    for _ in range(60):  # 2 s without a create: it lets go
        if server_threads(pid) == idle:
            break
        time.sleep(0.1)
    assert server_threads(pid) == idle, "the made-ahead files' thread outlived the burst"
    assert nfiles() < before, "the files made ahead and not used are still there"
    p = mezzo.run("store", "check", env=GRACE0)
    assert "0 problems" in p.stdout and "garbage" not in p.stdout, p.stdout
    # a kill -9 right after a burst, the pool full again, leaves a
    # consistent store (test_crash.py kills servers in the middle of one)
    for i in range(300, 400):
        open(os.path.join(mp, f"f{i}"), "wb").close()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    subprocess.run(["umount", "-l", mp], check=True)
    p = mezzo.run("store", "check", env=GRACE0)
    assert "0 problems" in p.stdout and "garbage: orphan-file" in p.stdout, p.stdout
    mezzo.run("store", "gc", env=GRACE0)
    p = mezzo.run("store", "check", env=GRACE0)
    assert "0 problems" in p.stdout and "garbage" not in p.stdout, p.stdout
    mezzo.run("fs", "mount", "burst", mp)
    try:
        assert open(os.path.join(mp, "f299"), "rb").read() == b"299" * (299 % 7)
    finally:
        mezzo.run("fs", "umount", mp)
    assert mezzo.run("store", "check").returncode == 0


def test_snapshot_of_live_tree(mezzo, workdir):
    make_image(mezzo, workdir)
    mp = mount(mezzo, workdir, "base", "--tree", "live")
    try:
        f = open(os.path.join(mp, "log"), "w")
        f.write("before\n")
        f.flush()
        mezzo.run("fs", "snapshot", "live", "snap1")
        f.write("after\n")
        f.close()
        assert open(os.path.join(mp, "log")).read() == "before\nafter\n"
        snap = mount(mezzo, workdir, "snap1", name="snapview")
        try:
            assert open(os.path.join(snap, "log")).read() == "before\n"
        finally:
            mezzo.run("fs", "umount", snap)
    finally:
        mezzo.run("fs", "umount", mp)


def test_tree_lifecycle_and_errors(mezzo, workdir):
    make_image(mezzo, workdir)
    mp = os.path.join(workdir, "mp")
    os.mkdir(mp)
    p = mezzo.fail("fs", "mount", "nosuchimage", mp)
    assert "nosuchimage" in p.stderr
    p = mezzo.fail("fs", "mount", "base", os.path.join(workdir, "missing"))
    assert "not a directory" in p.stderr
    mezzo.run("fs", "mount", "base", mp, "--tree", "keep")
    p = mezzo.fail("fs", "mount", "keep", os.path.join(workdir, "src-base"))
    assert "already" in p.stderr
    p = mezzo.fail("fs", "rm", "keep")
    assert "umount" in p.stderr
    mezzo.run("fs", "umount", mp)
    mezzo.run("fs", "mount", "base", mp)  # anonymous
    trees = __import__("json").loads(mezzo.run("--json", "fs", "ls").stdout)
    assert len([t for t in trees if t["anonymous"]]) == 1
    mezzo.run("fs", "umount", mp)
    trees = __import__("json").loads(mezzo.run("--json", "fs", "ls").stdout)
    assert [t["name"] for t in trees] == ["keep"], "anonymous tree not dropped at umount"
    mezzo.run("fs", "rm", "keep")
    p = mezzo.fail("fs", "umount", mp)
    assert "not a mounted tree" in p.stderr
    p = mezzo.run("fs", "mount", check=False)
    assert p.returncode == 2
