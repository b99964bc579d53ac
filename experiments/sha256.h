/* sha256.h: SHA-256 (FIPS 180-4), for content hashes of checkpoints, sweep files and the
 * adapler binary (the "code version" of a result). */
#ifndef ADP_SHA256_H
#define ADP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t n_bytes;
    uint8_t buf[64];
    size_t n_buf;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t out[32]);
/* Lower-case hex of the digest of data: out gets 65 bytes (64 digits + NUL). */
void sha256_hex(char out[65], const void *data, size_t len);
/* Feed a whole file into c.  ADP_ERR (message names the path) if it cannot be read. */
int sha256_update_file(sha256_ctx *c, const char *path);
void sha256_final_hex(sha256_ctx *c, char out[65]);

#endif
