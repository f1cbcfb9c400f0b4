/*
 * error.h — the one error convention of mezzo.
 *
 * A function that can fail returns an int: >= 0 on success, a negative errno on
 * failure.  When it fails it also fills a caller-provided `mz_error_t *err` with a
 * message that says what went wrong, so the CLI can print one precise line instead
 * of "Operation not permitted".  Errors propagate by returning the same negative
 * value; the message is made once, where the failure is understood.
 */
#ifndef MZ_ERROR_H
#define MZ_ERROR_H

#include <stdarg.h>

struct mz_error_s {
	int code;   /* positive errno */
	char *msg;  /* heap string, owned by the error */
	int status; /* a command in a domain could not run: the exit status a
		       shell gives that (126, 127), for `run` and `exec` to end
		       with; 0 otherwise */
};
typedef struct mz_error_s *mz_error_t;

/* Fill *err (if err != NULL and *err is still empty) and return -code. */
int mz_error(mz_error_t *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like mz_error, appending ": strerror(code)". */
int mz_error_sys(mz_error_t *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix an existing error's message with more context; returns -code. */
int mz_error_wrap(mz_error_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mz_error_release(mz_error_t *err);

#define cleanup_error __attribute__((cleanup(mz_error_release)))

#endif
