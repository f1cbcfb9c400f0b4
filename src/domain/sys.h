/*
 * sys.h — system calls that leave errno alone, for the domain's children.
 *
 * mz_sys(SYS_name, args...) returns the kernel's result: >= 0, or -errno.
 * The children of spawn.c share the caller's memory and its thread's TLS
 * (child.c), so a glibc wrapper's errno write in a child could land in the
 * middle of the parent's "if (errno == EAGAIN)" and the other way round.
 * Child-side code therefore makes its system calls here and never reads or
 * writes errno; on x86_64 this is an inline "syscall" instruction.  Where
 * the children do not share memory (other architectures, AddressSanitizer
 * builds) it falls back to syscall(2), errno being private there.
 */
#ifndef MZ_DOMAIN_SYS_H
#define MZ_DOMAIN_SYS_H

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
static inline long mz_sys6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#else
static inline long mz_sys6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long r = syscall(n, a1, a2, a3, a4, a5, a6);
	return r < 0 ? -errno : r;
}
#endif

#define MZ_SYS_N(n, a, b, c, d, e, f, ...)                                                   \
	mz_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define mz_sys(...) MZ_SYS_N(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

#endif
