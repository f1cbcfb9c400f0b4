/*
 * nettest — drive src/net against real network namespaces, for the system
 * tests (tests/system/test_net.py) and the attach benchmark, until domains
 * are wired to LANs.  A "domain" here is a holder process in namespaces of
 * its own; probes run in children that join its namespaces, so no `ip netns`
 * state is made and nothing outlives the holder.
 *
 *   nettest tag ROOT                      the store's interface/table tag
 *   nettest holder                        new net+mount namespaces; prints
 *                                         its pid, then obeys stdin lines:
 *                                         "bind HOSTS DIR" (HOSTS and
 *                                         DIR/resolv.conf over /etc's);
 *                                         exits at end of input
 *   nettest plan ROOT DOMAIN LAN[,LAN..] [PORTFWD...]
 *   nettest attach ROOT DOMAIN PID RUNDIR [--prepare]
 *                                         prints how long the attach took
 *   nettest rates ROOT DOMAIN IN OUT      bandwidth limits, bytes/s
 *   nettest detach|forget ROOT DOMAIN
 *   nettest hosts ROOT DOMAIN             the hosts file of its LANs
 *   nettest cleanup ROOT
 *   nettest fast ROOT LAN                 the LAN's fast path entries, one
 *                                         a line ("none": no fast path)
 *   nettest nft CMDS                      run nft commands, print the output
 *   nettest in PID PROBE ARGS...          run a probe in PID's namespaces:
 *       ping [-6] HOST                    one ICMP echo, 1 s to answer
 *       connect [-6] HOST PORT [--src ADDR] [--dev IF] [--udp] [--no-read]
 *                                         print what the server says (or
 *                                         only connect)
 *       serve PORT TOKEN [--udp]          answer TOKEN to everyone (v4+v6;
 *                                         TOKEN "peer": their address);
 *                                         UDP: print "from ADDR" for each
 *                                         datagram
 *       blast HOST PORT BYTES             send BYTES over TCP to a drain
 *                                         server, print the seconds taken
 *       drain PORT                        take everything, answer "done"
 *       setmac IF MAC                     change a link's MAC
 *       arp IF SENDER_IP TARGET_IP        broadcast an ARP request that says
 *                                         SENDER_IP is at IF's MAC
 *       watch IF PORT SECONDS             print "seen tcp|udp SRC" for every
 *                                         IPv4/IPv6 TCP or UDP packet to
 *                                         PORT that IF receives
 *       arpwatch IF SECONDS [UNTIL_IP]    print "arp IP MAC" for every ARP
 *                                         sender heard on IF; done early
 *                                         once UNTIL_IP is heard
 *       exec CMD ARGS...                  anything else
 *   nettest bench ROOT N                  median of N attaches (ms)
 *
 * Exit status: 0 ok, 1 failed (message on stderr), 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/lib/util.h"
#include "../../src/net/net.h"
#include "../../src/net/netInt.h"

static int fail(mz_error_t *err)
{
	fprintf(stderr, "nettest: %s\n", err && *err ? (*err)->msg : strerror(errno));
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: see the top of tests/helpers/nettest.c\n");
	return 2;
}

static mz_store *open_store(const char *root)
{
	mz_store *s;
	mz_error_t err = NULL;
	if (mz_store_open(root, &s, &err) < 0) {
		fail(&err);
		exit(1);
	}
	return s;
}

/* ---- holder ---------------------------------------------------------- */

static int lo_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	int r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	close(fd);
	return r;
}

static int holder(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || lo_up() < 0) {
		perror("nettest holder");
		return 1;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	char line[4096];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "bind ", 5) == 0) {
			char a[4200], b[4200];
			char *dir = strchr(line + 5, ' ');
			if (dir == NULL) {
				printf("bind HOSTS DIR\n");
				fflush(stdout);
				continue;
			}
			*dir++ = '\0';
			snprintf(a, sizeof(a), "%s", line + 5);
			snprintf(b, sizeof(b), "%s/resolv.conf", dir);
			int ok = mount(a, "/etc/hosts", NULL, MS_BIND, NULL) == 0 &&
				 mount(NULL, "/etc/hosts", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0 &&
				 mount(b, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0;
			printf("%s\n", ok ? "ok" : strerror(errno));
		} else {
			printf("unknown command\n");
		}
		fflush(stdout);
	}
	return 0;
}

static int ns_open(pid_t pid, const char *ns)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, ns);
	return open(p, O_RDONLY | O_CLOEXEC);
}

/* ---- probes ------------------------------------------------------------ */

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int resolve(const char *host, int family, struct sockaddr_storage *out, socklen_t *len)
{
	struct addrinfo hints = {.ai_family = family}, *ai = NULL;
	int r = getaddrinfo(host, NULL, &hints, &ai);
	if (r != 0 || ai == NULL) {
		fprintf(stderr, "nettest: cannot resolve %s: %s\n", host, gai_strerror(r));
		return -1;
	}
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static uint16_t csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)(b[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

static int probe_ping(int argc, char **argv)
{
	int family = AF_INET;
	int i = 0;
	if (i < argc && strcmp(argv[i], "-6") == 0) {
		family = AF_INET6;
		i++;
	}
	if (i >= argc)
		return usage();
	struct sockaddr_storage to;
	socklen_t tolen;
	if (resolve(argv[i], family, &to, &tolen) < 0)
		return 1;
	int fd = family == AF_INET ? socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
				   : socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	if (fd < 0)
		return perror("socket"), 1;
	uint16_t id = (uint16_t)getpid();
	uint8_t pkt[64] = {0};
	if (family == AF_INET) {
		struct icmphdr *h = (struct icmphdr *)pkt;
		h->type = ICMP_ECHO;
		h->un.echo.id = htons(id);
		h->un.echo.sequence = htons(1);
		h->checksum = csum(pkt, sizeof(pkt));
	} else {
		struct icmp6_hdr *h = (struct icmp6_hdr *)pkt;
		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_id = htons(id);
		h->icmp6_seq = htons(1); /* the kernel sums ICMPv6 raw sockets */
	}
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, tolen) < 0)
		return perror("sendto"), 1;
	double end = now_ms() + 1000;
	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now_ms()) + 1) <= 0)
			break;
		uint8_t buf[1500];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			continue;
		if (family == AF_INET) {
			struct iphdr *ip = (struct iphdr *)buf;
			struct icmphdr *h = (struct icmphdr *)(buf + ip->ihl * 4);
			if (n >= ip->ihl * 4 + 8 && h->type == ICMP_ECHOREPLY && ntohs(h->un.echo.id) == id)
				return printf("reply\n"), 0;
		} else {
			struct icmp6_hdr *h = (struct icmp6_hdr *)buf;
			if (n >= 8 && h->icmp6_type == ICMP6_ECHO_REPLY && ntohs(h->icmp6_id) == id)
				return printf("reply\n"), 0;
		}
	}
	printf("timeout\n");
	return 1;
}

static void set_port(struct sockaddr_storage *a, int port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

static int probe_connect(int argc, char **argv)
{
	int family = AF_INET, i = 0, type = SOCK_STREAM;
	const char *src = NULL, *dev = NULL;
	bool read_reply = true;
	if (i < argc && strcmp(argv[i], "-6") == 0) {
		family = AF_INET6;
		i++;
	}
	if (i + 2 > argc)
		return usage();
	const char *host = argv[i], *port = argv[i + 1];
	for (i += 2; i < argc; i++) {
		if (strcmp(argv[i], "--src") == 0 && i + 1 < argc)
			src = argv[++i];
		else if (strcmp(argv[i], "--dev") == 0 && i + 1 < argc)
			dev = argv[++i];
		else if (strcmp(argv[i], "--udp") == 0)
			type = SOCK_DGRAM;
		else if (strcmp(argv[i], "--no-read") == 0)
			read_reply = false;
		else
			return usage();
	}
	struct sockaddr_storage to;
	socklen_t tolen;
	if (resolve(host, family, &to, &tolen) < 0)
		return 1;
	set_port(&to, atoi(port));
	int fd = socket(to.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perror("socket"), 1;
	int one = 1;
	if (dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev)) < 0)
		return perror("SO_BINDTODEVICE"), 1;
	if (src) {
		/* any source, configured or not: this is how a domain lies */
		struct sockaddr_storage from;
		socklen_t fromlen;
		if (resolve(src, to.ss_family, &from, &fromlen) < 0)
			return 1;
		int lvl = to.ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
		setsockopt(fd, lvl, to.ss_family == AF_INET ? IP_FREEBIND : IPV6_FREEBIND, &one,
			   sizeof(one));
		setsockopt(fd, lvl, to.ss_family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT,
			   &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&from, fromlen) < 0)
			return perror("bind"), 1;
	}
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&to, tolen) < 0) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	if (type == SOCK_DGRAM && send(fd, "?", 1, 0) < 0) {
		printf("send: %s\n", strerror(errno));
		return 1;
	}
	if (!read_reply) {
		printf("%s\n", type == SOCK_DGRAM ? "sent" : "connected");
		return 0;
	}
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		printf("recv: %s\n", strerror(errno));
		return 1;
	}
	buf[n] = '\0';
	printf("%s\n", buf);
	return 0;
}

static int probe_serve(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	bool udp = argc > 2 && strcmp(argv[2], "--udp") == 0;
	int fd = socket(AF_INET6, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int zero = 0, one = 1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(argv[0]))};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (!udp && listen(fd, 64) < 0))
		return perror("serve"), 1;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		if (udp) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			char b[64];
			if (recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl) < 0)
				continue;
			/* who it came from, for the tests of spoofed sources */
			char txt[INET6_ADDRSTRLEN] = "?";
			struct sockaddr_in6 *f6 = (struct sockaddr_in6 *)&from;
			inet_ntop(AF_INET6, &f6->sin6_addr, txt, sizeof(txt));
			printf("from %s\n", strncmp(txt, "::ffff:", 7) == 0 ? txt + 7 : txt);
			fflush(stdout);
			sendto(fd, argv[1], strlen(argv[1]), 0, (struct sockaddr *)&from, fl);
			continue;
		}
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int c = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		/* "peer": answer with the address the connection came from */
		char txt[INET6_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, txt, sizeof(txt));
		const char *say = strcmp(argv[1], "peer") != 0 ? argv[1]
				  : strncmp(txt, "::ffff:", 7) == 0 ? txt + 7 : txt;
		if (write(c, say, strlen(say)) < 0)
			perror("write");
		close(c);
	}
}

static int probe_blast(int argc, char **argv)
{
	if (argc != 3)
		return usage();
	struct sockaddr_storage to;
	socklen_t tolen;
	if (resolve(argv[0], AF_INET, &to, &tolen) < 0)
		return 1;
	set_port(&to, atoi(argv[1]));
	long total = atol(argv[2]);
	int fd = socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 60};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&to, tolen) < 0)
		return perror("blast: connect"), 1;
	static char buf[65536];
	double t0 = now_ms();
	for (long sent = 0; sent < total;) {
		size_t k = total - sent > (long)sizeof(buf) ? sizeof(buf) : (size_t)(total - sent);
		ssize_t w = write(fd, buf, k);
		if (w <= 0)
			return perror("blast: write"), 1;
		sent += w;
	}
	shutdown(fd, SHUT_WR);
	char reply[16] = "";
	if (read(fd, reply, sizeof(reply) - 1) <= 0)
		return perror("blast: read"), 1;
	printf("%.3f\n", (now_ms() - t0) / 1000);
	return 0;
}

static int probe_drain(int argc, char **argv)
{
	if (argc != 1)
		return usage();
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[0]))};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0)
		return perror("drain"), 1;
	printf("listening\n");
	fflush(stdout);
	static char buf[65536];
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		while (read(c, buf, sizeof(buf)) > 0)
			;
		if (write(c, "done", 4) < 0)
			perror("drain: write");
		close(c);
	}
}

static int probe_setmac(int argc, char **argv)
{
	if (argc != 2)
		return usage();
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[0]);
	unsigned m[6];
	if (sscanf(argv[1], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return usage();
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	for (int i = 0; i < 6; i++)
		ifr.ifr_hwaddr.sa_data[i] = (char)m[i];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ioctl(fd, SIOCSIFHWADDR, &ifr) < 0)
		return perror("SIOCSIFHWADDR"), 1;
	return 0;
}

struct arp_frame {
	uint8_t dst[6], src[6];
	uint16_t type;
	struct arphdr h;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

static int packet_socket(const char *ifname, struct sockaddr_ll *ll)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
	memset(ll, 0, sizeof(*ll));
	ll->sll_family = AF_PACKET;
	ll->sll_protocol = htons(ETH_P_ARP);
	ll->sll_ifindex = (int)if_nametoindex(ifname);
	if (fd < 0 || ll->sll_ifindex == 0 || bind(fd, (struct sockaddr *)ll, sizeof(*ll)) < 0)
		return -1;
	return fd;
}

static int probe_arp(int argc, char **argv)
{
	if (argc != 3)
		return usage();
	struct sockaddr_ll ll;
	int fd = packet_socket(argv[0], &ll);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[0]);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return perror("arp"), 1;
	struct arp_frame f;
	memset(&f, 0, sizeof(f));
	memset(f.dst, 0xff, 6);
	memcpy(f.src, ifr.ifr_hwaddr.sa_data, 6);
	f.type = htons(ETH_P_ARP);
	f.h.ar_hrd = htons(ARPHRD_ETHER);
	f.h.ar_pro = htons(ETH_P_IP);
	f.h.ar_hln = 6;
	f.h.ar_pln = 4;
	f.h.ar_op = htons(ARPOP_REQUEST);
	memcpy(f.sha, f.src, 6);
	if (inet_pton(AF_INET, argv[1], f.spa) != 1 || inet_pton(AF_INET, argv[2], f.tpa) != 1)
		return usage();
	memset(ll.sll_addr, 0xff, 6);
	ll.sll_halen = 6;
	if (sendto(fd, &f, sizeof(f), 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return perror("arp: sendto"), 1;
	return 0;
}

static int probe_arpwatch(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return usage();
	struct sockaddr_ll ll;
	int fd = packet_socket(argv[0], &ll);
	if (fd < 0)
		return perror("arpwatch"), 1;
	printf("watching\n");
	fflush(stdout);
	double end = now_ms() + atof(argv[1]) * 1000;
	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now_ms()) + 1) <= 0)
			continue;
		struct arp_frame f;
		if (recv(fd, &f, sizeof(f), 0) < (ssize_t)sizeof(f))
			continue;
		char ip[16];
		inet_ntop(AF_INET, f.spa, ip, sizeof(ip));
		printf("arp %s %02x:%02x:%02x:%02x:%02x:%02x\n", ip, f.sha[0], f.sha[1], f.sha[2],
		       f.sha[3], f.sha[4], f.sha[5]);
		fflush(stdout);
		if (argc == 3 && strcmp(ip, argv[2]) == 0)
			break;
	}
	return 0;
}

/* Whatever reaches the interface, before any socket or firewall of the
 * receiver could drop it: "did the frame arrive" for spoofing tests. */
static int probe_watch(int argc, char **argv)
{
	if (argc != 3)
		return usage();
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				 .sll_ifindex = (int)if_nametoindex(argv[0])};
	if (fd < 0 || ll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return perror("watch"), 1;
	int port = atoi(argv[1]);
	printf("watching\n");
	fflush(stdout);
	double end = now_ms() + atof(argv[2]) * 1000;
	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now_ms()) + 1) <= 0)
			continue;
		uint8_t b[256];
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, b, sizeof(b), MSG_TRUNC, (struct sockaddr *)&from, &fl);
		if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		char src[64] = "";
		int proto = -1;
		const uint8_t *l4 = NULL;
		size_t got = (size_t)n < sizeof(b) ? (size_t)n : sizeof(b);
		if (ntohs(from.sll_protocol) == ETH_P_IP && got >= 24 && (b[0] >> 4) == 4) {
			proto = b[9];
			inet_ntop(AF_INET, b + 12, src, sizeof(src));
			l4 = b + (b[0] & 15) * 4;
		} else if (ntohs(from.sll_protocol) == ETH_P_IPV6 && got >= 44) {
			proto = b[6];
			inet_ntop(AF_INET6, b + 8, src, sizeof(src));
			l4 = b + 40;
		}
		if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || l4 + 4 > b + got ||
		    (l4[2] << 8 | l4[3]) != port)
			continue;
		printf("seen %s %s\n", proto == IPPROTO_TCP ? "tcp" : "udp", src);
		fflush(stdout);
	}
	return 0;
}

static int in_ns(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	pid_t pid = atoi(argv[0]);
	int net = ns_open(pid, "net"), mnt = ns_open(pid, "mnt");
	if (net < 0 || mnt < 0 || setns(net, CLONE_NEWNET) < 0 || setns(mnt, CLONE_NEWNS) < 0) {
		perror("nettest in: setns");
		return 1;
	}
	const char *p = argv[1];
	argc -= 2;
	argv += 2;
	if (strcmp(p, "ping") == 0)
		return probe_ping(argc, argv);
	if (strcmp(p, "connect") == 0)
		return probe_connect(argc, argv);
	if (strcmp(p, "serve") == 0)
		return probe_serve(argc, argv);
	if (strcmp(p, "setmac") == 0)
		return probe_setmac(argc, argv);
	if (strcmp(p, "blast") == 0)
		return probe_blast(argc, argv);
	if (strcmp(p, "drain") == 0)
		return probe_drain(argc, argv);
	if (strcmp(p, "arp") == 0)
		return probe_arp(argc, argv);
	if (strcmp(p, "arpwatch") == 0)
		return probe_arpwatch(argc, argv);
	if (strcmp(p, "watch") == 0)
		return probe_watch(argc, argv);
	if (strcmp(p, "exec") == 0 && argc > 0) {
		execvp(argv[0], argv);
		perror("exec");
		return 1;
	}
	return usage();
}

/* ---- the API ------------------------------------------------------------ */

static int plan(const char *root, const char *domain, char *lanlist, char **fwd, int nfwd)
{
	cleanup_store mz_store *s = open_store(root);
	const char *lans[MZ_NET_MAX_NICS + 2];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(lanlist, ",", &save); t && n < ARRAY_SIZE(lans);
	     t = strtok_r(NULL, ",", &save))
		lans[n++] = t;
	struct mz_port_fwd ports[16];
	mz_error_t err = NULL;
	for (int i = 0; i < nfwd && i < 16; i++)
		if (mz_port_fwd_parse(fwd[i], &ports[i], &err) < 0)
			return fail(&err);
	if (mz_net_plan(s, domain, lans, n, ports, (size_t)(nfwd < 16 ? nfwd : 16), &err) < 0)
		return fail(&err);
	return 0;
}

static int attach(const char *root, const char *domain, pid_t pid, const char *rundir,
		  bool prepare)
{
	cleanup_store mz_store *s = open_store(root);
	mz_error_t err = NULL;
	cleanup_close int fd = ns_open(pid, "net");
	if (fd < 0 || mkdir_p(rundir, 0755) < 0)
		return fail(NULL);
	if (prepare)
		mz_net_prepare(s);
	double t0 = now_ms();
	if (mz_net_attach(s, domain, fd, rundir, &err) < 0)
		return fail(&err);
	printf("%.3f\n", now_ms() - t0);
	mz_net_refresh_hosts(s, domain); /* as the supervisor does, once it runs */
	return 0;
}

/* Run this program with args (posix_spawn: no fork, so no copy-on-write
 * of the caller's warm memory to fault in again afterwards); *in and *out
 * get pipes to its stdin and from its stdout. */
static pid_t self_spawn(char *const *args, int *in, int *out)
{
	int pi[2], po[2];
	if (pipe2(pi, O_CLOEXEC) < 0 || pipe2(po, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pi[0], 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	pid_t pid;
	extern char **environ;
	int r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pi[0]);
	close(po[1]);
	if (r != 0)
		return -1;
	*in = pi[1];
	*out = po[0];
	return pid;
}

/* A holder (network and mount namespaces of its own) until *release is
 * closed; returns its pid once the namespace is there. */
static pid_t netns_child(int *release)
{
	char *args[] = {"nettest", "holder", NULL};
	int out;
	pid_t c = self_spawn(args, release, &out);
	if (c < 0)
		return -1;
	char buf[32] = "";
	ssize_t n = read(out, buf, sizeof(buf) - 1);
	close(out);
	return n > 0 ? c : -1;
}

/* One attach timed, in this process (mode 'w', 'r') or in a new one, as a
 * supervisor does it: without ('c') or after ('p') mz_net_prepare. */
static double attach_timed(mz_store *s, const char *root, const char *dom, pid_t ns,
			   const char *rundir, char mode)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)ns);
	mz_error_t err = NULL;
	if (mode == 'w' || mode == 'r') {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		double t0 = now_ms();
		int r = mz_net_attach(s, dom, fd, rundir, &err);
		double t = now_ms() - t0;
		if (r == 0)
			mz_net_refresh_hosts(s, dom);
		close(fd);
		return r < 0 ? (fail(&err), -1) : t;
	}
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)ns);
	char *args[] = {"nettest", "attach", (char *)root, (char *)dom, pid, (char *)rundir,
			mode == 'p' ? "--prepare" : NULL, NULL};
	int in, out;
	pid_t c = self_spawn(args, &in, &out);
	if (c < 0)
		return -1;
	close(in);
	char buf[64] = "";
	ssize_t n = read(out, buf, sizeof(buf) - 1);
	close(out);
	int st;
	waitpid(c, &st, 0);
	return n > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? atof(buf) : -1;
}

/* Until the domain's veths are gone (the kernel destroys a dead
 * namespace's devices asynchronously). */
static void wait_veths_gone(mz_store *s, const char *domain)
{
	struct mz_lease_rec *v = NULL;
	size_t n = 0;
	if (mz_lease_list(s, domain, 0, &v, &n, NULL) < 0)
		return;
	for (int tries = 0; tries < 5000; tries++) {
		bool any = false;
		for (size_t i = 0; i < n && !any; i++)
			for (const char *k = MZ_NET_VETH_VARIANTS; *k && !any; k++) {
				char name[16];
				mz_net_veth_name(s, v[i].id, *k, name);
				any = mz_net_link_exists(name);
			}
		if (!any)
			break;
		usleep(200);
	}
	mz_lease_recs_free(v, n);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* N attaches of one planned domain to N fresh namespaces, per mode; each
 * followed by a detach and the namespace's end (not timed). */
static int bench(const char *root, int n)
{
	cleanup_store mz_store *s = open_store(root);
	mz_error_t err = NULL;
	const char *lan = "bench";
	struct mz_lan_opts o = {.nat = true};
	struct mz_lan_rec rec;
	if ((mz_lan_rec_get(s, lan, &rec, NULL) < 0 &&
	     mz_net_lan_create(s, lan, &o, &rec, &err) < 0) ||
	    mz_net_plan(s, "bench0", &lan, 1, NULL, 0, &err) < 0 ||
	    mz_net_plan(s, "bench1", &lan, 1, NULL, 0, &err) < 0)
		return fail(&err);
	cleanup_free char *rundir = xasprintf("%s/run/bench0", root);
	cleanup_free char *rundir1 = xasprintf("%s/run/bench1", root);
	mkdir_p(rundir, 0755);
	mkdir_p(rundir1, 0755);
	/* a running peer on the LAN, as in life: its hosts file is kept */
	int rel1;
	pid_t peer = netns_child(&rel1);
	if (peer < 0 || attach_timed(s, root, "bench1", peer, rundir1, 'w') < 0)
		return 1;
	static const struct {
		char mode;
		const char *what;
	} modes[] = {{'c', "fresh process (a supervisor)"},
		     {'p', "fresh process after mz_net_prepare"},
		     {'w', "warm process"},
		     {'r', "warm process, restart at once"}};
	double *t = xcalloc((size_t)n, sizeof(double));
	double *td = xcalloc((size_t)n, sizeof(double));
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		for (int i = 0; i < n; i++) {
			int rel;
			pid_t c = netns_child(&rel);
			if (c < 0)
				return fail(NULL);
			t[i] = attach_timed(s, root, "bench0", c, rundir, modes[m].mode);
			double t0 = now_ms();
			int r = t[i] < 0 ? -1 : mz_net_detach(s, "bench0", &err);
			td[i] = now_ms() - t0;
			close(rel);
			waitpid(c, NULL, 0);
			if (r < 0)
				return err ? fail(&err) : 1;
			/* a restart after the kernel has destroyed the last run's
			 * veth ('r': right away, as `mezzo restart` may) */
			if (modes[m].mode != 'r') {
				wait_veths_gone(s, "bench0");
				/* and the rest of the namespace's teardown, which
				 * holds the rtnl lock a veth creation needs */
				usleep(30000);
			}
		}
		qsort(t, (size_t)n, sizeof(double), cmp_double);
		printf("attach, %-36s median %.3f ms, p10 %.3f, p90 %.3f (n=%d)\n", modes[m].what,
		       t[n / 2], t[n / 10], t[n * 9 / 10], n);
		if (modes[m].mode == 'w') {
			qsort(td, (size_t)n, sizeof(double), cmp_double);
			printf("detach, %-36s median %.3f ms, p10 %.3f, p90 %.3f (n=%d)\n",
			       modes[m].what, td[n / 2], td[n / 10], td[n * 9 / 10], n);
		}
	}
	free(t);
	free(td);
	close(rel1);
	waitpid(peer, NULL, 0);
	if (mz_net_forget_domain(s, "bench0", &err) < 0 ||
	    mz_net_forget_domain(s, "bench1", &err) < 0 || mz_net_lan_remove(s, lan, true, &err) < 0)
		return fail(&err);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	mz_error_t err = NULL;
	if (strcmp(cmd, "holder") == 0)
		return holder();
	if (strcmp(cmd, "in") == 0)
		return in_ns(argc - 2, argv + 2);
	if (strcmp(cmd, "nft") == 0 && argc == 3) {
		char *out = NULL;
		if (mz_nft_run(argv[2], "run the commands", &out, &err) < 0)
			return fail(&err);
		fputs(out, stdout);
		free(out);
		return 0;
	}
	if (argc < 3)
		return usage();
	const char *root = argv[2];
	if (strcmp(cmd, "tag") == 0) {
		cleanup_store mz_store *s = open_store(root);
		char tag[8];
		mz_net_tag(s, tag);
		printf("%s\n", tag);
		return 0;
	}
	if (strcmp(cmd, "plan") == 0 && argc >= 5)
		return plan(root, argv[3], argv[4], argv + 5, argc - 5);
	if (strcmp(cmd, "attach") == 0 && (argc == 6 || (argc == 7 && !strcmp(argv[6], "--prepare"))))
		return attach(root, argv[3], atoi(argv[4]), argv[5], argc == 7);
	if (strcmp(cmd, "bench") == 0 && argc == 4)
		return bench(root, atoi(argv[3]));
	cleanup_store mz_store *s = open_store(root);
	int r = 0;
	if (strcmp(cmd, "detach") == 0 && argc == 4)
		r = mz_net_detach(s, argv[3], &err);
	else if (strcmp(cmd, "rates") == 0 && argc == 6)
		r = mz_net_set_rates(s, argv[3], atoll(argv[4]), atoll(argv[5]), &err);
	else if (strcmp(cmd, "forget") == 0 && argc == 4)
		r = mz_net_forget_domain(s, argv[3], &err);
	else if (strcmp(cmd, "hosts") == 0 && argc == 4) {
		cleanup_free char *path = mz_net_hosts_file(s, argv[3], &err);
		r = path ? 0 : -EIO;
		if (path)
			printf("%s\n", path);
	} else if (strcmp(cmd, "fast") == 0 && argc == 4) {
		r = mz_net_fast_dump(s, argv[3], stdout, &err);
		if (r == -ENOENT && !err) {
			printf("none\n");
			r = 0;
		}
	} else if (strcmp(cmd, "cleanup") == 0 && argc == 3) {
		int n = 0;
		r = mz_net_cleanup_orphans(s, &n, &err);
		if (r == 0)
			printf("%d\n", n);
	} else
		return usage();
	return r < 0 ? fail(&err) : 0;
}
