/* Shared pieces of the C test harnesses: a CHECK macro that counts, a
 * seeded xorshift generator, and guarded buffers whose trailing guard bytes
 * catch overruns (the sanitizer builds catch reads past exact-size inputs).
 * Each harness defines HARNESS_SEED before including this header. */
#ifndef BN_TEST_HARNESS_H
#define BN_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            if (failures < 30) {                                           \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);       \
                fprintf(stderr, __VA_ARGS__);                              \
                fputc('\n', stderr);                                       \
            }                                                              \
        }                                                                  \
    } while (0)

static uint64_t rng_state = HARNESS_SEED;
static inline uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
/* uniform in [-1, 1) */
static inline float rnd_float(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

#define GUARD 64
static const uint8_t GUARD_BYTE = 0xA5;
/* bytes filled with 0xCD (so untouched outputs are recognisable), then the guard */
static inline void *guarded_alloc(size_t bytes) {
    uint8_t *p = malloc(bytes + GUARD);
    memset(p, 0xCD, bytes);
    memset(p + bytes, GUARD_BYTE, GUARD);
    return p;
}
static inline int guard_ok(const void *p, size_t bytes) {
    const uint8_t *g = (const uint8_t *)p + bytes;
    for (int i = 0; i < GUARD; i++)
        if (g[i] != GUARD_BYTE) return 0;
    return 1;
}

#endif
