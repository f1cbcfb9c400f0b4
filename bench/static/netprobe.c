/*
 * netprobe.c — the network probe of bench/net (issue 4's figures).  Built
 * statically by bench/net at run time (cc -static) and put into the
 * benchmark's image and OCI root file system; the same binary runs on the
 * host, in the network namespaces the benchmark makes itself.
 *
 *   netprobe [-N NETNS] SUBCOMMAND ...
 *
 * -N PATH  setns() into the network namespace PATH first (/run/netns/NAME):
 *          no `ip netns exec` (a process of its own, ~2 ms, remounts /sys).
 * -C CPU   (anywhere after the subcommand) run on that CPU only.
 *
 * Subcommands (times are CLOCK_MONOTONIC in ns: one clock for the host and
 * every domain, no time namespace is involved):
 *
 *   serve PORT [-d DEV] [-r FILE]
 *        Listen on 0.0.0.0:PORT (bound to DEV with -d), write "listening NS"
 *        to FILE ('-': standard output; no -r: nowhere), and serve connections one after the other:
 *        each gets the banner "netprobe HOSTNAME\n", then the first byte it
 *        sends chooses: 'S' sink (read to EOF, answer the byte count, 8 bytes
 *        little endian), 'P' ping-pong (echo every byte, TCP_NODELAY), EOF
 *        (just close).  SIGTERM/SIGINT end it with status 0.
 *
 *   floor PORT -B BRNETNS -b BRIDGE -v VETH -a IP/PREFIX [-m MAC] [-r FILE]
 *        Figure 1's floor: what a runtime must do at least to put a new
 *        listener on a LAN.  setns() into BRNETNS (where BRIDGE is),
 *        unshare(CLONE_NEWNET), one RTM_NEWLINK that makes a veth pair (VETH
 *        up and a port of BRIDGE; the peer eth0, with MAC, born in the new
 *        namespace), then in the new namespace lo up, eth0 up, IP/PREFIX on
 *        it (netlink, no `ip`); then `serve PORT [-r FILE]`.  No other namespace, no
 *        root file system, no cgroup.
 *
 *   waitconn HOST PORT [-d DEV] [-i INTERVAL_US] [-t TIMEOUT_S] [-e banner|none]
 *        Print "trying NS" and then try to connect to HOST:PORT every
 *        INTERVAL_US (default 100) µs until one succeeds: non-blocking
 *        connects, up to 16 in flight (an attempt towards an address that
 *        does not answer yet is not waited for: a new SYN leaves every
 *        interval, and no sooner when one is refused).  HOST is an IPv4 address or a name looked up in
 *        /etc/hosts, read again at each attempt until the name is there.
 *        Prints "connected NS resolved NS attempts N" (NS of the first
 *        successful connect; resolved: when the name was first found), then
 *        checks the banner (-e banner, the default) and exits 0; 1 on a
 *        timeout (default 10 s) or a wrong banner.
 *
 *   send HOST PORT BYTES [-d DEV] [-c CHUNK]
 *        Connect, 'S', write BYTES (suffix K/M/G: powers of 2) in writes of
 *        CHUNK (default 1M) bytes, shutdown(SHUT_WR), wait for the server's
 *        count.  Prints "sent BYTES ns NS MBps X" (MB = 10^6 bytes), timed
 *        from the connection's first write to the count read back.
 *
 *   pingpong HOST PORT COUNT [-d DEV] [-w WARMUP] [-A FD [-k BLOCK]]
 *        Connect, 'P', TCP_NODELAY; WARMUP (default 1000) untimed round
 *        trips of one byte, then COUNT timed ones.  Prints "rtt n N mean_us
 *        X p1 p10 p50 p90 p99 p999 max" (µs).
 *        -A FD: FD is a second connection to a netprobe server, its banner
 *        read (as `connexec` leaves it); both get WARMUP and COUNT round
 *        trips, in alternating blocks of BLOCK (default 100), and FD's are
 *        printed on a second line "rtt2 n N ...".  Two setups measured in
 *        blocks a millisecond apart see the same state of the machine, where
 *        runs a second apart do not always (this VM drifts between a fast
 *        and a slow mode for seconds at a time).
 *
 *   connexec HOST PORT [-d DEV] -- CMD...
 *        Connect to HOST:PORT (from -N's namespace), read the banner, make
 *        the connection standard input and exec CMD (in the namespace
 *        netprobe was started in): how a ping-pong inside
 *        a domain gets a second connection that leaves from another
 *        namespace (`mezzo exec` hands its standard input to the process).
 *
 *   multi PORT NAME... [-d DEV] [-j PARALLEL] [-T TIMEOUT_MS]
 *        Connect to every NAME (looked up in /etc/hosts once) at PORT,
 *        PARALLEL (default 8) at a time, each with TIMEOUT_MS (default 3000)
 *        and up to 3 tries; read each one's banner and check that it names
 *        NAME.  One line per name: "ok NAME IP US" or "fail NAME IP WHY";
 *        then "total OK N".  Exit 0 when all answered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static int home_ns = -1; /* the network namespace before -N */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "netprobe: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void usage(void)
{
	fprintf(stderr, "usage: netprobe [-N NETNS] serve|floor|waitconn|send|pingpong|connexec|multi ... "
			"(see bench/static/netprobe.c)\n");
	exit(2);
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static int64_t parse_size(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	switch (*end) {
	case 'K': case 'k': v <<= 10; break;
	case 'M': case 'm': v <<= 20; break;
	case 'G': case 'g': v <<= 30; break;
	case 0: break;
	default: usage();
	}
	return v;
}

static int tcp_socket(int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		die("socket");
	if (dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev) + 1) < 0)
		die("SO_BINDTODEVICE");
	return fd;
}

/* ---- names: an IPv4 literal, or /etc/hosts -------------------------------- */

/* 1 and *out when found, 0 when not (yet) there */
static int lookup(const char *host, struct in_addr *out)
{
	if (inet_pton(AF_INET, host, out) == 1)
		return 1;
	static char buf[1 << 20];
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = 0, r;
	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save, *ip = strtok_r(line, " \t", &save);
		struct in_addr a;
		if (!ip || inet_pton(AF_INET, ip, &a) != 1)
			continue;
		for (char *nm; (nm = strtok_r(NULL, " \t", &save));)
			if (strcmp(nm, host) == 0) {
				*out = a;
				return 1;
			}
	}
	return 0;
}

static int full_read(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int full_write(int fd, const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* the banner's line (without the newline) into buf; -1 on EOF/error */
static int read_banner(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n < len - 1) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = 0;
	return strncmp(buf, "netprobe ", 9) == 0 ? 0 : -1;
}

static int connect_blocking(const char *host, int port, int timeout_s)
{
	struct in_addr a;
	if (!lookup(host, &a)) {
		fprintf(stderr, "netprobe: %s: not an address, not in /etc/hosts\n", host);
		exit(2);
	}
	int fd = tcp_socket(0);
	struct timeval tv = {timeout_s, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	char b[256];
	if (read_banner(fd, b, sizeof(b)) < 0) {
		fprintf(stderr, "netprobe: %s:%d is not a netprobe server\n", host, port);
		exit(1);
	}
	return fd;
}

/* ---- serve ------------------------------------------------------------------ */

static void serve_one(int c, const char *banner)
{
	struct timeval tv = {60, 0};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (full_write(c, banner, strlen(banner)) < 0)
		return;
	char mode;
	if (read(c, &mode, 1) != 1)
		return;
	if (mode == 'S') {
		static char buf[1 << 20];
		uint64_t total = 0;
		ssize_t r;
		while ((r = read(c, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR))
			if (r > 0)
				total += (uint64_t)r;
		unsigned char le[8];
		for (int i = 0; i < 8; i++)
			le[i] = (unsigned char)(total >> (8 * i));
		full_write(c, le, 8);
	} else if (mode == 'P') {
		int one = 1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		char x;
		for (;;) {
			ssize_t r = read(c, &x, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || send(c, &x, 1, MSG_NOSIGNAL) != 1)
				break;
		}
	}
}

__attribute__((noreturn)) static void serve(int port, const char *readyfile)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int fd = tcp_socket(0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(fd, 512) < 0)
		die("listen");
	if (readyfile) {
		char b[64];
		int n = snprintf(b, sizeof(b), "listening %lld\n", (long long)now_ns());
		int rf = strcmp(readyfile, "-") == 0 ? 1 :
			 open(readyfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (rf < 0 || write(rf, b, (size_t)n) != n)
			die(readyfile);
		if (rf != 1)
			close(rf);
	}
	char host[128] = "?", banner[160];
	gethostname(host, sizeof(host) - 1);
	snprintf(banner, sizeof(banner), "netprobe %s\n", host);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			die("accept");
		}
		serve_one(c, banner);
		close(c);
	}
}

/* ---- floor: netns + veth into a bridge + address, then serve (netlink) ---- */

struct nlreq {
	struct nlmsghdr h;
	char buf[1024];
};

static struct rtattr *nla_put(struct nlreq *r, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)&r->h + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static struct rtattr *nla_nest(struct nlreq *r, int type)
{
	return nla_put(r, type, NULL, 0);
}

static void nla_end(struct nlreq *r, struct rtattr *a)
{
	a->rta_len = (unsigned short)((char *)&r->h + r->h.nlmsg_len - (char *)a);
}

static void nl_talk(int fd, struct nlreq *r, const char *what)
{
	static unsigned seq;
	r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r->h.nlmsg_seq = ++seq;
	if (send(fd, r, r->h.nlmsg_len, 0) < 0)
		die(what);
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		die(what);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (unsigned)n) || h->nlmsg_type != NLMSG_ERROR) {
		fprintf(stderr, "netprobe: %s: unexpected netlink answer\n", what);
		exit(2);
	}
	int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	if (e) {
		errno = -e;
		die(what);
	}
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		die("netlink socket");
	return fd;
}

static void link_up(int nl, int ifindex, const char *what)
{
	struct nlreq r = {0};
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	nl_talk(nl, &r, what);
}

static int floor_main(int port, const char *brns, const char *bridge, const char *veth,
		      const char *cidr, const char *mac, const char *ready)
{
	int bfd = open(brns, O_RDONLY | O_CLOEXEC);
	if (bfd < 0 || setns(bfd, CLONE_NEWNET) < 0)
		die(brns);
	close(bfd);
	int outer = nl_open();
	int master = (int)if_nametoindex(bridge);
	if (!master)
		die(bridge);
	if (unshare(CLONE_NEWNET) < 0)
		die("unshare(CLONE_NEWNET)");
	int nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		die("/proc/self/ns/net");
	int inner = nl_open();

	/* the veth pair: VETH up in BRIDGE, eth0 born in the new namespace */
	struct nlreq r = {0};
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	nla_put(&r, IFLA_IFNAME, veth, strlen(veth) + 1);
	nla_put(&r, IFLA_MASTER, &master, sizeof(master));
	struct rtattr *li = nla_nest(&r, IFLA_LINKINFO);
	nla_put(&r, IFLA_INFO_KIND, "veth", 4);
	struct rtattr *data = nla_nest(&r, IFLA_INFO_DATA);
	struct rtattr *peer = nla_nest(&r, VETH_INFO_PEER);
	r.h.nlmsg_len += (unsigned)NLMSG_ALIGN(sizeof(struct ifinfomsg));
	nla_put(&r, IFLA_IFNAME, "eth0", 5);
	if (mac) {
		unsigned char m[6];
		unsigned v[6];
		if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
			usage();
		for (int i = 0; i < 6; i++)
			m[i] = (unsigned char)v[i];
		nla_put(&r, IFLA_ADDRESS, m, 6);
	}
	nla_put(&r, IFLA_NET_NS_FD, &nsfd, sizeof(nsfd));
	nla_end(&r, peer);
	nla_end(&r, data);
	nla_end(&r, li);
	nl_talk(outer, &r, "make the veth pair");
	close(outer);
	close(nsfd);

	/* inside: lo and eth0 up, the address */
	link_up(inner, 1, "lo up");
	int eth0 = (int)if_nametoindex("eth0");
	if (!eth0)
		die("eth0");
	link_up(inner, eth0, "eth0 up");
	char ip[64];
	snprintf(ip, sizeof(ip), "%s", cidr);
	char *slash = strchr(ip, '/');
	if (!slash)
		usage();
	*slash = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1)
		usage();
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_NEWADDR;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct ifaddrmsg *ifa = NLMSG_DATA(&r.h);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)atoi(slash + 1);
	ifa->ifa_index = (unsigned)eth0;
	nla_put(&r, IFA_LOCAL, &a, 4);
	nla_put(&r, IFA_ADDRESS, &a, 4);
	nl_talk(inner, &r, "add the address");
	close(inner);
	serve(port, ready);
}

/* ---- waitconn -------------------------------------------------------------- */

#define INFLIGHT 16

static int waitconn(const char *host, int port, long interval_us, double timeout_s,
		    int want_banner)
{
	int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
	int64_t resolved = 0, iv_ns = interval_us * 1000;
	long attempts = 0;
	struct in_addr a;
	int fds[INFLIGHT];
	int nfl = 0;
	printf("trying %lld\n", (long long)start);
	fflush(stdout);
	struct timespec iv = {interval_us / 1000000, (interval_us % 1000000) * 1000};
	while (now_ns() < deadline) {
		if (!resolved) {
			if (lookup(host, &a))
				resolved = now_ns();
			else {
				nanosleep(&iv, NULL);
				continue;
			}
		}
		/* a new attempt every interval (not sooner, also when refused) */
		int64_t next = now_ns() + iv_ns;
		if (nfl == INFLIGHT) {
			close(fds[0]);
			memmove(fds, fds + 1, sizeof(int) * (INFLIGHT - 1));
			nfl--;
		}
		int fd = tcp_socket(1);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = a};
		attempts++;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)
			fds[nfl++] = fd; /* at once (loopback): reported ready below */
		else
			close(fd);
		int winner = -1;
		int64_t t = 0;
		for (int64_t left; winner < 0 && nfl > 0 && (left = next - now_ns()) > 0;) {
			struct pollfd p[INFLIGHT];
			for (int i = 0; i < nfl; i++)
				p[i] = (struct pollfd){.fd = fds[i], .events = POLLOUT};
			struct timespec ts = {left / 1000000000, left % 1000000000};
			int n = ppoll(p, (nfds_t)nfl, &ts, NULL);
			t = now_ns();
			if (n <= 0)
				break;
			for (int i = 0; i < nfl; i++) {
				if (!p[i].revents)
					continue;
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el);
				if (err == 0 && winner < 0 && (p[i].revents & POLLOUT))
					winner = fds[i];
				else
					close(fds[i]), fds[i] = -1;
			}
			int k = 0;
			for (int i = 0; i < nfl; i++)
				if (fds[i] >= 0 && fds[i] != winner)
					fds[k++] = fds[i];
			nfl = k;
		}
		if (winner < 0) {
			int64_t left = next - now_ns();
			if (left > 0) {
				struct timespec ts = {left / 1000000000, left % 1000000000};
				nanosleep(&ts, NULL);
			}
			continue;
		}
		printf("connected %lld resolved %lld attempts %ld\n", (long long)t,
		       (long long)resolved, attempts);
		fflush(stdout);
		for (int i = 0; i < nfl; i++)
			close(fds[i]);
		if (!want_banner)
			return 0;
		int fl = fcntl(winner, F_GETFL);
		fcntl(winner, F_SETFL, fl & ~O_NONBLOCK);
		struct timeval tv = {2, 0};
		setsockopt(winner, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char b[256];
		if (read_banner(winner, b, sizeof(b)) < 0) {
			printf("badbanner\n");
			return 1;
		}
		printf("banner %s\n", b);
		return 0;
	}
	printf("timeout resolved %lld attempts %ld\n", (long long)resolved, attempts);
	return 1;
}

/* ---- send, pingpong --------------------------------------------------------- */

static int send_main(const char *host, int port, int64_t bytes, int64_t chunk)
{
	int fd = connect_blocking(host, port, 120);
	char *buf = malloc((size_t)chunk);
	if (!buf)
		die("malloc");
	memset(buf, 0x5a, (size_t)chunk);
	if (full_write(fd, "S", 1) < 0)
		die("send S");
	int64_t t0 = now_ns();
	for (int64_t left = bytes; left > 0;) {
		size_t n = (size_t)(left < chunk ? left : chunk);
		if (full_write(fd, buf, n) < 0)
			die("write");
		left -= (int64_t)n;
	}
	shutdown(fd, SHUT_WR);
	unsigned char le[8];
	if (full_read(fd, le, 8) < 0)
		die("read the count");
	int64_t t1 = now_ns();
	uint64_t got = 0;
	for (int i = 0; i < 8; i++)
		got |= (uint64_t)le[i] << (8 * i);
	if (got != (uint64_t)bytes) {
		fprintf(stderr, "netprobe: the server got %llu bytes of %lld\n",
			(unsigned long long)got, (long long)bytes);
		return 1;
	}
	printf("sent %lld ns %lld MBps %.1f\n", (long long)bytes, (long long)(t1 - t0),
	       bytes / ((t1 - t0) / 1e9) / 1e6);
	return 0;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void rtt_print(const char *tag, int64_t *rtt, long count)
{
	double sum = 0;
	for (long i = 0; i < count; i++)
		sum += (double)rtt[i];
	qsort(rtt, (size_t)count, sizeof(int64_t), cmp64);
#define Q(p) (rtt[(long)((count - 1) * (p))] / 1e3)
	printf("%s n %ld mean_us %.2f p1 %.2f p10 %.2f p50 %.2f p90 %.2f p99 %.2f p999 %.2f "
	       "max %.2f\n", tag, count, sum / count / 1e3, Q(0.01), Q(0.10), Q(0.50), Q(0.90),
	       Q(0.99), Q(0.999), rtt[count - 1] / 1e3);
#undef Q
}

/* One timed round trip of one byte on fd, in ns. */
static int64_t round_trip(int fd)
{
	char x = 'x';
	int64_t t0 = now_ns();
	if (send(fd, &x, 1, MSG_NOSIGNAL) != 1 || full_read(fd, &x, 1) < 0)
		die("ping-pong");
	return now_ns() - t0;
}

static int pingpong(const char *host, int port, long count, long warmup, int alt, long block)
{
	int fd[2] = {connect_blocking(host, port, 30), alt};
	int n = alt >= 0 ? 2 : 1, one = 1;
	int64_t *rtt[2];
	for (int j = 0; j < n; j++) {
		setsockopt(fd[j], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (full_write(fd[j], "P", 1) < 0)
			die("send P");
		if (!(rtt[j] = malloc(sizeof(int64_t) * (size_t)count)))
			die("malloc");
	}
	if (n == 1)
		block = count + warmup;
	for (long i = -warmup; i < count;) {
		long end = i + block < count ? i + block : count;
		for (int j = 0; j < n; j++)
			for (long k = i; k < end; k++) {
				int64_t t = round_trip(fd[j]);
				if (k >= 0)
					rtt[j][k] = t;
			}
		i = end;
	}
	for (int j = 0; j < n; j++) {
		close(fd[j]);
		rtt_print(j ? "rtt2" : "rtt", rtt[j], count);
	}
	return 0;
}

/* connexec: a connection made here, handed to CMD as its standard input. */
static int connexec(const char *host, int port, char **cmd)
{
	int fd = connect_blocking(host, port, 30);
	if (dup2(fd, 0) < 0)
		die("dup2");
	/* CMD runs where netprobe was started; only the connection is from -N's */
	if (home_ns >= 0 && setns(home_ns, CLONE_NEWNET) < 0)
		die("setns back");
	execvp(cmd[0], cmd);
	die(cmd[0]);
	return 2;
}

/* ---- multi: connect to many names --------------------------------------------- */

struct target {
	const char *name;
	struct in_addr a;
	int found, fd, tries, done, ok;
	int64_t t0;
	char why[96];
	size_t blen;
	char banner[128];
};

static void multi_start(struct target *t, int port)
{
	t->fd = tcp_socket(1);
	t->tries++;
	t->t0 = now_ns();
	t->blen = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = t->a};
	if (connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		snprintf(t->why, sizeof(t->why), "connect: %s", strerror(errno));
		close(t->fd);
		t->fd = -1;
	}
}

#define MAXPAR 256

static int multi(int port, char **names, int n, int par, long timeout_ms)
{
	struct target *t = calloc((size_t)n, sizeof(*t));
	static int act[MAXPAR];
	static struct pollfd p[MAXPAR];
	if (!t)
		die("calloc");
	if (par > MAXPAR)
		par = MAXPAR;
	/* /etc/hosts once, every name */
	for (int i = 0; i < n; i++) {
		t[i].name = names[i];
		t[i].fd = -1;
		t[i].found = lookup(names[i], &t[i].a);
		if (!t[i].found)
			snprintf(t[i].why, sizeof(t[i].why), "not in /etc/hosts");
	}
	int next = 0, nact = 0, ok = 0;
	for (;;) {
		while (nact < par && next < n) {
			if (t[next].found) {
				multi_start(&t[next], port);
				act[nact++] = next;
			}
			next++;
		}
		if (nact == 0)
			break;
		/* a failed try is tried again, three tries in all */
		for (int j = 0; j < nact; j++) {
			struct target *x = &t[act[j]];
			if (x->fd < 0 && x->tries < 3)
				multi_start(x, port);
			if (x->fd < 0) {
				act[j--] = act[--nact];
				continue;
			}
			p[j] = (struct pollfd){.fd = x->fd, .events = POLLIN};
		}
		if (nact <= 0 || nact > MAXPAR)
			continue;
		poll(p, (nfds_t)nact, 10);
		int64_t now = now_ns();
		for (int j = nact - 1; j >= 0; j--) {
			struct target *x = &t[act[j]];
			if (p[j].revents) {
				ssize_t r = read(x->fd, x->banner + x->blen, sizeof(x->banner) - 1 - x->blen);
				if (r > 0) {
					x->blen += (size_t)r;
					x->banner[x->blen] = 0;
					char *nl = strchr(x->banner, '\n');
					if (!nl && x->blen < sizeof(x->banner) - 1)
						continue;
					if (nl)
						*nl = 0;
					char want[160];
					snprintf(want, sizeof(want), "netprobe %s", x->name);
					x->ok = strcmp(x->banner, want) == 0;
					if (!x->ok)
						snprintf(x->why, sizeof(x->why), "banner '%.60s'", x->banner);
					ok += x->ok;
					x->t0 = now - x->t0;
					close(x->fd);
					x->fd = -1;
					act[j] = act[--nact];
					continue;
				}
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				snprintf(x->why, sizeof(x->why), "%s (try %d)",
					 r == 0 ? "closed" : strerror(err ? err : errno), x->tries);
				close(x->fd);
				x->fd = -1;
			} else if (now - x->t0 > timeout_ms * 1000000LL) {
				snprintf(x->why, sizeof(x->why), "timeout after %ld ms (try %d)",
					 timeout_ms, x->tries);
				close(x->fd);
				x->fd = -1;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		char ip[32] = "-";
		if (t[i].found)
			inet_ntop(AF_INET, &t[i].a, ip, sizeof(ip));
		if (t[i].ok)
			printf("ok %s %s %.0f\n", t[i].name, ip, t[i].t0 / 1e3);
		else
			printf("fail %s %s %s\n", t[i].name, ip, t[i].why);
	}
	printf("total %d %d\n", ok, n);
	return ok == n ? 0 : 1;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int i = 1;
	if (i + 1 < argc && strcmp(argv[i], "-N") == 0) {
		home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		int fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			die(argv[i + 1]);
		close(fd);
		i += 2;
	}
	if (i >= argc)
		usage();
	const char *cmd = argv[i++];
	/* positional arguments, then options (any order after the subcommand) */
	char *pos[4096];
	int npos = 0;
	const char *ready = NULL, *brns = NULL, *bridge = NULL, *veth = NULL, *cidr = NULL,
		   *mac = NULL, *expect = "banner";
	long interval = 100, warmup = 1000, par = 8, tmo_ms = 3000, alt = -1, block = 100;
	double timeout = 10;
	int64_t chunk = 1 << 20;
	for (; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--") == 0) {
			/* the rest is positional: connexec's command */
			for (i++; i < argc && npos < (int)(sizeof(pos) / sizeof(pos[0])); i++)
				pos[npos++] = argv[i];
			break;
		}
		if (o[0] == '-' && o[1] && o[2] == 0 && strchr("drBbvamitTecwjCAk", o[1])) {
			if (!v)
				usage();
			i++;
			switch (o[1]) {
			case 'd': dev = v; break;
			case 'r': ready = v; break;
			case 'B': brns = v; break;
			case 'b': bridge = v; break;
			case 'v': veth = v; break;
			case 'a': cidr = v; break;
			case 'm': mac = v; break;
			case 'i': interval = atol(v); break;
			case 't': timeout = atof(v); break;
			case 'T': tmo_ms = atol(v); break;
			case 'e': expect = v; break;
			case 'c': chunk = parse_size(v); break;
			case 'w': warmup = atol(v); break;
			case 'j': par = atol(v); break;
			case 'A': alt = atol(v); break;
			case 'k': block = atol(v); break;
			case 'C': {
				cpu_set_t set;
				CPU_ZERO(&set);
				CPU_SET(atoi(v), &set);
				if (sched_setaffinity(0, sizeof(set), &set) < 0)
					die("sched_setaffinity");
				break;
			}
			}
		} else if (npos < (int)(sizeof(pos) / sizeof(pos[0]))) {
			pos[npos++] = argv[i];
		} else {
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "serve") == 0 && npos == 1)
		serve(atoi(pos[0]), ready);
	if (strcmp(cmd, "floor") == 0 && npos == 1 && brns && bridge && veth && cidr)
		return floor_main(atoi(pos[0]), brns, bridge, veth, cidr, mac, ready);
	if (strcmp(cmd, "waitconn") == 0 && npos == 2)
		return waitconn(pos[0], atoi(pos[1]), interval, timeout, strcmp(expect, "none") != 0);
	if (strcmp(cmd, "send") == 0 && npos == 3 && chunk > 0)
		return send_main(pos[0], atoi(pos[1]), parse_size(pos[2]), chunk);
	if (strcmp(cmd, "pingpong") == 0 && npos == 3 && atol(pos[2]) > 0 && block > 0)
		return pingpong(pos[0], atoi(pos[1]), atol(pos[2]), warmup, (int)alt, block);
	if (strcmp(cmd, "connexec") == 0 && npos >= 3)
		return connexec(pos[0], atoi(pos[1]), pos + 2);
	if (strcmp(cmd, "multi") == 0 && npos >= 2 && par > 0)
		return multi(atoi(pos[0]), pos + 1, npos - 1, (int)par, tmo_ms);
	usage();
}
