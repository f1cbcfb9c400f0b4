/* error.c — see error.h. */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int error_vmake(mz_error_t *err, int code, int with_errno, const char *fmt,
		       va_list ap)
{
	if (code <= 0)
		code = code < 0 ? -code : EIO;
	if (err == NULL || *err != NULL)
		return -code;

	struct mz_error_s *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -code;
	e->code = code;
	char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	if (m != NULL && with_errno) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", m, strerror(code)) >= 0) {
			free(m);
			m = full;
		}
	}
	e->msg = m;
	*err = e;
	return -code;
}

int mz_error(mz_error_t *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vmake(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int mz_error_sys(mz_error_t *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vmake(err, code, 1, fmt, ap);
	va_end(ap);
	return r;
}

int mz_error_wrap(mz_error_t *err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL)
		return -EIO;
	struct mz_error_s *e = *err;
	char *prefix = NULL, *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&prefix, fmt, ap);
	va_end(ap);
	if (n >= 0 && asprintf(&full, "%s: %s", prefix, e->msg ? e->msg : "") >= 0) {
		free(e->msg);
		e->msg = full;
	}
	free(prefix);
	return -e->code;
}

void mz_error_release(mz_error_t *err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}
