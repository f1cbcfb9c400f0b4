/*
 * proto.h — FUSE protocol definitions newer than Debian 12's <linux/fuse.h>.
 *
 * Debian 12 ships the 7.38 header (kernel 6.1) and libfuse 3.14, neither of
 * which knows passthrough (7.40).  mezzo therefore speaks the wire protocol
 * itself; the constants and layouts below are the kernel's documented ABI,
 * each one checked on the 6.18 kernel (see shared/notes/fuse-passthrough.md).
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

#endif
