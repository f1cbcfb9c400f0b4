/*
 * mnl.h — libmnl, loaded on first use.
 *
 * Only domains on a LAN and `mezzo net` speak netlink, yet every mezzo
 * command paid for mapping libmnl before main(): 0.06 ms an exec here
 * (measured: an empty main() linked with libc and libm 525 µs, with libmnl
 * too 588 µs, medians of 1500 interleaved runs), twice in a create + start.
 * So netlink.c gets libmnl's functions under their own names, as pointers
 * filled in by mz_dyn_load_mnl() (lib/dynlib.h), which mz_nl_open calls
 * before the first of them.
 */
#ifndef MZ_NET_MNL_H
#define MZ_NET_MNL_H

#include <libmnl/libmnl.h>

#include "../lib/dynlib.h"

#define MZ_MNL_SONAME "libmnl.so.0"

#define MZ_MNL_FUNCS(X) \
	X(mnl_attr_get_payload) \
	X(mnl_attr_get_payload_len) \
	X(mnl_attr_get_str) \
	X(mnl_attr_get_type) \
	X(mnl_attr_get_u32) \
	X(mnl_attr_nest_end) \
	X(mnl_attr_nest_start) \
	X(mnl_attr_next) \
	X(mnl_attr_ok) \
	X(mnl_attr_parse) \
	X(mnl_attr_parse_nested) \
	X(mnl_attr_put) \
	X(mnl_attr_put_strz) \
	X(mnl_attr_put_u32) \
	X(mnl_attr_put_u64) \
	X(mnl_attr_validate) \
	X(mnl_cb_run) \
	X(mnl_nlmsg_get_payload) \
	X(mnl_nlmsg_get_payload_offset) \
	X(mnl_nlmsg_get_payload_tail) \
	X(mnl_nlmsg_next) \
	X(mnl_nlmsg_ok) \
	X(mnl_nlmsg_put_extra_header) \
	X(mnl_nlmsg_put_header) \
	X(mnl_socket_bind) \
	X(mnl_socket_close) \
	X(mnl_socket_get_portid) \
	X(mnl_socket_open2) \
	X(mnl_socket_recvfrom) \
	X(mnl_socket_sendto) \
	X(mnl_socket_setsockopt) \

MZ_DYN_DECLARE(MZ_MNL_FUNCS)
int mz_dyn_load_mnl(mz_error_t *err);

/* the call sites keep libmnl's names (but mnl.c, which defines the
 * pointers with MZ_DYN_DEFINE, needs them unrenamed) */
#ifndef MZ_MNL_DEFINE_POINTERS
#define mnl_attr_get_payload mzdl_mnl_attr_get_payload
#define mnl_attr_get_payload_len mzdl_mnl_attr_get_payload_len
#define mnl_attr_get_str mzdl_mnl_attr_get_str
#define mnl_attr_get_type mzdl_mnl_attr_get_type
#define mnl_attr_get_u32 mzdl_mnl_attr_get_u32
#define mnl_attr_nest_end mzdl_mnl_attr_nest_end
#define mnl_attr_nest_start mzdl_mnl_attr_nest_start
#define mnl_attr_next mzdl_mnl_attr_next
#define mnl_attr_ok mzdl_mnl_attr_ok
#define mnl_attr_parse mzdl_mnl_attr_parse
#define mnl_attr_parse_nested mzdl_mnl_attr_parse_nested
#define mnl_attr_put mzdl_mnl_attr_put
#define mnl_attr_put_strz mzdl_mnl_attr_put_strz
#define mnl_attr_put_u32 mzdl_mnl_attr_put_u32
#define mnl_attr_put_u64 mzdl_mnl_attr_put_u64
#define mnl_attr_validate mzdl_mnl_attr_validate
#define mnl_cb_run mzdl_mnl_cb_run
#define mnl_nlmsg_get_payload mzdl_mnl_nlmsg_get_payload
#define mnl_nlmsg_get_payload_offset mzdl_mnl_nlmsg_get_payload_offset
#define mnl_nlmsg_get_payload_tail mzdl_mnl_nlmsg_get_payload_tail
#define mnl_nlmsg_next mzdl_mnl_nlmsg_next
#define mnl_nlmsg_ok mzdl_mnl_nlmsg_ok
#define mnl_nlmsg_put_extra_header mzdl_mnl_nlmsg_put_extra_header
#define mnl_nlmsg_put_header mzdl_mnl_nlmsg_put_header
#define mnl_socket_bind mzdl_mnl_socket_bind
#define mnl_socket_close mzdl_mnl_socket_close
#define mnl_socket_get_portid mzdl_mnl_socket_get_portid
#define mnl_socket_open2 mzdl_mnl_socket_open2
#define mnl_socket_recvfrom mzdl_mnl_socket_recvfrom
#define mnl_socket_sendto mzdl_mnl_socket_sendto
#define mnl_socket_setsockopt mzdl_mnl_socket_setsockopt
#endif

#endif
