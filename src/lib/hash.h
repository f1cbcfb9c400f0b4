/*
 * hash.h — content hashes for sealed objects.
 *
 * SHA-256 through OpenSSL's EVP interface (SHA-NI accelerated where the CPU has
 * it).  A cryptographic hash is used rather than xxhash because dedup trusts the
 * hash alone: two objects with equal digests are taken to be equal without a
 * byte-by-byte compare, so collisions must be infeasible, not merely unlikely.
 */
#ifndef MZ_HASH_H
#define MZ_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MZ_HASH_LEN 32
#define MZ_HASH_HEX (MZ_HASH_LEN * 2 + 1)

typedef struct mz_hasher mz_hasher;

mz_hasher *mz_hasher_new(void);
void mz_hasher_update(mz_hasher *h, const void *data, size_t n);
void mz_hasher_final(mz_hasher *h, uint8_t out[MZ_HASH_LEN]);
void mz_hasher_free(mz_hasher *h);

/* Hash a whole file from its start; returns 0 or -errno. */
int mz_hash_fd(int fd, uint8_t out[MZ_HASH_LEN]);
void mz_hash_hex(const uint8_t h[MZ_HASH_LEN], char out[MZ_HASH_HEX]);

#endif
