/* arm64 ceilings for the kernel benchmark: streaming read and int8 MAC peak. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include "internal.h"

uint64_t bn_bench_read_arm(bn_isa isa, const void *buf, size_t len) {
    (void)isa;
    const uint8_t *p = (const uint8_t *)buf;
    uint8x16_t a0 = vdupq_n_u8(0), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 64 <= len; i += 64) {
        a0 = veorq_u8(a0, vld1q_u8(p + i));
        a1 = veorq_u8(a1, vld1q_u8(p + i + 16));
        a2 = veorq_u8(a2, vld1q_u8(p + i + 32));
        a3 = veorq_u8(a3, vld1q_u8(p + i + 48));
    }
    const uint64x2_t a = vreinterpretq_u64_u8(veorq_u8(veorq_u8(a0, a1), veorq_u8(a2, a3)));
    return vgetq_lane_u64(a, 0) ^ vgetq_lane_u64(a, 1);
}

__attribute__((target("dotprod"))) static uint64_t peak_dotprod(uint64_t iters) {
    int32x4_t acc[8];
    const int8x16_t a = vdupq_n_s8(1), b = vdupq_n_s8(1);
    for (int i = 0; i < 8; i++) acc[i] = vdupq_n_s32(i);
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) acc[i] = vdotq_s32(acc[i], a, b);
    int32x4_t s = acc[0];
    for (int i = 1; i < 8; i++) s = vaddq_s32(s, acc[i]);
    volatile int32_t sink = vaddvq_s32(s);
    (void)sink;
    return iters * 8 * 16;
}

/* Without dotprod: smull + smull2 + add + sadalp per 16 multiply-adds, as
 * gemm_i2s_neon.c does. Each chain gets its own input, made opaque every pass
 * by an empty asm: with constant inputs the compiler hoisted the multiplies
 * out of the loop and the probe timed only the accumulating adds. */
static uint64_t peak_neon(uint64_t iters) {
    int32x4_t acc[8];
    int8x16_t a[8];
    int8x16_t b = vdupq_n_s8(1);
    __asm__ volatile("" : "+w"(b)); /* or a multiply by 1 becomes a widening add */
    for (int i = 0; i < 8; i++) {
        acc[i] = vdupq_n_s32(i);
        a[i] = vdupq_n_s8((int8_t)(i + 1));
    }
    for (uint64_t it = 0; it < iters; it++)
        for (int i = 0; i < 8; i++) {
            __asm__ volatile("" : "+w"(a[i]));
            acc[i] = vpadalq_s16(acc[i], vaddq_s16(vmull_s8(vget_low_s8(a[i]), vget_low_s8(b)), vmull_high_s8(a[i], b)));
        }
    int32x4_t s = acc[0];
    for (int i = 1; i < 8; i++) s = vaddq_s32(s, acc[i]);
    volatile int32_t sink = vaddvq_s32(s);
    (void)sink;
    return iters * 8 * 16;
}

/* f32 FMA rate: 12 chains of vfmaq_f32 (4 lanes) cover the latency at up to 3 per cycle. */
static uint64_t fma_neon(uint64_t iters) {
    float32x4_t acc[12];
    float32x4_t a = vdupq_n_f32(1.0f), b = vdupq_n_f32(1e-9f);
    for (int i = 0; i < 12; i++) acc[i] = vdupq_n_f32((float)i);
    for (uint64_t it = 0; it < iters; it++) {
        __asm__ volatile("" : "+w"(a), "+w"(b));
        for (int i = 0; i < 12; i++) acc[i] = vfmaq_f32(acc[i], a, b);
    }
    float32x4_t s = acc[0];
    for (int i = 1; i < 12; i++) s = vaddq_f32(s, acc[i]);
    volatile float sink = vaddvq_f32(s);
    (void)sink;
    return iters * 12 * 4;
}

uint64_t bn_bench_f32_peak_arm(bn_isa isa, uint64_t iters) {
    (void)isa;
    return fma_neon(iters);
}

uint64_t bn_bench_int8_peak_arm(bn_isa isa, uint64_t iters) {
    return isa == BN_ISA_NEON_DOTPROD ? peak_dotprod(iters) : peak_neon(iters);
}
#endif
