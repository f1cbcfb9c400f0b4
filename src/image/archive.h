/*
 * archive.h — libarchive, loaded on first use.
 *
 * libarchive brings libxml2, ICU and libstdc++ with it: 1.2 ms of loading
 * and relocation at every start of every mezzo command, for the one command
 * that reads tar archives (lib/dynlib.h).  This header gives the image code
 * libarchive's functions under their own names, as pointers filled in by
 * mz_dyn_load_archive(), which tar.c calls before its first use.
 */
#ifndef MZ_IMAGE_ARCHIVE_H
#define MZ_IMAGE_ARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

#include "../lib/dynlib.h"

#define MZ_ARCHIVE_SONAME "libarchive.so.13"

#define MZ_ARCHIVE_FUNCS(X) \
	X(archive_entry_acl_next) \
	X(archive_entry_acl_reset) \
	X(archive_entry_atime) \
	X(archive_entry_atime_is_set) \
	X(archive_entry_atime_nsec) \
	X(archive_entry_ctime) \
	X(archive_entry_ctime_is_set) \
	X(archive_entry_ctime_nsec) \
	X(archive_entry_filetype) \
	X(archive_entry_gid) \
	X(archive_entry_hardlink) \
	X(archive_entry_hardlink_utf8) \
	X(archive_entry_mtime) \
	X(archive_entry_mtime_nsec) \
	X(archive_entry_pathname) \
	X(archive_entry_pathname_utf8) \
	X(archive_entry_perm) \
	X(archive_entry_rdev) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set) \
	X(archive_entry_symlink) \
	X(archive_entry_symlink_utf8) \
	X(archive_entry_uid) \
	X(archive_entry_xattr_next) \
	X(archive_entry_xattr_reset) \
	X(archive_error_string) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open_fd) \
	X(archive_read_support_filter_bzip2) \
	X(archive_read_support_filter_compress) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_lz4) \
	X(archive_read_support_filter_lzma) \
	X(archive_read_support_filter_xz) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \

MZ_DYN_DECLARE(MZ_ARCHIVE_FUNCS)
int mz_dyn_load_archive(mz_error_t *err);

/* the call sites keep libarchive's names (but archive.c, which defines the
 * pointers with MZ_DYN_DEFINE, needs them unrenamed) */
#ifndef MZ_ARCHIVE_DEFINE_POINTERS
#define archive_entry_acl_next mzdl_archive_entry_acl_next
#define archive_entry_acl_reset mzdl_archive_entry_acl_reset
#define archive_entry_atime mzdl_archive_entry_atime
#define archive_entry_atime_is_set mzdl_archive_entry_atime_is_set
#define archive_entry_atime_nsec mzdl_archive_entry_atime_nsec
#define archive_entry_ctime mzdl_archive_entry_ctime
#define archive_entry_ctime_is_set mzdl_archive_entry_ctime_is_set
#define archive_entry_ctime_nsec mzdl_archive_entry_ctime_nsec
#define archive_entry_filetype mzdl_archive_entry_filetype
#define archive_entry_gid mzdl_archive_entry_gid
#define archive_entry_hardlink mzdl_archive_entry_hardlink
#define archive_entry_hardlink_utf8 mzdl_archive_entry_hardlink_utf8
#define archive_entry_mtime mzdl_archive_entry_mtime
#define archive_entry_mtime_nsec mzdl_archive_entry_mtime_nsec
#define archive_entry_pathname mzdl_archive_entry_pathname
#define archive_entry_pathname_utf8 mzdl_archive_entry_pathname_utf8
#define archive_entry_perm mzdl_archive_entry_perm
#define archive_entry_rdev mzdl_archive_entry_rdev
#define archive_entry_size mzdl_archive_entry_size
#define archive_entry_size_is_set mzdl_archive_entry_size_is_set
#define archive_entry_symlink mzdl_archive_entry_symlink
#define archive_entry_symlink_utf8 mzdl_archive_entry_symlink_utf8
#define archive_entry_uid mzdl_archive_entry_uid
#define archive_entry_xattr_next mzdl_archive_entry_xattr_next
#define archive_entry_xattr_reset mzdl_archive_entry_xattr_reset
#define archive_error_string mzdl_archive_error_string
#define archive_read_data_block mzdl_archive_read_data_block
#define archive_read_free mzdl_archive_read_free
#define archive_read_new mzdl_archive_read_new
#define archive_read_next_header mzdl_archive_read_next_header
#define archive_read_open_fd mzdl_archive_read_open_fd
#define archive_read_support_filter_bzip2 mzdl_archive_read_support_filter_bzip2
#define archive_read_support_filter_compress mzdl_archive_read_support_filter_compress
#define archive_read_support_filter_gzip mzdl_archive_read_support_filter_gzip
#define archive_read_support_filter_lz4 mzdl_archive_read_support_filter_lz4
#define archive_read_support_filter_lzma mzdl_archive_read_support_filter_lzma
#define archive_read_support_filter_xz mzdl_archive_read_support_filter_xz
#define archive_read_support_filter_zstd mzdl_archive_read_support_filter_zstd
#define archive_read_support_format_tar mzdl_archive_read_support_format_tar
#endif

#endif
