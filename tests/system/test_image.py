"""`mezzo image`: import, ls, inspect, rm, busybox from the command line.

Sources are built by the tests: directories with os calls, archives with
Python's tarfile (named without a telling extension: the format is found by
content).  What landed in the store is read back with `inspect --json` and,
for details the CLI does not show, straight from the catalog with sqlite3.
"""
import io
import json
import os
import sqlite3
import subprocess
import tarfile

import pytest

from conftest import MEZZO


def make_dir(workdir, name="src"):
    src = os.path.join(workdir, name)
    os.makedirs(os.path.join(src, "etc"))
    os.makedirs(os.path.join(src, "usr/bin"))
    with open(os.path.join(src, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(src, "usr/bin/tool"), "wb") as f:
        f.write(b"\x7fELF" + b"\x01" * 10000)
    os.symlink("usr/bin", os.path.join(src, "bin"))
    os.link(os.path.join(src, "usr/bin/tool"), os.path.join(src, "usr/bin/tool2"))
    os.mkfifo(os.path.join(src, "fifo"))
    return src


def make_tar(workdir, entries, name="archive.dat", mode="w:gz"):
    """entries: (name, type, data-or-link) tuples."""
    path = os.path.join(workdir, name)
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as t:
        for n, typ, val in entries:
            ti = tarfile.TarInfo(n)
            ti.type = typ
            ti.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
            if typ == tarfile.REGTYPE:
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val))
            else:
                ti.linkname = val or ""
                t.addfile(ti)
    return path


def inspect(mezzo, name):
    return json.loads(mezzo.run("--json", "image", "inspect", name).stdout)


def ls(mezzo):
    return json.loads(mezzo.run("--json", "image", "ls").stdout)


def catalog(mezzo):
    return sqlite3.connect(os.path.join(mezzo.root, "catalog.db"), timeout=30)


def lookup(mezzo, image, path):
    """(mode, target) of path in image, read from the catalog."""
    db = catalog(mezzo)
    lid, ino = db.execute("SELECT id, root_ino FROM layer WHERE name = ? AND is_image = 1",
                          (image,)).fetchone()
    for part in path.strip("/").split("/"):
        row = db.execute("SELECT ino FROM dentry WHERE layer = ? AND parent = ? AND name = ?",
                         (lid, ino, part.encode())).fetchone()
        assert row, f"{path} not in image {image}"
        ino = row[0]
    mode, target = db.execute("SELECT mode, target FROM inode WHERE layer = ? AND ino = ?",
                              (lid, ino)).fetchone()
    db.close()
    return mode, (target.decode() if target is not None else None)


def test_import_dir_ls_inspect_rm(mezzo, workdir):
    src = make_dir(workdir)
    p = mezzo.run("image", "import", "base", src)
    assert p.stdout.splitlines()[0] == "base"
    assert "entries" in p.stdout and "dedup" in p.stdout

    images = ls(mezzo)
    assert [i["name"] for i in images] == ["base"]
    i = images[0]
    # etc, usr, usr/bin, passwd, tool, tool2 (a hard link), bin, fifo
    assert i["entries"] == 8
    assert i["files"] == 2 and i["symlinks"] == 1 and i["specials"] == 1
    assert i["bytes"] == len("root:x:0:0:root:/root:/bin/sh\n") + 10004
    assert i["created"].endswith("Z")

    table = mezzo.run("image", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "CREATED", "FILES", "SIZE"]
    assert table[1].startswith("base ")

    j = inspect(mezzo, "base")
    assert j["name"] == "base" and j["objects"] == 2 and j["built_on_it"] == []
    text = mezzo.run("image", "inspect", "base").stdout
    assert "entries:" in text and "objects:" in text

    assert lookup(mezzo, "base", "bin")[1] == "usr/bin"

    mezzo.run("image", "rm", "base")
    assert ls(mezzo) == []
    p = mezzo.fail("image", "rm", "base")
    assert p.returncode == 1 and "no image named 'base'" in p.stderr


def test_import_tar_gz_by_content(mezzo, workdir):
    tar = make_tar(workdir, [
        ("./etc/", tarfile.DIRTYPE, None),
        ("./etc/hostname", tarfile.REGTYPE, b"box\n"),
        ("./bin/sh", tarfile.SYMTYPE, "busybox"),
        ("./bin/busybox", tarfile.REGTYPE, b"\x7fELF busybox"),
        ("./bin/ash", tarfile.LNKTYPE, "./bin/busybox"),
    ])
    mezzo.run("image", "import", "t", tar)
    j = inspect(mezzo, "t")
    assert j["entries"] == 6  # etc, hostname, bin (made), sh, busybox, ash
    assert j["files"] == 2 and j["symlinks"] == 1
    assert lookup(mezzo, "t", "bin/sh")[1] == "busybox"
    # xz and plain too, and from standard input
    for mode, name in (("w:xz", "x"), ("w", "p")):
        path = make_tar(workdir, [("f", tarfile.REGTYPE, b"data")], name + ".bin", mode)
        mezzo.run("image", "import", name, path)
        assert inspect(mezzo, name)["files"] == 1
    # from standard input (bytes, so not through mezzo.run's text mode)
    with open(tar, "rb") as f:
        p = subprocess.run([MEZZO, "image", "import", "fromstdin", "-"], stdin=f,
                           capture_output=True, env=dict(os.environ, MEZZO_ROOT=mezzo.root))
    assert p.returncode == 0, p.stderr
    assert inspect(mezzo, "fromstdin")["entries"] == 6


def test_dedup_across_images(mezzo, workdir):
    src = make_dir(workdir)
    mezzo.run("image", "import", "one", src)
    j = json.loads(mezzo.run("--json", "image", "import", "two", src).stdout)
    assert j["name"] == "two"
    assert j["new_objects"] == 0 and j["stored_bytes"] == 0
    assert j["dedup_bytes"] == inspect(mezzo, "two")["bytes"]


@pytest.mark.parametrize("entries,why", [
    ([("../evil", tarfile.REGTYPE, b"x")], "'..'"),
    ([("/etc/passwd", tarfile.REGTYPE, b"x")], "absolute"),
    ([("a", tarfile.SYMTYPE, "/etc"), ("a/passwd", tarfile.REGTYPE, b"x")], "symlink"),
    ([("x", tarfile.LNKTYPE, "nowhere")], "not an earlier entry"),
    ([("n" * 256, tarfile.REGTYPE, b"x")], "255"),
])
def test_hostile_archive_refused(mezzo, workdir, entries, why):
    tar = make_tar(workdir, [("ok", tarfile.REGTYPE, b"fine")] + entries)
    p = mezzo.fail("image", "import", "evil", tar)
    assert p.returncode == 1
    assert why in p.stderr and "refusing the whole archive" in p.stderr
    assert ls(mezzo) == []
    db = catalog(mezzo)
    assert db.execute("SELECT COUNT(*) FROM layer").fetchone()[0] == 0
    db.close()


def test_errors(mezzo, workdir):
    src = make_dir(workdir)
    mezzo.run("image", "import", "base", src)

    p = mezzo.fail("image", "inspect", "nope")
    assert p.returncode == 1 and "no image named 'nope'" in p.stderr
    p = mezzo.fail("image", "import", "base", src)
    assert p.returncode == 1 and "already exists" in p.stderr
    p = mezzo.fail("image", "import", "../bad", src)
    assert p.returncode == 1 and "invalid image name" in p.stderr
    p = mezzo.fail("image", "import", "new", os.path.join(workdir, "missing"))
    assert p.returncode == 1 and "cannot open source" in p.stderr and "missing" in p.stderr
    junk = os.path.join(workdir, "junk")
    with open(junk, "w") as f:
        f.write("not an archive\n")
    p = mezzo.fail("image", "import", "new", junk)
    assert p.returncode == 1 and "not a directory or a tar archive" in p.stderr

    for args in (("image", "import", "onlyname"), ("image", "frobnicate"),
                 ("image", "ls", "--bogus"), ("image", "inspect"),
                 ("image", "ls", "extra"), ("image", "import", "--exist-ok", "a", "b")):
        p = mezzo.fail(*args)
        assert p.returncode == 2, args
        assert "--help" in p.stderr
    assert [i["name"] for i in ls(mezzo)] == ["base"]


def test_help(mezzo):
    p = mezzo.run("image", "--help")
    assert "import" in p.stdout and "Examples" in p.stdout
    for sub in ("import", "ls", "inspect", "rm", "busybox", "debootstrap"):
        p = mezzo.run("image", sub, "--help")
        assert "usage: mezzo image " + sub in p.stdout
        assert "mezzo image" in p.stdout.split("Example")[1]


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static missing")
def test_busybox_default_image(mezzo):
    p = mezzo.run("image", "busybox")
    assert p.stdout.splitlines()[0] == "busybox"
    j = inspect(mezzo, "busybox")
    assert j["symlinks"] > 100 and j["files"] >= 5
    mode, target = lookup(mezzo, "busybox", "bin/sh")
    assert (mode & 0o170000) == 0o120000 and target == "/bin/busybox"
    assert lookup(mezzo, "busybox", "usr/bin/env")[1] == "/bin/busybox"
    assert lookup(mezzo, "busybox", "tmp")[0] == 0o41777
    for f in ("etc/passwd", "etc/group", "etc/hostname", "etc/hosts", "bin/busybox"):
        assert (lookup(mezzo, "busybox", f)[0] & 0o170000) == 0o100000
    # the temporary tree is gone
    assert os.listdir(os.path.join(mezzo.root, "tmp")) == []

    p = mezzo.fail("image", "busybox")
    assert p.returncode == 1 and "already exists" in p.stderr
    p = mezzo.run("image", "busybox", "--exist-ok")
    assert "already exists" in p.stderr
    mezzo.run("image", "busybox", "bb2")
    assert inspect(mezzo, "bb2")["object_bytes"] > 0
    p = mezzo.fail("image", "busybox", "bb3", "--busybox", "/bin/ls")
    assert p.returncode == 1 and "busybox-static" in p.stderr
