"""`mezzo store`: check, gc, dedup, df and info from the command line.

Inconsistencies are made by hand: object files deleted or left behind,
catalog rows changed with Python's sqlite3.  Tests that need real content
import an image (and mount a tree) and are skipped while `mezzo image` /
`mezzo fs` are not available in the binary under test.
"""
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time

import pytest

GRACE0 = {"MEZZO_ORPHAN_GRACE_SECONDS": "0"}


def catalog(mezzo):
    db = sqlite3.connect(os.path.join(mezzo.root, "catalog.db"), timeout=30)
    db.isolation_level = None
    return db


def objpath(mezzo, oid):
    return os.path.join(mezzo.root, "objects", "%02x" % (oid & 0xFF), str(oid))


def add_sealed(mezzo, content):
    """A sealed object nothing references, made as the store makes them."""
    mezzo.run("store", "info")  # creates the store
    db = catalog(mezzo)
    cur = db.execute(
        "INSERT INTO object(hash, size, refs, created) VALUES (?, ?, 0, ?)",
        (hashlib.sha256(content).digest(), len(content), time.time_ns()))
    oid = cur.lastrowid
    db.close()
    with open(objpath(mezzo, oid), "wb") as f:
        f.write(content)
    os.chmod(objpath(mezzo, oid), 0o400)
    return oid


def have(mezzo, group):
    return mezzo.run(group, "--help", check=False).returncode == 0


def make_image(mezzo, workdir, name="base"):
    if not have(mezzo, "image"):
        pytest.skip("mezzo image is not available in this build")
    src = os.path.join(workdir, "src-" + name)
    os.makedirs(os.path.join(src, "etc"))
    os.makedirs(os.path.join(src, "bin"))
    with open(os.path.join(src, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(src, "bin/tool"), "wb") as f:
        f.write(b"\x7fELF" + os.urandom(50000))
    mezzo.run("image", "import", name, src)
    return src


def check(mezzo, *args, env=None):
    p = mezzo.run("store", "check", *args, check=False, env=env)
    assert p.returncode in (0, 1), p.stderr
    return p


def test_fresh_store_is_consistent(mezzo):
    p = check(mezzo)
    assert p.returncode == 0
    assert "check: 0 problems, 0 repaired" in p.stdout
    p = check(mezzo, "--verify-hashes")
    assert p.returncode == 0
    j = json.loads(mezzo.run("--json", "store", "check").stdout)
    assert j["problems"] == 0 and j["remaining"] == 0 and j["lines"] == []


def test_refs_corruption_repaired(mezzo):
    oid = add_sealed(mezzo, b"some bytes\n")
    assert check(mezzo, "--verify-hashes").returncode == 0
    db = catalog(mezzo)
    db.execute("UPDATE object SET refs = 3 WHERE id = ?", (oid,))
    db.close()
    p = check(mezzo)
    assert p.returncode == 1
    assert f"problem: refs: object {oid} has refs 3 but 0 inode rows name it" in p.stdout
    assert "check: 1 problem, 0 repaired" in p.stdout
    p = check(mezzo, "--repair")
    assert p.returncode == 0, p.stdout
    assert f"repaired: refs: object {oid}" in p.stdout
    assert "check: 1 problem, 1 repaired" in p.stdout
    assert check(mezzo).returncode == 0


def test_corrupt_sealed_object_is_kept(mezzo):
    oid = add_sealed(mezzo, b"original\n")
    path = objpath(mezzo, oid)
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.write(b"ORIGINAL\n")
    p = check(mezzo, "--repair", "--verify-hashes")
    assert p.returncode == 1
    assert "problem: corrupt: sealed object" in p.stdout
    assert "repaired: mode" in p.stdout
    assert "check: 2 problems, 1 repaired" in p.stdout
    assert os.path.exists(path)
    assert os.stat(path).st_mode & 0o7777 == 0o400


def test_missing_file_of_unused_object(mezzo):
    oid = add_sealed(mezzo, b"soon gone\n")
    os.unlink(objpath(mezzo, oid))
    p = check(mezzo)
    assert p.returncode == 1
    assert "problem: missing-file: sealed object %d (0 refs)" % oid in p.stdout
    p = check(mezzo, "--repair")
    assert p.returncode == 0
    assert "repaired: missing-file" in p.stdout
    assert check(mezzo).returncode == 0


def test_orphan_file(mezzo):
    mezzo.run("store", "info")
    orphan = objpath(mezzo, 999999)
    with open(orphan, "w") as f:
        f.write("left behind by a crash\n")
    # Young files may belong to an import that has not committed yet.
    p = check(mezzo, "--repair")
    assert p.returncode == 0
    assert "note: objects/3f/999999 has no catalog row yet" in p.stdout
    assert os.path.exists(orphan)
    # Old ones are a crash's leftovers: garbage, not an inconsistency.
    p = check(mezzo, env=GRACE0)
    assert p.returncode == 0
    assert "garbage: orphan-file: objects/3f/999999" in p.stdout
    assert "1 leftover" in p.stdout
    p = check(mezzo, "--repair", env=GRACE0)
    assert p.returncode == 0
    assert "note: objects/3f/999999 removed" in p.stdout
    assert not os.path.exists(orphan)
    # A file that is no object at all is left to a human.
    stray = os.path.join(mezzo.root, "objects", "00", "notes.txt")
    open(stray, "w").close()
    p = check(mezzo, "--repair", env=GRACE0)
    assert p.returncode == 1
    assert "problem: stray-file: objects/00/notes.txt" in p.stdout
    assert os.path.exists(stray)


def test_gc(mezzo):
    oid = add_sealed(mezzo, b"nobody uses me\n")
    orphan = objpath(mezzo, 999999)
    with open(orphan, "w") as f:
        f.write("orphan\n")
    p = mezzo.run("store", "gc", env=GRACE0)
    assert p.stdout.startswith("gc: removed 0 layers, 1 object, 1 orphan file; freed ")
    assert not os.path.exists(objpath(mezzo, oid))
    assert not os.path.exists(orphan)
    j = json.loads(mezzo.run("--json", "store", "gc").stdout)
    assert j == {"layers": 0, "objects": 0, "files": 0, "bytes": 0}
    assert check(mezzo).returncode == 0


def test_df_and_info(mezzo):
    add_sealed(mezzo, b"x" * 1000)
    j = json.loads(mezzo.run("--json", "store", "df").stdout)
    assert j["layers"] == []
    t = j["totals"]
    assert t["objects"] == 1 and t["sealed_objects"] == 1
    assert t["physical_bytes"] == 1000 and t["unreferenced_objects"] == 1
    assert t["disk_bytes"] > 0
    assert json.loads(mezzo.run("store", "df", "--json").stdout) == j
    p = mezzo.run("store", "df")
    assert p.stdout.startswith("LAYER")
    assert "objects  1 (1 sealed, 0 private)" in p.stdout
    p = mezzo.run("store", "info")
    assert os.path.realpath(mezzo.root) in p.stdout
    i = json.loads(mezzo.run("--json", "store", "info").stdout)
    assert i["objects"] == 1 and i["images"] == 0
    assert i["catalog_bytes"] > 0


def test_version(mezzo):
    p = mezzo.run("--version")
    lines = p.stdout.splitlines()
    assert re.fullmatch(r"mezzo \d+\.\d+\.\d+", lines[0]), p.stdout
    assert re.fullmatch(r"catalog-schema [1-9]\d*", lines[1]), p.stdout
    assert "--version" in mezzo.run("--help").stdout


def test_usage(mezzo):
    assert mezzo.run("store", check=False).returncode == 2
    assert mezzo.run("store", "frobnicate", check=False).returncode == 2
    p = mezzo.run("store", "check", "--bogus", check=False)
    assert p.returncode == 2 and "--help" in p.stderr
    assert mezzo.run("store", "gc", "extra", check=False).returncode == 2
    assert "Commands:" in mezzo.run("store", "--help").stdout
    for sub in ("check", "gc", "dedup", "df", "info"):
        p = mezzo.run("store", sub, "--help")
        assert p.stdout.startswith("usage: mezzo store " + sub)
        assert "Example" in p.stdout


def test_image_missing_object_file(mezzo, workdir):
    make_image(mezzo, workdir)
    p = check(mezzo, "--verify-hashes")
    assert p.returncode == 0, p.stdout
    db = catalog(mezzo)
    oid, = db.execute("SELECT id FROM object WHERE refs > 0 AND hash IS NOT NULL "
                      "ORDER BY size DESC LIMIT 1").fetchone()
    db.close()
    os.unlink(objpath(mezzo, oid))
    p = check(mezzo)
    assert p.returncode == 1
    assert f"problem: missing-file: sealed object {oid} (1 refs)" in p.stdout
    # Data that is gone cannot be repaired: still failing afterwards.
    p = check(mezzo, "--repair")
    assert p.returncode == 1
    assert "check: 1 problem, 0 repaired" in p.stdout


def test_image_df(mezzo, workdir):
    make_image(mezzo, workdir)
    j = json.loads(mezzo.run("--json", "store", "df").stdout)
    base = [l for l in j["layers"] if l["name"] == "base"]
    assert len(base) == 1 and base[0]["kind"] == "image"
    assert base[0]["logical_bytes"] >= 50004
    assert base[0]["exclusive_bytes"] == base[0]["logical_bytes"]
    p = mezzo.run("store", "df")
    assert "image" in p.stdout and "base" in p.stdout


def test_dedup_of_snapshots(mezzo, workdir):
    make_image(mezzo, workdir)
    if not have(mezzo, "fs"):
        pytest.skip("mezzo fs is not available in this build")
    data = os.urandom(20000)
    for t in ("a", "b"):
        mp = os.path.join(workdir, "mnt-" + t)
        os.makedirs(mp)
        mezzo.run("fs", "mount", "base", mp, "--tree", t)
        with open(os.path.join(mp, "copy-" + t), "wb") as f:
            f.write(data)
        with open(os.path.join(mp, "passwd-again"), "wb") as f:
            f.write(b"root:x:0:0:root:/root:/bin/sh\n")  # as the image's
        mezzo.run("fs", "snapshot", t, t + "-1")
        mezzo.run("fs", "umount", mp)
    j = json.loads(mezzo.run("--json", "store", "dedup").stdout)
    # Four private objects: one is sealed in place, three merge.
    assert j["examined"] == 4
    assert j["merged"] == 3
    assert j["bytes_saved"] >= 20000
    assert check(mezzo, "--verify-hashes").returncode == 0
    mp = os.path.join(workdir, "mnt-check")
    os.makedirs(mp)
    mezzo.run("fs", "mount", "b-1", mp)
    try:
        with open(os.path.join(mp, "copy-b"), "rb") as f:
            assert f.read() == data
    finally:
        mezzo.run("fs", "umount", mp)
    j = json.loads(mezzo.run("--json", "store", "dedup").stdout)
    assert j["merged"] == 0
    assert check(mezzo).returncode == 0


def test_catalog_of_schema_1_is_migrated(mezzo):
    mezzo.run("image", "busybox")
    mezzo.run("create", "old", "--", "/bin/true")
    db = sqlite3.connect(os.path.join(mezzo.root, "catalog.db"))
    db.execute("ALTER TABLE domain DROP COLUMN services")
    db.execute("ALTER TABLE domain DROP COLUMN init_mode")
    db.execute("ALTER TABLE domain DROP COLUMN autoremove")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    p = mezzo.run("--json", "inspect", "old")
    assert '"services":[]' in p.stdout and '"init":"mezzo"' in p.stdout
    assert '"autoremove":false' in p.stdout
    assert mezzo.run("run", "--rm", "--service", "s=sleep 5", "--", "/bin/true").returncode == 0
    db = sqlite3.connect(os.path.join(mezzo.root, "catalog.db"))
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 4
    db.close()
    mezzo.run("store", "check")


def test_catalog_of_a_newer_schema_is_refused(mezzo):
    mezzo.run("store", "info")
    db = sqlite3.connect(os.path.join(mezzo.root, "catalog.db"))
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()
    p = mezzo.fail("ls")
    assert "newer" in p.stderr
