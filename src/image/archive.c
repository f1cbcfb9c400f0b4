/* archive.c — the pointers of archive.h, and their loader. */
#define MZ_ARCHIVE_DEFINE_POINTERS
#include "archive.h"

MZ_DYN_DEFINE(archive, MZ_ARCHIVE_SONAME, MZ_ARCHIVE_FUNCS)
