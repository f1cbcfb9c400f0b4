"""Virtual LANs (src/net) against the real kernel: bridges, veths, nftables.

Until domains are wired to LANs, a "domain" here is a holder process in
network and mount namespaces of its own (tests/helpers/nettest.c), attached
with mz_net_attach exactly as a supervisor will; its /etc/hosts and
/etc/resolv.conf are the files attach writes, bind-mounted as the supervisor
will.  Probes (ping, TCP/UDP connect, serve) run in children that join a
holder's namespaces, so no `ip netns` state is made.

Every interface and table a store makes carries its tag ("mz" + 4 hex
digits of its root), so a test touches only what it made.  The `net`
fixture tears everything down, then fails the test if any interface or
nftables table of the store is left, and removes it anyway.

Note: the default route of these machines accepts any TCP connection, so
"the domain reaches the outside" is a successful connect to 203.0.113.1
(TEST-NET-3) and "it does not" a timeout or an unreachable error; probes
towards the host bind to the interface under test where it matters.
"""
import json
import os
import socket
import subprocess
import time

import pytest

from conftest import MEZZO

NETTEST = os.path.join(os.path.dirname(os.path.abspath(MEZZO)), "tests", "helpers",
                       "nettest")
OUTSIDE = "203.0.113.1"
ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")


def nettest(*args, check=True, timeout=30):
    p = subprocess.run([NETTEST, *args], capture_output=True, text=True, env=ENV,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"nettest {' '.join(args)} failed ({p.returncode}):\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def links_with(prefix):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(prefix)]


def tables_with(tag):
    out = nettest("nft", "list tables").stdout
    return [line for line in out.splitlines() if line.split()[-1] == tag]


def host_ipv4():
    """An IPv4 address of the host that is not loopback (its default route's)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((OUTSIDE, 9))
        return s.getsockname()[0]
    finally:
        s.close()


class Domain:
    """A holder process standing in for a running domain."""

    def __init__(self, net, name):
        self.net, self.name = net, name
        self.rundir = os.path.join(net.mezzo.root, "run", "domains", name)
        self.proc = subprocess.Popen([NETTEST, "holder"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=ENV)
        self.pid = int(self.proc.stdout.readline())
        self.servers = []

    def attach(self):
        os.makedirs(self.rundir, exist_ok=True)
        nettest("attach", self.net.mezzo.root, self.name, str(self.pid), self.rundir)
        self.hosts = nettest("hosts", self.net.mezzo.root, self.name).stdout.strip()
        self.proc.stdin.write(f"bind {self.hosts} {self.rundir}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def probe(self, *args, timeout=30):
        return nettest("in", str(self.pid), *args, check=False, timeout=timeout)

    def ok(self, *args):
        p = self.probe(*args)
        assert p.returncode == 0, f"{self.name}: {' '.join(args)}: {p.stdout}{p.stderr}"
        return p.stdout.strip()

    def fails(self, *args):
        p = self.probe(*args)
        assert p.returncode != 0, f"{self.name}: {' '.join(args)} should fail: {p.stdout}"
        return p.stdout.strip()

    def sh(self, *args):
        return self.ok("exec", *args)

    def sink(self, port):
        """A UDP server whose received datagrams' sources can be read."""
        p = self.serve(port, "sink", udp=True)
        os.set_blocking(p.stdout.fileno(), False)
        return p

    @staticmethod
    def heard(sink, wait=1.0):
        """Sources of what a sink got within wait seconds."""
        deadline = time.time() + wait
        got = ""
        while time.time() < deadline:
            try:
                got += os.read(sink.stdout.fileno(), 4096).decode()
            except BlockingIOError:
                time.sleep(0.05)
        return [line.split()[1] for line in got.splitlines() if line.startswith("from ")]

    def serve(self, port, token, udp=False):
        args = [NETTEST, "in", str(self.pid), "serve", str(port), token]
        p = subprocess.Popen(args + (["--udp"] if udp else []), stdout=subprocess.PIPE,
                             text=True, env=ENV)
        assert p.stdout.readline().strip() == "listening"
        self.servers.append(p)
        return p

    def stop(self):
        """The domain's end: its namespaces die with the holder."""
        for p in self.servers:
            p.kill()
            p.wait()
        self.servers = []
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def lease(self):
        return self.net.lease(self.name)


class Net:
    def __init__(self, mezzo):
        self.mezzo = mezzo
        mezzo.run("store", "info")  # makes the store, so the tag is final
        self.tag = nettest("tag", mezzo.root).stdout.strip()
        self.domains = {}

    def lan(self, name, *opts):
        return json.loads(self.mezzo.run("--json", "net", "create", name, *opts).stdout)

    def inspect(self, lan):
        return json.loads(self.mezzo.run("--json", "net", "inspect", lan).stdout)

    def lease(self, domain):
        for lan in json.loads(self.mezzo.run("--json", "net", "ls").stdout):
            for m in self.inspect(lan["name"])["members"]:
                if m["domain"] == domain:
                    return m
        raise KeyError(domain)

    def domain(self, name, lans, *ports, attach=True):
        nettest("plan", self.mezzo.root, name, ",".join(lans), *ports)
        d = Domain(self, name)
        self.domains[name] = d
        if attach:
            d.attach()
        return d

    def nft(self, what):
        return nettest("nft", what).stdout

    def teardown(self):
        for d in self.domains.values():
            d.stop()
        for d in self.domains:
            nettest("forget", self.mezzo.root, d, check=False)
        for lan in json.loads(self.mezzo.run("--json", "net", "ls").stdout):
            self.mezzo.run("net", "rm", "--force", lan["name"])
        # a dead namespace's veths go asynchronously
        deadline = time.time() + 5
        while links_with(self.tag) and time.time() < deadline:
            time.sleep(0.05)
        return links_with(self.tag), tables_with(self.tag)

    def scrub(self):
        for name in links_with(self.tag):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        for t in tables_with(self.tag):
            nettest("nft", f"delete {t}", check=False)


SYSCTLS = ["/proc/sys/net/ipv4/ip_forward"] + [
    f"/proc/sys/net/{fam}/neigh/default/gc_thresh{i}"
    for fam in ("ipv4", "ipv6") for i in (1, 2, 3)]


@pytest.fixture
def net(mezzo):
    saved = {}
    for path in SYSCTLS:
        with open(path) as f:
            saved[path] = f.read().strip()
    n = Net(mezzo)
    ok = False
    try:
        yield n
        ok = True
    finally:
        try:
            links, tables = n.teardown()
        finally:
            n.scrub()
            for path, value in saved.items():  # what mezzo raised for its LANs
                with open(path, "w") as f:
                    f.write(value)
    if ok:
        assert not links, f"interfaces left behind: {links}"
        assert not tables, f"nftables tables left behind: {tables}"


# ---- LANs from the command line --------------------------------------------

def test_lan_cli(mezzo, net):
    lans = json.loads(mezzo.run("--json", "net", "ls").stdout)
    assert [l["name"] for l in lans] == ["default"]
    assert lans[0]["mode"] == "nat" and lans[0]["subnet"].startswith("10.")
    assert lans[0]["subnet"].endswith("/20") and lans[0]["subnet6"].endswith("/64")
    assert lans[0]["subnet6"].startswith("fd") and not lans[0]["bridge_present"]

    web = net.lan("web", "--nat")
    iso = net.lan("back", "--isolated", "--subnet6", "none")
    r = net.lan("r", "--subnet", "10.123.0.0/24")
    assert web["mode"] == "nat" and iso["mode"] == "isolated" and iso["subnet6"] == ""
    assert r["mode"] == "routed" and r["subnet"] == "10.123.0.0/24"
    names = [l["name"] for l in json.loads(mezzo.run("--json", "net", "ls").stdout)]
    assert names == ["back", "default", "r", "web"]
    i = net.inspect("r")
    assert i["gateway"] == "10.123.0.1" and i["members"] == [] and i["forwards"] == []
    assert "10.123.0.0/24" in mezzo.run("net", "ls").stdout
    assert "host: 10.123.0.1" in mezzo.run("net", "inspect", "r").stdout
    for cmd in (["net", "--help"], ["net", "create", "--help"], ["net", "rm", "--help"]):
        assert "usage: mezzo" in mezzo.run(*cmd).stdout
    mezzo.run("net", "rm", "r", "back")
    names = [l["name"] for l in json.loads(mezzo.run("--json", "net", "ls").stdout)]
    assert names == ["default", "web"]


@pytest.mark.parametrize("args, needle", [
    (["x", "--subnet", "10.1.2.3/24"], "host bits set: did you mean 10.1.2.0/24"),
    (["x", "--subnet", "10.1.2.0/31"], "/8 to /30"),
    (["x", "--subnet", "10.1.2.0/32"], "/8 to /30"),
    (["x", "--subnet", "10.1.2.0"], "no prefix length"),
    (["x", "--subnet", "10.1.2.0/024"], "prefix length"),
    (["x", "--subnet", "10.1.2.0/-1"], "prefix length"),
    (["x", "--subnet", "10.1.2/24"], "not an IPv4 address"),
    (["x", "--subnet", "300.1.2.0/24"], "not an IPv4 address"),
    (["x", "--subnet", "fd00::/64"], "not an IPv4 address"),
    (["x", "--subnet", "127.0.0.0/24"], "loopback"),
    (["x", "--subnet", "224.1.0.0/16"], "multicast"),
    (["x", "--subnet", "169.254.0.0/16"], "link-local"),
    (["x", "--subnet6", "fe80::/64"], "link-local"),
    (["x", "--subnet6", "fd00:1::/120"], "/48 to /112"),
    (["x", "--subnet", "10.20.0.0/15", "--subnet6", "fd00:1::/112"], "too small"),
    (["x", "--nat", "--isolated"], "exclude each other"),
    (["b@d"], "invalid LAN name"),
    (["-x"], "unknown option"),
    (["a" * 33], "invalid LAN name"),
    (["x", "y"], "one LAN NAME at a time"),
    ([], "need a LAN NAME"),
])
def test_lan_create_refuses(mezzo, net, args, needle):
    p = mezzo.fail("net", "create", *args)
    assert needle in p.stderr, p.stderr


def test_lan_overlaps(mezzo, net):
    net.lan("a", "--subnet", "10.124.0.0/24")
    p = mezzo.fail("net", "create", "b", "--subnet", "10.124.0.128/25")
    assert "overlaps LAN 'a'" in p.stderr
    p = mezzo.fail("net", "create", "b", "--subnet", "10.0.0.0/8")
    assert "overlaps LAN 'a'" in p.stderr
    p = mezzo.fail("net", "create", "a", "--subnet", "10.125.0.0/24")
    assert "already exists" in p.stderr
    # a route of the host (its own subnet)
    hostnet = host_ipv4().rsplit(".", 1)[0] + ".0/24"
    p = mezzo.fail("net", "create", "b", "--subnet", hostnet)
    assert "collides with the host's route" in p.stderr
    # chosen subnets avoid all of it
    b = net.lan("b")
    assert b["subnet"] != "10.124.0.0/24" and b["subnet"].endswith("/24")


def test_rm_refuses_members(mezzo, net):
    net.lan("web")
    net.domain("a", ["web"], attach=False)
    p = mezzo.fail("net", "rm", "web")
    assert "has 1 member (a)" in p.stderr and "--force" in p.stderr
    mezzo.fail("net", "rm", "nosuch")
    mezzo.run("net", "rm", "--force", "web")
    assert "web" not in mezzo.run("net", "ls").stdout


# ---- domains on LANs ----------------------------------------------------------

def test_same_lan_by_name(mezzo, net):
    net.lan("web", "--nat")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    la, lb = a.lease(), b.lease()
    assert la["ipv4"] != lb["ipv4"] and la["mac"] != lb["mac"] and la["attached"]
    # one hosts file for the two (the same LANs), which learnt b when b came
    assert a.hosts == b.hosts and os.path.dirname(a.hosts) == \
        os.path.join(mezzo.root, "run", "hosts")
    for d in (a, b):
        hosts = open(d.hosts).read()
        assert f"{la['ipv4']}\ta\n" in hosts and f"{lb['ipv4']}\tb\n" in hosts
        assert f"{la['ipv6']}\ta\n" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert "nameserver" in open(os.path.join(a.rundir, "resolv.conf")).read()
    # inside: the NIC, its MAC and addresses, default routes
    link = a.sh("ip", "-o", "link", "show", "eth0")
    assert la["mac"] in link
    addrs = a.sh("ip", "-o", "addr", "show", "eth0")
    assert la["ipv4"] + "/24" in addrs and la["ipv6"] + "/64" in addrs
    gw = net.inspect("web")["gateway"]
    assert f"default via {gw} dev eth0" in a.sh("ip", "route")
    assert "default via" in a.sh("ip", "-6", "route")
    # by name, over IPv4 and IPv6, ICMP and TCP
    assert a.ok("ping", "b") == "reply"
    assert b.ok("ping", "a") == "reply"
    assert a.ok("ping", "-6", "b") == "reply"
    b.serve(80, "hello-from-b")
    assert a.ok("connect", "b", "80") == "hello-from-b"
    assert a.ok("connect", "-6", "b", "80") == "hello-from-b"


def test_lans_are_apart_and_host_is_closed(mezzo, net):
    net.lan("one", "--nat")
    net.lan("two", "--nat")
    a = net.domain("a", ["one"])
    c = net.domain("c", ["two"])
    ca = c.lease()
    c.serve(80, "c")
    # another LAN: neither ping nor TCP, either way
    a.fails("ping", ca["ipv4"])
    a.fails("ping", "-6", ca["ipv6"])
    assert "connect" in a.fails("connect", ca["ipv4"], "80")
    c.fails("ping", a.lease()["ipv4"])
    # c is not in a's hosts file
    assert "\tc\n" not in open(a.hosts).read()
    # the host's services: on the LAN's own address and on the host's
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen()
    port = str(srv.getsockname()[1])
    try:
        gw = net.inspect("one")["gateway"]
        a.fails("connect", gw, port, "--no-read")
        a.fails("connect", host_ipv4(), port, "--no-read")
        a.fails("ping", gw)
    finally:
        srv.close()
    # the host itself reaches a domain (and the answers come back)
    with socket.create_connection((ca["ipv4"], 80), timeout=2) as s:
        assert s.recv(10) == b"c"


@pytest.fixture
def outside(net):
    """A network beyond the host: a namespace behind a plain veth (named
    with the store's tag, so the leak check covers it), 198.51.100.2, its
    default route via the host (198.51.100.1)."""
    ext = Domain(net, "outside")
    net.domains["outside"] = ext
    veth = net.tag + "e0"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                    "netns", f"/proc/{ext.pid}/ns/net"], check=True)
    subprocess.run(["ip", "addr", "add", "198.51.100.1/24", "dev", veth], check=True)
    subprocess.run(["ip", "link", "set", veth, "up"], check=True)
    ext.sh("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0")
    ext.sh("ip", "link", "set", "eth0", "up")
    ext.sh("ip", "route", "add", "default", "via", "198.51.100.1")
    ext.serve(80, "peer")
    return ext


def test_nat_routed_isolated(mezzo, net, outside):
    net.lan("out", "--nat")
    net.lan("routed")
    net.lan("iso", "--isolated")
    n = net.domain("n", ["out"])
    r = net.domain("r", ["routed"])
    i = net.domain("i", ["iso"])
    j = net.domain("j", ["iso"])
    # NAT: out, behind the host's address on the way
    assert n.ok("connect", "198.51.100.2", "80") == "198.51.100.1"
    # routed: out, with its own address
    assert r.ok("connect", "198.51.100.2", "80") == r.lease()["ipv4"]
    # isolated: no default route, nothing gets out
    assert "default" not in i.sh("ip", "route")
    assert "unreachable" in i.fails("connect", "198.51.100.2", "80")
    # not even with a route made inside (the domain has CAP_NET_ADMIN)
    gw = net.inspect("iso")["gateway"]
    i.sh("ip", "route", "add", "default", "via", gw)
    i.fails("connect", "198.51.100.2", "80")
    # but its members reach each other
    assert i.ok("ping", "j") == "reply"
    # the way in is closed to new connections, but for forwarded ports
    n.serve(80, "n")
    r.serve(80, "r")
    outside.fails("connect", n.lease()["ipv4"], "80", "--no-read")
    outside.fails("connect", r.lease()["ipv4"], "80", "--no-read")
    # the masquerade applies to the NAT LAN's bridge only
    natlans = net.nft(f"list set inet {net.tag} natlans")
    isolated = net.nft(f"list set inet {net.tag} isolated")
    assert net.inspect("out")["bridge"] in natlans
    assert net.inspect("routed")["bridge"] not in natlans
    assert net.inspect("iso")["bridge"] not in natlans
    assert net.inspect("iso")["bridge"] in isolated
    ruleset = net.nft(f"list table inet {net.tag}")
    assert "masquerade" in ruleset and "@natlans" in ruleset
    # and the machine's own way out (its default route accepts any TCP)
    assert n.ok("connect", OUTSIDE, "80", "--no-read") == "connected"


def test_anti_spoof(mezzo, net):
    """What a domain sends with another's source address or MAC never
    arrives (a spoofed TCP connect would fail anyway: the answer goes to the
    real owner, so arrival is watched on a UDP sink)."""
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    c = net.domain("c", ["web"])
    d = net.domain("d", ["web"])
    sink = a.sink(9)
    lb, lc = b.lease(), c.lease()
    spare = lc["ipv4"].rsplit(".", 1)[0] + ".200"

    def send(x, *args):
        x.ok("connect", *args, "--udp", "--no-read")

    # b as itself, over IPv4 and IPv6: heard
    send(b, "a", "9")
    send(b, "-6", "a", "9")
    assert sorted(Domain.heard(sink)) == sorted([lb["ipv4"], lb["ipv6"]])
    # b as c, or as an address nobody has: nothing
    send(b, "a", "9", "--src", lc["ipv4"])
    send(b, "-6", "a", "9", "--src", lc["ipv6"])
    send(b, "a", "9", "--src", spare)
    assert Domain.heard(sink) == []
    # c takes b's MAC: nothing of c's passes (nor is b's traffic stolen);
    # a static neighbour entry, so that the frame needs no ARP first
    la = a.lease()
    c.ok("setmac", "eth0", lb["mac"])
    c.sh("ip", "neigh", "replace", la["ipv4"], "lladdr", la["mac"], "dev", "eth0")
    send(c, la["ipv4"], "9")
    assert Domain.heard(sink) == []
    assert b.ok("ping", "a") == "reply"
    # ARP: d says it is a (or some address nobody has); b hears only d's truth
    # until d's true ARP, sent last on the same path as the false ones: a
    # false one let through would be heard before it (a fixed 1.5 s window
    # missed even the true one once, on a loaded machine)
    ld = d.lease()
    watch = subprocess.Popen([NETTEST, "in", str(b.pid), "arpwatch", "eth0", "15", ld["ipv4"]],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    assert watch.stdout.readline().strip() == "watching"
    d.ok("arp", "eth0", la["ipv4"], lb["ipv4"])
    d.ok("arp", "eth0", spare, lb["ipv4"])
    d.ok("arp", "eth0", ld["ipv4"], lb["ipv4"])
    heard = watch.communicate(timeout=30)[0]
    assert f"arp {ld['ipv4']} {ld['mac']}" in heard
    assert la["ipv4"] not in heard and spare not in heard
    # d gives itself another address (it has CAP_NET_ADMIN inside): nothing
    d.sh("ip", "addr", "flush", "dev", "eth0")
    d.sh("ip", "addr", "add", spare + "/24", "dev", "eth0")
    send(d, a.lease()["ipv4"], "9")
    d.fails("ping", a.lease()["ipv4"])
    assert Domain.heard(sink) == []
    # the filter's elements name each veth with its own MAC and addresses
    macs = net.nft(f"list set bridge {net.tag} mac")
    arp = net.nft(f"list set bridge {net.tag} arp4")
    for x in (a, b, c, d):
        lx = x.lease()
        assert f'"{lx["veth"]}" . {lx["mac"]}' in macs
        assert f'"{lx["veth"]}" . {lx["mac"]} . {lx["ipv4"]}' in arp


def test_port_forwards(mezzo, net):
    net.lan("web", "--nat")
    net.lan("iso", "--isolated")
    a = net.domain("a", ["web"], "18080:80", "18053:53/udp")
    i = net.domain("i", ["iso"], "18081:81")
    a.serve(80, "tcp-a")
    a.serve(53, "udp-a", udp=True)
    i.serve(81, "tcp-i")

    def host_get(addr, port, udp=False):
        if udp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(b"?", (addr, port))
            data = s.recv(100)
        else:
            s = socket.create_connection((addr, port), timeout=2)
            data = s.recv(100)
        s.close()
        return data.decode()

    # from the host's loopback and from the host's own address
    assert host_get("127.0.0.1", 18080) == "tcp-a"
    assert host_get(host_ipv4(), 18080) == "tcp-a"
    assert host_get("127.0.0.1", 18053, udp=True) == "udp-a"
    # into an isolated LAN too (masqueraded: it has no route back)
    assert host_get("127.0.0.1", 18081) == "tcp-i"
    assert host_get(host_ipv4(), 18081) == "tcp-i"
    # a domain reaches another LAN only through a forward
    assert a.ok("connect", host_ipv4(), "18081") == "tcp-i"
    a.fails("connect", i.lease()["ipv4"], "81")
    fw = net.inspect("web")["forwards"]
    assert {"domain": "a", "proto": "tcp", "host_port": 18080, "domain_port": 80} in fw
    # taken ports are refused at plan time
    p = nettest("plan", mezzo.root, "x", "web", "18080:80", check=False)
    assert p.returncode != 0 and "forwarded to domain 'a' already" in p.stderr
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        p = nettest("plan", mezzo.root, "x", "web", f"{port}:80", check=False)
        assert p.returncode != 0 and "in use by a service of the host" in p.stderr
    # stopped: the forward goes with it
    nettest("detach", mezzo.root, "a")
    with pytest.raises(OSError):
        host_get("127.0.0.1", 18080)


@pytest.mark.parametrize("spec, needle", [
    ("0:80", "from 1 to 65535"), ("65536:80", "from 1 to 65535"), ("80:0", "from 1 to 65535"),
    ("8000-8010:80", "port ranges"), ("80:80/sctp", "tcp or udp"), ("1.2.3.4:80:80", "every address"),
    ("x:80", "from 1 to 65535"), ("", "empty port forward"), ("080:80", "from 1 to 65535"),
])
def test_port_forward_refuses(mezzo, net, spec, needle):
    net.lan("web")
    p = nettest("plan", mezzo.root, "x", "web", spec, check=False)
    assert p.returncode != 0 and needle in p.stderr, p.stderr


def test_restart_keeps_addresses(mezzo, net):
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    before = a.lease()
    hosts_b = b.hosts
    inode = os.stat(hosts_b).st_ino
    # restart a at once, twice: its last veths may linger a while
    for _ in range(3):
        nettest("detach", mezzo.root, "a")
        a.stop()
        a = Domain(net, "a")
        net.domains["a"] = a
        a.attach()
    after = a.lease()
    assert (after["ipv4"], after["ipv6"], after["mac"]) == \
        (before["ipv4"], before["ipv6"], before["mac"])
    assert b.ok("ping", "a") == "reply"
    # a new member: b's hosts file learns it in place (its bind mount sees it)
    net.domain("c", ["web"])
    assert os.stat(hosts_b).st_ino == inode
    assert "\tc\n" in b.sh("cat", "/etc/hosts")
    assert b.ok("ping", "c") == "reply"
    # c removed: forgotten by b's hosts file, its address free again
    c_ip = net.lease("c")["ipv4"]
    net.domains.pop("c").stop()
    nettest("forget", mezzo.root, "c")
    assert "\tc\n" not in open(hosts_b).read()
    net.domain("d", ["web"], attach=False)
    assert net.lease("d")["ipv4"] == c_ip


def test_crash_leaves_nothing(mezzo, net):
    net.lan("web")
    a = net.domain("a", ["web"], "18090:80")
    veth = a.lease()["veth"]
    assert veth in links_with(net.tag)
    # the domain dies without a detach (its supervisor was killed)
    a.proc.kill()
    a.proc.wait()
    deadline = time.time() + 5
    while veth in links_with(net.tag) and time.time() < deadline:
        time.sleep(0.02)
    assert veth not in links_with(net.tag)  # gone with its namespace
    assert veth in net.nft(f"list set bridge {net.tag} mac")
    assert "18090" in net.nft(f"list map inet {net.tag} fwd4")
    out = mezzo.run("net", "prune").stdout
    assert "removed 1 leftover" in out
    assert veth not in net.nft(f"list set bridge {net.tag} mac")
    assert "18090" not in net.nft(f"list map inet {net.tag} fwd4")
    assert not net.lease("a")["attached"]
    # a LAN whose bridge is there while its record went (a crash inside
    # net rm): prune deletes the bridge, and the tables with the last one
    bridge = net.inspect("web")["bridge"]
    assert bridge in links_with(net.tag)
    mezzo.run("net", "rm", "--force", "web")
    assert links_with(net.tag) == [] and tables_with(net.tag) == []


def test_net_rm_force_takes_running_members(mezzo, net):
    net.lan("web", "--nat")
    a = net.domain("a", ["web"], "18095:80")
    b = net.domain("b", ["web"])
    mezzo.run("net", "rm", "--force", "web")
    assert links_with(net.tag) == []
    assert tables_with(net.tag) == []
    # the domains lost their NIC
    assert "eth0" not in a.sh("ip", "-o", "link")
    with pytest.raises(KeyError):
        net.lease("b")


def test_two_lans_two_nics(mezzo, net):
    net.lan("front", "--nat")
    net.lan("back", "--isolated")
    a = net.domain("a", ["front", "back"])
    b = net.domain("b", ["back"])
    links = a.sh("ip", "-o", "link")
    assert "eth0" in links and "eth1" in links
    route = a.sh("ip", "route")
    assert f"default via {net.inspect('front')['gateway']} dev eth0" in route
    assert a.ok("ping", "b") == "reply"
    assert b.ok("ping", "a") == "reply"
    # b reaches a on the LAN they share only; their LANs differ, their files too
    assert a.hosts != b.hosts
    hosts = open(b.hosts).read()
    back_ip = [m for m in net.inspect("back")["members"] if m["domain"] == "a"][0]["ipv4"]
    assert f"{back_ip}\ta\n" in hosts


def test_rate_limits(mezzo, net):
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    c = net.domain("c", ["web"], attach=False)
    nettest("rates", mezzo.root, "c", "2000000", "1000000")
    c.attach()
    for d in (a, b, c):
        p = subprocess.Popen([NETTEST, "in", str(d.pid), "drain", "9000"],
                             stdout=subprocess.PIPE, text=True, env=ENV)
        assert p.stdout.readline().strip() == "listening"
        d.servers.append(p)
    size = str(3 * 1000 * 1000)
    # unlimited: a few ms
    assert float(a.ok("blast", "b", "9000", size)) < 0.5
    # c sends at most 1 MB/s (policed): 3 MB take 2 s and more
    t = float(c.ok("blast", "a", "9000", size))
    assert 1.8 < t < 30, t
    # c receives at most 2 MB/s (shaped): 3 MB take 1 s and more
    t = float(a.ok("blast", "c", "9000", size))
    assert 0.9 < t < 15, t
    veth = c.lease()["veth"]
    qd = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True,
                        text=True).stdout
    assert "tbf" in qd and "rate 16Mbit" in qd, qd
    assert f'"{veth}" : "l' in net.nft(f"list map bridge {net.tag} egress")
    # detached: the policer goes with the domain's other elements
    nettest("detach", mezzo.root, "c")
    assert veth not in net.nft(f"list map bridge {net.tag} egress")
    assert "limit l" not in net.nft(f"list table bridge {net.tag}")
    p = nettest("rates", mezzo.root, "c", "10", "0", check=False)
    assert p.returncode != 0 and "stall TCP" in p.stderr


def test_ruleset_flushed(mezzo, net):
    """A firewall reload that flushes the rule set: the next attach, or
    `net prune`, loads all of it again, running domains' elements included."""
    net.lan("web", "--nat")
    a = net.domain("a", ["web"], "18099:80")
    b = net.domain("b", ["web"])
    net.nft(f"delete table bridge {net.tag}; delete table inet {net.tag}")
    assert tables_with(net.tag) == []
    c = net.domain("c", ["web"])
    macs = net.nft(f"list set bridge {net.tag} mac")
    for d in (a, b, c):
        assert d.lease()["veth"] in macs
    assert "18099" in net.nft(f"list map inet {net.tag} fwd4")
    assert c.ok("ping", "a") == "reply"
    net.nft(f"delete table bridge {net.tag}; delete table inet {net.tag}")
    mezzo.run("net", "prune")
    macs = net.nft(f"list set bridge {net.tag} mac")
    for d in (a, b, c):
        assert d.lease()["veth"] in macs
    assert b.ok("ping", "c") == "reply"


def test_bridge_raises_neighbour_limits(mezzo, net):
    net.lan("wide", "--subnet", "10.232.0.0/20")
    d = net.domain("n1", ["wide"])
    with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as f:
        assert int(f.read()) >= 4 * 4096
    d.stop()


# ---- the fast path between members of a LAN (src/net/fast.c) ----------------

def fast(net, lan):
    """The LAN's fast path entries: ports {mac: (ifindex, lease, shaped)},
    members {ifindex: hits}; None when the LAN has no fast path (no block)."""
    out = nettest("fast", net.mezzo.root, lan).stdout
    if out.strip() == "none":
        return None
    ports, members = {}, {}
    for line in out.splitlines():
        f = line.split()
        if f[0] == "port":
            ports[f[1]] = (int(f[3]), int(f[5]), "shaped" in f)
        elif f[0] == "member":
            members[int(f[2])] = int(f[6])
    return ports, members


def ifindex(name):
    with open(f"/sys/class/net/{name}/ifindex") as f:
        return int(f.read())


def tx_bytes(name):
    with open(f"/sys/class/net/{name}/statistics/tx_bytes") as f:
        return int(f.read())


def hits(net, lan, d):
    return fast(net, lan)[1].get(ifindex(d.lease()["veth"]), 0)


def block_of(veth):
    qd = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True,
                        text=True).stdout
    for line in qd.splitlines():
        if "clsact" in line and "ingress_block" in line:
            return line.split("ingress_block")[1].split()[0]
    return None


def block_filters(block):
    p = subprocess.run(["tc", "filter", "show", "block", block], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else ""


class Watch:
    """Every TCP/UDP packet to port that reaches domain d's eth0."""

    def __init__(self, d, port, seconds=2.0):
        self.p = subprocess.Popen([NETTEST, "in", str(d.pid), "watch", "eth0", str(port),
                                   str(seconds)], stdout=subprocess.PIPE, text=True, env=ENV)
        assert self.p.stdout.readline().strip() == "watching"

    def seen(self):
        return [line.split(None, 1)[1] for line in self.p.communicate(timeout=15)[0].splitlines()
                if line.startswith("seen ")]


def test_fast_path_carries_members_traffic(mezzo, net):
    """TCP and UDP between members go veth to veth: the receiver's host end
    (the bridge's way out to it) does not see the bytes; the sender's
    counter of fast-path frames moves; ping (ICMP) still takes the bridge."""
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    la, lb = a.lease(), b.lease()
    ports, members = fast(net, "web")
    assert ports[la["mac"]][:2] == (ifindex(la["veth"]), ports[la["mac"]][1])
    assert {ifindex(la["veth"]), ifindex(lb["veth"])} == set(members)
    block = block_of(la["veth"])
    assert block is not None and block == block_of(lb["veth"])
    assert f"handle 0x1 {net.inspect('web')['bridge']} direct-action" in block_filters(block)
    drain = subprocess.Popen([NETTEST, "in", str(b.pid), "drain", "9000"],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    assert drain.stdout.readline().strip() == "listening"
    b.servers.append(drain)
    before, h0 = tx_bytes(lb["veth"]), hits(net, "web", a)
    a.ok("blast", "b", "9000", str(3 * 1000 * 1000))
    assert tx_bytes(lb["veth"]) - before < 300 * 1000  # 3 MB went past it
    assert hits(net, "web", a) > h0
    # UDP over IPv6 too, to its global address
    sink = b.sink(9)
    h0 = hits(net, "web", a)
    a.ok("connect", "-6", "b", "9", "--udp", "--no-read")
    assert Domain.heard(sink) == [la["ipv6"]]
    assert hits(net, "web", a) == h0 + 1
    # ICMP takes the bridge (its checks: redirects, router adverts)
    before = tx_bytes(lb["veth"])
    assert a.ok("ping", "b") == "reply"
    assert tx_bytes(lb["veth"]) > before


def test_fast_path_refuses_spoofing(mezzo, net):
    """Through the fast path too, nothing arrives that claims another's
    source address or MAC, over TCP or UDP, IPv4 or IPv6: watched on the
    receiver's interface itself, below any socket."""
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    c = net.domain("c", ["web"])
    la, lb, lc = a.lease(), b.lease(), c.lease()
    spare = lc["ipv4"].rsplit(".", 1)[0] + ".200"
    # b as itself: seen, and through the fast path
    w = Watch(a, 9)
    h0 = hits(net, "web", b)
    b.probe("connect", "a", "9", "--no-read")
    b.probe("connect", "a", "9", "--udp", "--no-read")
    b.probe("connect", "-6", "a", "9", "--udp", "--no-read")
    seen = w.seen()
    assert f"tcp {lb['ipv4']}" in seen and f"udp {lb['ipv4']}" in seen
    assert f"udp {lb['ipv6']}" in seen
    assert hits(net, "web", b) >= h0 + 3
    # b as c, or as nobody, over TCP and UDP, v4 and v6: never seen
    w = Watch(a, 9)
    h0 = hits(net, "web", b)
    for src in (lc["ipv4"], spare):
        b.probe("connect", "a", "9", "--src", src, "--no-read")
        b.probe("connect", "a", "9", "--src", src, "--udp", "--no-read")
    b.probe("connect", "-6", "a", "9", "--src", lc["ipv6"], "--no-read")
    b.probe("connect", "-6", "a", "9", "--src", lc["ipv6"], "--udp", "--no-read")
    assert w.seen() == []
    assert hits(net, "web", b) == h0
    # c takes b's MAC (and then b's address as well): never seen
    c.ok("setmac", "eth0", lb["mac"])
    c.sh("ip", "neigh", "replace", la["ipv4"], "lladdr", la["mac"], "dev", "eth0")
    w = Watch(a, 9)
    c.probe("connect", la["ipv4"], "9", "--no-read")
    c.probe("connect", la["ipv4"], "9", "--udp", "--no-read")
    c.probe("connect", la["ipv4"], "9", "--src", lb["ipv4"], "--udp", "--no-read")
    assert w.seen() == []
    # (VLAN-tagged frames take the bridge, whose chain drops them: the
    # program passes any frame with a tag; this kernel has no 802.1Q
    # devices for a domain to make one with.)


def test_fast_path_keeps_lans_apart(mezzo, net):
    """A frame sent straight to the MAC of a domain on another LAN, with its
    address, reaches nothing: the fast path of a LAN knows only its own
    members, and the bridge does not know the other LAN's."""
    net.lan("web")
    net.lan("db")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    d = net.domain("d", ["db"])
    ld = d.lease()
    assert block_of(a.lease()["veth"]) != block_of(ld["veth"])
    assert ld["mac"] not in fast(net, "web")[0]
    a.sh("ip", "route", "add", ld["ipv4"] + "/32", "dev", "eth0")
    a.sh("ip", "neigh", "replace", ld["ipv4"], "lladdr", ld["mac"], "dev", "eth0")
    w = Watch(d, 9)
    h0 = hits(net, "web", a)
    a.probe("connect", ld["ipv4"], "9", "--no-read")
    a.probe("connect", ld["ipv4"], "9", "--udp", "--no-read")
    assert w.seen() == []
    assert hits(net, "web", a) == h0
    assert a.ok("ping", "b") == "reply"


def test_fast_path_leaves_nothing(mezzo, net):
    """Detach takes a member's entries out; a crashed member's stay until
    'net prune'; the qdisc goes with its veth, the block and its filter with
    the last member; 'net rm' leaves nothing."""
    net.lan("web")
    a = net.domain("a", ["web"])
    b = net.domain("b", ["web"])
    c = net.domain("c", ["web"])
    la, lb, lc = a.lease(), b.lease(), c.lease()
    block = block_of(la["veth"])
    ports, members = fast(net, "web")
    assert set(ports) == {la["mac"], lb["mac"], lc["mac"]} and len(members) == 3
    # a stops (detach, then its namespace ends)
    nettest("detach", mezzo.root, "a")
    a.stop()
    ports, members = fast(net, "web")
    assert set(ports) == {lb["mac"], lc["mac"]} and len(members) == 2
    # b crashes: its entries stay (its veth went with its namespace) ...
    b.proc.kill()
    b.proc.wait()
    deadline = time.time() + 5
    while lb["veth"] in links_with(net.tag) and time.time() < deadline:
        time.sleep(0.02)
    assert lb["mac"] in fast(net, "web")[0]
    # ... until prune
    mezzo.run("net", "prune")
    ports, members = fast(net, "web")
    assert set(ports) == {lc["mac"]} and set(members) == {ifindex(lc["veth"])}
    # a restart of c: its new veth's entries replace the old ones
    nettest("detach", mezzo.root, "c")
    c.stop()
    deadline = time.time() + 5
    while block_filters(block) and time.time() < deadline:
        time.sleep(0.02)
    assert block_filters(block) == ""  # the last member's veth took the block
    assert fast(net, "web") is None
    a2 = net.domain("a2", ["web"])
    c2 = net.domain("c2", ["web"])
    assert a2.ok("connect", "c2", "9", "--udp", "--no-read") == "sent"
    assert len(fast(net, "web")[1]) == 2
    # net rm: veths, qdiscs, block, filter, all gone
    mezzo.run("net", "rm", "--force", "web")
    assert block_filters(block) == ""
    assert links_with(net.tag) == []


def test_fast_path_and_rate_limits(mezzo, net):
    """A domain with an egress limit does not send through the fast path
    (nftables polices it on the bridge); one with an ingress limit is
    reached through its host end's qdisc (test_rate_limits times both)."""
    net.lan("web")
    a = net.domain("a", ["web"])
    c = net.domain("c", ["web"], attach=False)
    nettest("rates", mezzo.root, "c", "2000000", "1000000")
    c.attach()
    ports, members = fast(net, "web")
    lc = c.lease()
    assert ports[lc["mac"]][2]  # shaped
    assert ifindex(lc["veth"]) not in members and ifindex(a.lease()["veth"]) in members


def test_fast_path_can_be_turned_off(mezzo, net):
    """MEZZO_NET_FAST=0 at attach: no filter block, and the members still
    reach each other by name, through the bridge and its checks (the same
    path a kernel without cls_bpf or BPF leaves them on)."""
    net.lan("web")
    ENV["MEZZO_NET_FAST"] = "0"
    try:
        a = net.domain("a", ["web"])
        b = net.domain("b", ["web"])
    finally:
        del ENV["MEZZO_NET_FAST"]
    assert fast(net, "web") is None
    assert block_of(a.lease()["veth"]) is None and block_of(b.lease()["veth"]) is None
    b.serve(80, "hello-from-b")
    assert a.ok("connect", "b", "80") == "hello-from-b"
    assert a.ok("ping", "b") == "reply"
    # a member that joins with it on has a fast path, but none to them
    c = net.domain("c", ["web"])
    ports, _members = fast(net, "web")
    assert list(ports) == [c.lease()["mac"]]
    assert c.ok("connect", "b", "80") == "hello-from-b"
