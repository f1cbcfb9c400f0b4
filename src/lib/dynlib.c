/* dynlib.c — see dynlib.h. */
#include "dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* state: 0 not tried, 1 loaded, -errno failed (the message is not kept:
 * a second caller gets a plain one). */
int mz_dynlib_load(const char *soname, const struct mz_dynsym *syms, size_t n, int *state,
		   mz_error_t *err)
{
	int r;
	pthread_mutex_lock(&lock);
	if (*state == 0) {
		/* RTLD_NODELETE: the pointers stay valid for the process's life */
		void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (h == NULL) {
			const char *e = dlerror();
			*state = mz_error(err, ENOENT, "cannot load %s: %s", soname, e ? e : "?");
			pthread_mutex_unlock(&lock);
			return *state;
		}
		*state = 1;
		for (size_t i = 0; i < n; i++) {
			*syms[i].addr = dlsym(h, syms[i].name);
			if (*syms[i].addr == NULL) {
				*state = mz_error(err, ENOSYS, "%s has no %s", soname, syms[i].name);
				break;
			}
		}
		r = *state < 0 ? *state : 0;
		pthread_mutex_unlock(&lock);
		return r;
	}
	r = *state < 0 ? mz_error(err, -*state, "%s could not be loaded", soname) : 0;
	pthread_mutex_unlock(&lock);
	return r;
}
