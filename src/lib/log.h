/*
 * log.h — diagnostics to stderr (CLI) or to a log file (daemons).
 * MEZZO_DEBUG=1 enables debug lines.
 */
#ifndef MZ_LOG_H
#define MZ_LOG_H

void mz_log_init(const char *prog);
void mz_log_to_fd(int fd);
void mz_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum { MZ_LOG_DEBUG, MZ_LOG_INFO, MZ_LOG_WARN, MZ_LOG_ERR };

#define mz_debug(...) mz_log(MZ_LOG_DEBUG, __VA_ARGS__)
#define mz_info(...) mz_log(MZ_LOG_INFO, __VA_ARGS__)
#define mz_warn(...) mz_log(MZ_LOG_WARN, __VA_ARGS__)
#define mz_err(...) mz_log(MZ_LOG_ERR, __VA_ARGS__)

#endif
