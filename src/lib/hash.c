/* hash.c — see hash.h. */
#include "hash.h"
#include "dynlib.h"
#include "util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* libcrypto is loaded on first use (dynlib.h says why). */
#define CRYPTO_FUNCS(X)                                                                   \
	X(OPENSSL_init_crypto)                                                            \
	X(EVP_MD_CTX_new) X(EVP_MD_CTX_free) X(EVP_sha256) X(EVP_DigestInit_ex)           \
	X(EVP_DigestUpdate) X(EVP_DigestFinal_ex)
#define STR_(x) #x
#define STR(x) STR_(x)
MZ_DYN_DEFINE(crypto, "libcrypto.so." STR(OPENSSL_SHLIB_VERSION), CRYPTO_FUNCS)

static void crypto_load(void)
{
	mz_error_t err = NULL;
	if (mz_dyn_load_crypto(&err) < 0) {
		fprintf(stderr, "mezzo: %s (is Debian's libssl3 installed?)\n", err ? err->msg : "?");
		abort();
	}
	/* A digest needs no system configuration: reading openssl.cnf and
	 * its providers costs 0.5 ms a process. */
	mzdl_OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
}

struct mz_hasher {
	EVP_MD_CTX *ctx;
};

mz_hasher *mz_hasher_new(void)
{
	crypto_load();
	mz_hasher *h = xcalloc(1, sizeof(*h));
	h->ctx = mzdl_EVP_MD_CTX_new();
	if (h->ctx == NULL || mzdl_EVP_DigestInit_ex(h->ctx, mzdl_EVP_sha256(), NULL) != 1)
		abort();
	return h;
}

void mz_hasher_update(mz_hasher *h, const void *data, size_t n)
{
	mzdl_EVP_DigestUpdate(h->ctx, data, n);
}

void mz_hasher_final(mz_hasher *h, uint8_t out[MZ_HASH_LEN])
{
	unsigned int len = MZ_HASH_LEN;
	mzdl_EVP_DigestFinal_ex(h->ctx, out, &len);
}

void mz_hasher_free(mz_hasher *h)
{
	if (h == NULL)
		return;
	mzdl_EVP_MD_CTX_free(h->ctx);
	free(h);
}

int mz_hash_fd(int fd, uint8_t out[MZ_HASH_LEN])
{
	enum { BUF = 1 << 17 };
	cleanup_free char *buf = xmalloc(BUF);
	mz_hasher *h = mz_hasher_new();
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, BUF, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			mz_hasher_free(h);
			return -e;
		}
		if (n == 0)
			break;
		mz_hasher_update(h, buf, n);
		off += n;
	}
	mz_hasher_final(h, out);
	mz_hasher_free(h);
	return 0;
}

void mz_hash_hex(const uint8_t h[MZ_HASH_LEN], char out[MZ_HASH_HEX])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < MZ_HASH_LEN; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[MZ_HASH_LEN * 2] = '\0';
}
