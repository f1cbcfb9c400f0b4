/*
 * proto.h — FUSE protocol definitions newer than Debian 12's <linux/fuse.h>.
 *
 * Debian 12 ships the 7.38 header (kernel 6.1) and libfuse 3.14, neither of
 * which knows passthrough (7.40).  mezzo therefore speaks the wire protocol
 * itself; the constants and layouts below are the kernel's documented ABI,
 * each one checked on the 6.18 kernel (see shared/notes/fuse-passthrough.md).
 * FUSE over io_uring (7.42, kernel 6.14) is at the end.
 */
#ifndef MZ_FS_PROTO_H
#define MZ_FS_PROTO_H

#include <linux/fuse.h>
#include <stdint.h>

#define MZ_FUSE_PASSTHROUGH (1ULL << 37) /* flags2 bit 5 */
#define MZ_FOPEN_PASSTHROUGH (1u << 7)
#define MZ_FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#define MZ_FUSE_STATX 52

/* struct fuse_init_out as of 7.40+: max_stack_depth took unused[0]. */
struct mz_fuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;
	uint16_t max_pages;
	uint16_t map_alignment;
	uint32_t flags2;
	uint32_t max_stack_depth;
	uint16_t request_timeout;
	uint16_t unused0;
	uint32_t unused[5];
};
_Static_assert(sizeof(struct mz_fuse_init_out) == 64, "fuse_init_out is 64 bytes");

/* struct fuse_open_out as of 7.40: padding became backing_id. */
struct mz_fuse_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

struct mz_fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define MZ_FUSE_DEV_IOC_BACKING_OPEN 0x4010e501u  /* _IOW(229, 1, backing_map) */
#define MZ_FUSE_DEV_IOC_BACKING_CLOSE 0x4004e502u /* _IOW(229, 2, uint32_t) */

/* ---- FUSE over io_uring (7.42+; Documentation/filesystems/fuse/fuse-io-uring.rst) ----
 *
 * Offered in INIT (flags2 bit 9) only while /sys/module/fuse/parameters/
 * enable_uring is Y.  The server answers requests through IORING_OP_URING_CMD
 * SQEs on the /dev/fuse fd, in a ring set up with IORING_SETUP_SQE128 (the
 * command below lives in the SQE's 80-byte cmd area; 32-byte CQEs are not
 * needed).  sqe->addr points at two iovecs: the header buffer (struct
 * mz_fuse_uring_req_header) and a payload buffer of at least
 * max(8 KiB, max_write, max_pages * page size) bytes, else EINVAL.
 */
#define MZ_FUSE_OVER_IO_URING (1ULL << 41) /* flags2 bit 9 */

#define MZ_FUSE_URING_IN_OUT_HEADER_SZ 128
#define MZ_FUSE_URING_OP_IN_OUT_SZ 128

/* sqe->cmd_op */
#define MZ_FUSE_IO_URING_CMD_REGISTER 1u         /* hand the kernel an entry */
#define MZ_FUSE_IO_URING_CMD_COMMIT_AND_FETCH 2u /* answer, take the next one */

struct mz_fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;  /* kernel -> server: echo it in the commit */
	uint32_t payload_sz; /* bytes used in the payload buffer, both ways */
	uint32_t padding;
	uint64_t reserved;
};
_Static_assert(sizeof(struct mz_fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out");

/* The header buffer of a ring entry.  Request: in_out holds the
 * fuse_in_header, op_in the opcode's fixed argument (its size is what
 * in.len leaves after the header and payload_sz), the payload buffer the
 * rest.  Reply: in_out holds the fuse_out_header, the payload buffer the
 * reply body, payload_sz its size. */
struct mz_fuse_uring_req_header {
	char in_out[MZ_FUSE_URING_IN_OUT_HEADER_SZ];
	char op_in[MZ_FUSE_URING_OP_IN_OUT_SZ];
	struct mz_fuse_uring_ent_in_out ring_ent_in_out;
};
_Static_assert(sizeof(struct mz_fuse_uring_req_header) == 288, "fuse_uring_req_header");

/* In the SQE's cmd area (io_uring_sqe.cmd, 80 bytes with SQE128). */
struct mz_fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id; /* COMMIT_AND_FETCH: the request answered */
	uint16_t qid;       /* the queue: a CPU number */
	uint8_t padding[6];
};
_Static_assert(sizeof(struct mz_fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req");

#endif
