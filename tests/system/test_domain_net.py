"""Domains on virtual LANs, end to end through the CLI: addresses, names,
LANs kept apart, port forwards from the host, loopback only by default, and
nothing of the kernel's left once domains and LANs are gone (the `net`
fixture of test_net.py checks interfaces and nftables tables of the store).
"""
import json
import socket
import time
import urllib.request

import pytest

from test_net import net  # noqa: F401  (the fixture)

SERVE = "sh -c 'mkdir -p /www; echo token-$(hostname) > /www/t; exec httpd -f -p 80 -h /www'"


@pytest.fixture
def dn(mezzo, net):  # noqa: F811
    mezzo.run("image", "busybox")
    yield mezzo
    for d in json.loads(mezzo.run("--json", "ls").stdout):
        mezzo.run("rm", "--force", d["name"], check=False)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(m, name, url, timeout=2):
    # (busybox 1.35's wget -T crashes: the timeout applet bounds it instead)
    return m.run("exec", name, "--", "timeout", str(timeout), "wget", "-q", "-O", "-", url,
                 check=False)


def wait_serving(m, name, url):
    deadline = time.time() + 5
    while time.time() < deadline:
        p = get(m, name, url)
        if p.returncode == 0:
            return p.stdout
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered from {name}: {p.stderr}")


def test_domains_reach_each_other_by_name(dn):
    dn.run("net", "create", "lan1")
    dn.run("create", "web", "--net", "lan1", "--service", "httpd=" + SERVE)
    dn.run("create", "cli", "--net", "lan1", "--service", "idle=sleep 100000")
    dn.run("start", "web")
    dn.run("start", "cli")
    assert wait_serving(dn, "cli", "http://web/t").strip() == "token-web"
    assert dn.run("exec", "cli", "--", "ping", "-c", "1", "-W", "2", "web").returncode == 0
    hosts = dn.run("exec", "cli", "--", "cat", "/etc/hosts").stdout
    addrs = {d["name"]: d["addresses"] for d in json.loads(dn.run("--json", "ls").stdout)}
    assert addrs["web"][0]["lan"] == "lan1" and addrs["web"][0]["nic"] == "eth0"
    assert f"{addrs['web'][0]['ipv4']}\tweb" in hosts and "cli" in hosts
    assert addrs["web"][0]["ipv4"] in dn.run("ls").stdout
    # its own view: eth0 with that address and a default route
    ip = dn.run("exec", "cli", "--", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert addrs["cli"][0]["ipv4"] in ip
    assert "default" in dn.run("exec", "cli", "--", "ip", "route").stdout


def test_lans_are_apart(dn):
    dn.run("net", "create", "lan1")
    dn.run("net", "create", "lan2")
    dn.run("create", "web", "--net", "lan1", "--service", "httpd=" + SERVE)
    dn.run("create", "near", "--net", "lan1", "--service", "idle=sleep 100000")
    dn.run("create", "far", "--net", "lan2", "--service", "idle=sleep 100000")
    for d in ("web", "near", "far"):
        dn.run("start", d)
    wait_serving(dn, "near", "http://web/t")
    web = json.loads(dn.run("--json", "inspect", "web").stdout)["addresses"][0]["ipv4"]
    p = get(dn, "far", f"http://{web}/t")
    assert p.returncode != 0 and "token" not in p.stdout
    assert "web" not in dn.run("exec", "far", "--", "cat", "/etc/hosts").stdout


def test_port_forward_from_the_host(dn):
    port = free_port()
    dn.run("create", "web", "--net", "default", "-p", f"{port}:80", "--service", "httpd=" + SERVE)
    dn.run("start", "web")
    deadline, body = time.time() + 5, None
    while time.time() < deadline and body is None:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/t", timeout=1).read()
        except OSError:
            time.sleep(0.05)
    assert body == b"token-web\n"
    dn.run("stop", "web")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/t", timeout=1).read()


def test_addresses_kept_across_restarts_and_freed_by_rm(dn):
    dn.run("create", "a", "--net", "default", "--service", "idle=sleep 100000")
    first = json.loads(dn.run("--json", "inspect", "a").stdout)["addresses"]
    dn.run("start", "a")
    dn.run("restart", "a")
    assert json.loads(dn.run("--json", "inspect", "a").stdout)["addresses"] == first
    ip = dn.run("exec", "a", "--", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert first[0]["ipv4"] in ip
    dn.run("stop", "a")
    dn.run("rm", "a")
    dn.run("create", "b", "--net", "default")
    again = json.loads(dn.run("--json", "inspect", "b").stdout)["addresses"]
    assert again[0]["ipv4"] == first[0]["ipv4"], "rm did not give the address back"


def test_stop_then_start_at_once_on_a_lan(dn):
    """`stop` returns once the domain is down and recorded so; its supervisor
    may still be exiting (on a LAN it closes a catalog handle of its own,
    which can take a checkpoint): the very next start, restart or rm must
    find the domain's tree, name and address free."""
    dn.run("create", "q", "--net", "default", "--service", "idle=sleep 100000")
    for _ in range(5):
        dn.run("start", "q")
        dn.run("stop", "q")
    dn.run("start", "q")
    for _ in range(5):
        dn.run("restart", "q")
    for _ in range(3):
        dn.run("stop", "q")
        dn.run("rm", "q")
        dn.run("create", "q", "--net", "default", "--service", "idle=sleep 100000")
        dn.run("start", "q")
    assert json.loads(dn.run("--json", "inspect", "q").stdout)["state"] == "running"
    dn.run("stop", "q")
    dn.run("rm", "q")
    assert dn.run("store", "check").returncode == 0


def test_loopback_only_without_a_lan(dn):
    p = dn.run("run", "--rm", "--", "ip", "-o", "link")
    assert [l.split(":")[1].strip() for l in p.stdout.splitlines()] == ["lo"]
    assert not json.loads(dn.run("--json", "ls").stdout)


def test_run_on_a_lan(dn):
    """`run` and `run -d` on a LAN: the domain is made first and then started
    in the ordinary order (the early clone is for loopback-only domains), and
    it has its address, its route and its name in /etc/hosts."""
    p = dn.run("run", "--rm", "--name", "onlan", "--net", "default", "--",
               "/bin/sh", "-c", "ip -4 -o addr show eth0; ip -4 route; cat /etc/hosts")
    assert " eth0 " in p.stdout and "inet 10." in p.stdout, p.stdout
    assert "default via" in p.stdout and "onlan" in p.stdout, p.stdout
    name = dn.run("run", "-d", "--rm", "--net", "default", "--", "/bin/sleep", "100").stdout.strip()
    d = json.loads(dn.run("--json", "inspect", name).stdout)
    assert d["state"] == "running"
    addr = dn.run("exec", name, "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert "inet 10." in addr, addr
    dn.run("stop", name)
    for _ in range(100):
        if not json.loads(dn.run("--json", "ls").stdout):
            break
        time.sleep(0.05)
    assert not json.loads(dn.run("--json", "ls").stdout)


def test_network_bad_input(dn):
    for args, msg in [
        (["-p", "8080:80"], "need a LAN"),
        (["--net", "none", "--net", "default"], "exclude"),
        (["--net", "nosuch"], "nosuch"),
        (["--net", "default", "--net", "default"], "twice"),
        (["--net", "default", "-p", "99999:80"], "-p 99999:80"),
        (["--net", "default", "--rate-in", "10"], "--rate-in"),
    ]:
        p = dn.fail("create", "bad", *args)
        assert msg in p.stderr, (args, p.stderr)
    assert json.loads(dn.run("--json", "ls").stdout) == []


def test_supervisor_killed_on_a_lan_leaves_nothing(dn):
    import os
    import signal
    dn.run("net", "create", "lan1")
    dn.run("create", "a", "--net", "lan1", "--service", "idle=sleep 100000")
    dn.run("create", "b", "--net", "lan1", "--service", "idle=sleep 100000")
    dn.run("start", "a")
    dn.run("start", "b")
    sup = json.loads(dn.run("--json", "inspect", "a").stdout)["supervisor_pid"]
    os.kill(sup, signal.SIGKILL)
    deadline = time.time() + 5
    while time.time() < deadline and json.loads(
            dn.run("--json", "inspect", "a").stdout)["state"] != "orphaned":
        time.sleep(0.05)
    assert json.loads(dn.run("--json", "inspect", "a").stdout)["state"] == "orphaned"
    dn.run("stop", "a")
    # started again, it gets its address back and b still reaches it by name
    dn.run("start", "a")
    assert dn.run("exec", "b", "--", "ping", "-c", "1", "-W", "2", "a").returncode == 0
    # the net fixture fails the test if an interface or table is left after
    # the domains and LANs are removed


def test_inspect_shows_the_fast_path(dn):
    dn.run("net", "create", "lan1")
    dn.run("create", "web", "--net", "lan1", "--service", "httpd=" + SERVE)
    dn.run("create", "cli", "--net", "lan1", "--rate-out", "10M",
           "--service", "idle=sleep 100000")
    dn.run("start", "web")
    dn.run("start", "cli")
    wait_serving(dn, "cli", "http://web/t")
    dn.run("exec", "web", "--", "sh", "-c", "echo x | nc -w 1 cli 9 || true")
    members = {m["domain"]: m for m in
               json.loads(dn.run("--json", "net", "inspect", "lan1").stdout)["members"]}
    # web sends through it (its SYN to cli), cli only receives (an egress limit)
    assert members["web"]["fast_path"] == "both" and members["web"]["fast_path_frames"] > 0
    assert members["cli"]["fast_path"] == "in" and members["cli"]["fast_path_frames"] == 0
    text = dn.run("net", "inspect", "lan1").stdout
    assert "FAST PATH" in text and "receive only" in text
    dn.run("stop", "web")
    members = {m["domain"]: m for m in
               json.loads(dn.run("--json", "net", "inspect", "lan1").stdout)["members"]}
    assert members["web"]["fast_path"] == "none"
