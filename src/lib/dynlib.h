/*
 * dynlib.h — load a shared library on first use, not at every start.
 *
 * Why: the dynamic loader maps and relocates every linked library before
 * main(), in every mezzo process.  Measured here: a program linked with
 * mezzo's libraries takes 2.4 ms to run an empty main(), 0.5 ms without
 * libarchive (which drags in libxml2, ICU and libstdc++) and libcrypto.
 * Those two serve image import, dedup and hash checks, never a domain's
 * start; they are loaded with dlopen() by the code that needs them.
 *
 * A user lists the functions it needs once, in an X-macro, and gets one
 * pointer per function with the library's own prototype (typeof), so the
 * compiler still checks every call:
 *
 *   #define FOO_FUNCS(X) X(foo_open) X(foo_close)
 *   MZ_DYN_DECLARE(FOO_FUNCS)            pointers named mzdl_foo_open, ...
 *   MZ_DYN_DEFINE(foo, "libfoo.so.1", FOO_FUNCS)   in one .c file:
 *                                        int mz_dyn_load_foo(mz_error_t *err)
 */
#ifndef MZ_DYNLIB_H
#define MZ_DYNLIB_H

#include <stddef.h>

#include "error.h"

struct mz_dynsym {
	const char *name;
	void **addr;
};

/* dlopen soname and resolve every symbol, once per process (thread safe);
 * later calls return the first call's result. */
int mz_dynlib_load(const char *soname, const struct mz_dynsym *syms, size_t n, int *state,
		   mz_error_t *err);

#define MZ_DYN_PTR_EXTERN_(f) extern __typeof__(f) *mzdl_##f;
#define MZ_DYN_PTR_DEFINE_(f) __typeof__(f) *mzdl_##f;
#define MZ_DYN_SYM_(f) {#f, (void **)&mzdl_##f},

#define MZ_DYN_DECLARE(LIST) LIST(MZ_DYN_PTR_EXTERN_)

#define MZ_DYN_DEFINE(id, soname, LIST)                                                   \
	LIST(MZ_DYN_PTR_DEFINE_)                                                          \
	int mz_dyn_load_##id(mz_error_t *err)                                             \
	{                                                                                 \
		static const struct mz_dynsym syms[] = {LIST(MZ_DYN_SYM_)};               \
		static int state;                                                         \
		return mz_dynlib_load(soname, syms, sizeof(syms) / sizeof(syms[0]), &state, \
				      err);                                               \
	}

#endif
