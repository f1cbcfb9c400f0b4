"""A tree on a file system that a domain fills up (src/fs/space.c).

The store lives on a small ext4 of its own (a loop device), so that a
program writing through the tree can fill it.  What the tree server told a
program it made must still be there after a remount; what it can no longer
make gets ENOSPC, as a local file system would say; and once space is freed
the tree takes new files again.
"""
import errno
import os
import subprocess
import threading
import time

import pytest

from conftest import Mezzo


@pytest.fixture
def small_store(workdir):
    """A mezzo store on a 96 MiB ext4 (no blocks reserved for root)."""
    img = os.path.join(workdir, "fs.img")
    fs = os.path.join(workdir, "fs")
    os.mkdir(fs)
    with open(img, "wb") as f:
        f.truncate(96 << 20)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", img], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"mkfs.ext4: {p.stderr.strip()}")
    p = subprocess.run(["mount", "-o", "loop", img, fs], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop mount here: {p.stderr.strip()}")
    try:
        yield Mezzo(os.path.join(fs, "store")), fs
    finally:
        # the workdir fixture unmounts what is left (the tree first: the
        # longer path), this one the file system
        subprocess.run(["umount", os.path.join(fs, "mnt")], capture_output=True)
        subprocess.run(["umount", fs], capture_output=True)


def fill_while_creating(mp, count):
    """Fill the file system through mp while making count files; return the
    paths whose creation succeeded and the errnos of those that failed."""
    done = threading.Event()

    def filler():
        try:
            with open(os.path.join(mp, "big"), "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
        except OSError:
            pass
        finally:
            done.set()

    os.mkdir(os.path.join(mp, "d"))
    t = threading.Thread(target=filler)
    t.start()
    made, failed = [], {}
    i = 0
    # go on for a while after the disk is full: every create from then on
    # is one the server must either refuse or keep
    while i < count or not done.is_set():
        p = os.path.join(mp, "d", f"f{i}")
        try:
            os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            made.append(p)
        except OSError as e:
            failed[e.errno] = failed.get(e.errno, 0) + 1
        i += 1
        if i > 20 * count:
            break
    t.join(timeout=60)
    return made, failed


def test_full_file_system_loses_nothing_acknowledged(small_store):
    m, fs = small_store
    src = os.path.join(fs, "empty")
    os.mkdir(src)
    m.run("image", "import", "empty", src)
    mp = os.path.join(fs, "mnt")
    os.mkdir(mp)
    m.run("fs", "mount", "empty", mp, "--tree", "t")
    # what the tree says is free leaves out the room kept for the catalog
    # (16 MiB, 256 inodes), as ext4 leaves out its reserved blocks
    tree, host = os.statvfs(mp), os.statvfs(fs)
    assert tree.f_bavail * tree.f_frsize == host.f_bavail * host.f_frsize - (16 << 20)
    assert tree.f_ffree == host.f_ffree - 256
    after = os.path.join(mp, "after")
    try:
        made, failed = fill_while_creating(mp, 3000)
        # space freed: the tree takes new files again
        os.unlink(os.path.join(mp, "big"))
        end = time.time() + 10
        while True:
            try:
                os.close(os.open(after, os.O_CREAT | os.O_WRONLY, 0o644))
                break
            except OSError as e:
                assert e.errno == errno.ENOSPC and time.time() < end, e
                time.sleep(0.1)
    finally:
        m.run("fs", "umount", mp)
    m.run("fs", "mount", "t", mp)
    try:
        missing = [p for p in made if not os.path.exists(p)]
        assert not missing, f"{len(missing)} of {len(made)} files made are gone: {missing[:3]}"
        assert os.path.exists(after)
    finally:
        m.run("fs", "umount", mp)
    assert made, "no file could be made at all"
    # what could not be made said so, and said ENOSPC
    assert set(failed) == {errno.ENOSPC}, f"{len(made)} made, failed: {failed}"
    out = m.run("store", "check").stdout
    assert "0 problems" in out, out
