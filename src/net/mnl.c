/* mnl.c — the pointers of mnl.h, and their loader. */
#define MZ_MNL_DEFINE_POINTERS
#include "mnl.h"

MZ_DYN_DEFINE(mnl, MZ_MNL_SONAME, MZ_MNL_FUNCS)
