/* Runtime ISA detection and the kernel tables. Detection reads cpuid and
 * XCR0 on x86 (an instruction set is usable only when the OS also saves its
 * register state) and hwcaps on arm64. BITNET_ISA may only lower the level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static const char *const isa_names[BN_ISA_COUNT] = {
    "scalar", "avx2", "avx512", "avx512vnni", "neon", "dotprod", "amx"};

const char *bn_isa_name(bn_isa isa) {
    return (unsigned)isa < BN_ISA_COUNT ? isa_names[isa] : "unknown";
}

int bn_isa_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < BN_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    if (strcmp(name, "neon_dotprod") == 0 || strcmp(name, "neon-dotprod") == 0) return BN_ISA_NEON_DOTPROD;
    if (strcmp(name, "avx512_vnni") == 0 || strcmp(name, "avx512-vnni") == 0) return BN_ISA_AVX512_VNNI;
    return -1;
}

/* What the CPU offers, for the report. */
typedef struct {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, gfni, os_ymm, os_zmm;
    int amx_tile, amx_int8, os_amx, amx_permitted;
    int neon, dotprod;
    char brand[49];
} cpu_features;

#if defined(__x86_64__) || defined(_M_X64)
/* Linux hands out the 8 KiB of AMX tile state per process on request
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux ≥ 5.16);
 * without it the first tile instruction kills the process with SIGILL. The
 * request is idempotent and process-wide, so its answer is kept: 0 unknown,
 * 1 granted, 2 refused. Other systems: not used (no AMX level). */
static int amx_permission(void) {
#if defined(__linux__)
    static _Atomic int state = 0;
    int s = state;
    if (s == 0) {
        s = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0 ? 1 : 2;
        state = s;
    }
    return s == 1;
#else
    return 0;
#endif
}
#endif

static cpu_features detect_features(void) {
    cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(_M_X64)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        f.fma = (c >> 12) & 1;
        f.f16c = (c >> 29) & 1;
        const int osxsave = (c >> 27) & 1;
        if (osxsave) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            f.os_ymm = (lo & 0x6) == 0x6;          /* XMM and YMM state */
            f.os_zmm = f.os_ymm && (lo & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
            f.os_amx = (lo & 0x60000) == 0x60000;      /* XTILECFG, XTILEDATA */
        }
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = (b >> 5) & 1;
        f.avx512f = (b >> 16) & 1;
        f.avx512dq = (b >> 17) & 1;
        f.avx512bw = (b >> 30) & 1;
        f.avx512vl = (b >> 31) & 1;
        f.avx512vnni = (c >> 11) & 1;
        f.gfni = (c >> 8) & 1;
        f.amx_tile = (d >> 24) & 1;
        f.amx_int8 = (d >> 25) & 1;
    }
    if (f.amx_tile && f.amx_int8 && f.os_amx) f.amx_permitted = amx_permission();
    unsigned max_ext = __get_cpuid_max(0x80000000, NULL);
    if (max_ext >= 0x80000004) {
        unsigned *p = (unsigned *)f.brand;
        for (unsigned leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002 + leaf, &p[4 * leaf], &p[4 * leaf + 1], &p[4 * leaf + 2], &p[4 * leaf + 3]);
        f.brand[48] = 0;
    }
#elif defined(__aarch64__)
    f.neon = 1; /* Advanced SIMD is mandatory on AArch64 */
#if defined(__linux__)
    f.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0) f.dotprod = v != 0;
#endif
#endif
    return f;
}

static bn_isa best_isa(const cpu_features *f) {
#if defined(__x86_64__) || defined(_M_X64)
    const int avx2 = f->avx2 && f->fma && f->f16c && f->os_ymm;
    const int avx512 = avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->os_zmm;
    if (avx512 && f->avx512vnni && f->amx_permitted) return BN_ISA_AMX; /* asked only with AMX-TILE/INT8 and XCR0 */
    if (avx512 && f->avx512vnni) return BN_ISA_AVX512_VNNI;
    if (avx512) return BN_ISA_AVX512;
    if (avx2) return BN_ISA_AVX2;
#elif defined(__aarch64__)
    if (f->dotprod) return BN_ISA_NEON_DOTPROD;
    return BN_ISA_NEON;
#endif
    (void)f;
    return BN_ISA_SCALAR;
}

/* Rank of a level within its architecture (0 = not of that architecture):
 * x86 avx2 < avx512 < avx512vnni < amx (amx was added after the arm64 levels,
 * so its enum value is not its rank); arm64 neon < dotprod. */
static int x86_rank(bn_isa isa) {
    switch (isa) {
    case BN_ISA_AVX2: return 1;
    case BN_ISA_AVX512: return 2;
    case BN_ISA_AVX512_VNNI: return 3;
    case BN_ISA_AMX: return 4;
    default: return 0;
    }
}
static int arm_rank(bn_isa isa) { return isa == BN_ISA_NEON ? 1 : isa == BN_ISA_NEON_DOTPROD ? 2 : 0; }

/* Same-architecture levels only, at or below the best one. */
static int isa_at_or_below(bn_isa isa, bn_isa best) {
    if (isa == BN_ISA_SCALAR) return 1;
    if (x86_rank(isa) && x86_rank(best)) return x86_rank(isa) <= x86_rank(best);
    if (arm_rank(isa) && arm_rank(best)) return arm_rank(isa) <= arm_rank(best);
    return 0;
}

/* Designated initializers, so a field added to bn_kernels cannot shift the
 * others; clang does not warn about a field left out of a designated
 * initializer, so Tests/c/test_ops.c checks every entry of every table.
 * The float ops and the TL kernels come per ISA family (the VNNI and dotprod
 * levels share their base level's), written once here. */
#define BN_FLOAT_OPS(sfx)                                                                                  \
    .rmsnorm = bn_rmsnorm_##sfx, .f16_gemm = bn_f16_gemm_##sfx, .f16_to_f32 = bn_f16_to_f32_##sfx,         \
    .dot = bn_dot_##sfx, .axpy = bn_axpy_##sfx, .add = bn_add_##sfx, .softmax = bn_softmax_##sfx,          \
    .gate_relu2 = bn_gate_relu2_##sfx, .gate_silu = bn_gate_silu_##sfx, .rope = bn_rope_##sfx,             \
    .attention = bn_attention_##sfx, .attention_f16 = bn_attention_f16_##sfx
#define BN_TL_OPS(sfx)                                                                                     \
    .tl1_gemv = bn_tl1_gemm_##sfx, .tl1_gemm = bn_tl1_gemm_##sfx, .tl2_gemv = bn_tl2_gemm_##sfx,           \
    .tl2_gemm = bn_tl2_gemm_##sfx

static const bn_kernels tables[BN_ISA_COUNT] = {
    [BN_ISA_SCALAR] = {
        .isa = BN_ISA_SCALAR,
        .name = "scalar",
        .quantize = bn_quantize_scalar,
        .i2s_gemv = bn_i2s_gemm_scalar,
        .i2s_gemm = bn_i2s_gemm_scalar,
        .q8_gemm = bn_q8_gemm_scalar,
        .qblock_gemm = bn_qblock_gemm_scalar,
        BN_FLOAT_OPS(scalar),
        BN_TL_OPS(scalar),
    },
#if defined(__x86_64__) || defined(_M_X64)
    [BN_ISA_AVX2] = {
        .isa = BN_ISA_AVX2,
        .name = "avx2",
        .quantize = bn_quantize_avx2,
        .i2s_gemv = bn_i2s_gemv_avx2,
        .i2s_gemm = bn_i2s_gemm_avx2,
        .q8_gemm = bn_q8_gemm_avx2,
        .qblock_gemm = bn_qblock_gemm_avx2,
        BN_FLOAT_OPS(avx2),
        BN_TL_OPS(avx2),
    },
    [BN_ISA_AVX512] = {
        .isa = BN_ISA_AVX512,
        .name = "avx512",
        .quantize = bn_quantize_avx512,
        .i2s_gemv = bn_i2s_gemv_avx512,
        .i2s_gemm = bn_i2s_gemm_avx512,
        .q8_gemm = bn_q8_gemm_avx2,
        .qblock_gemm = bn_qblock_gemm_avx2,
        BN_FLOAT_OPS(avx512),
        BN_TL_OPS(avx512),
    },
    /* the float ops need nothing beyond AVX-512 F/BW/VL/DQ */
    [BN_ISA_AVX512_VNNI] = {
        .isa = BN_ISA_AVX512_VNNI,
        .name = "avx512vnni",
        .quantize = bn_quantize_avx512,
        .i2s_gemv = bn_i2s_gemv_avx512vnni,
        .i2s_gemm = bn_i2s_gemm_avx512vnni,
        .q8_gemm = bn_q8_gemm_avx512vnni,
        .qblock_gemm = bn_qblock_gemm_avx512vnni,
        BN_FLOAT_OPS(avx512),
        BN_TL_OPS(avx512),
    },
    /* AMX replaces the ternary GEMM and the int8 head: the decoding GEMV has
     * one row, nothing to fill a 16-row tile with, and the float kernels
     * have no tile form. */
    [BN_ISA_AMX] = {
        .isa = BN_ISA_AMX,
        .name = "amx",
        .quantize = bn_quantize_avx512,
        .i2s_gemv = bn_i2s_gemv_avx512vnni,
        .i2s_gemm = bn_i2s_gemm_amx,
        .q8_gemm = bn_q8_gemm_amx,
        .qblock_gemm = bn_qblock_gemm_avx512vnni,
        BN_FLOAT_OPS(avx512),
        BN_TL_OPS(avx512),
    },
#endif
#if defined(__aarch64__)
    [BN_ISA_NEON] = {
        .isa = BN_ISA_NEON,
        .name = "neon",
        .quantize = bn_quantize_neon,
        .i2s_gemv = bn_i2s_gemm_neon,
        .i2s_gemm = bn_i2s_gemm_neon,
        .q8_gemm = bn_q8_gemm_neon,
        .qblock_gemm = bn_qblock_gemm_neon,
        BN_FLOAT_OPS(neon),
        BN_TL_OPS(neon),
    },
    /* the float ops need no dot-product instructions */
    [BN_ISA_NEON_DOTPROD] = {
        .isa = BN_ISA_NEON_DOTPROD,
        .name = "dotprod",
        .quantize = bn_quantize_neon,
        .i2s_gemv = bn_i2s_gemm_neon_dotprod,
        .i2s_gemm = bn_i2s_gemm_neon_dotprod,
        .q8_gemm = bn_q8_gemm_neon,
        .qblock_gemm = bn_qblock_gemm_neon,
        BN_FLOAT_OPS(neon),
        BN_TL_OPS(neon),
    },
#endif
};

bn_isa bn_isa_detected(void) {
    const cpu_features f = detect_features();
    return best_isa(&f);
}

int bn_isa_supported(bn_isa isa) {
    if ((unsigned)isa >= BN_ISA_COUNT || tables[isa].name == NULL) return 0;
    return isa_at_or_below(isa, bn_isa_detected());
}

const bn_kernels *bn_kernels_for(bn_isa isa) {
    return bn_isa_supported(isa) ? &tables[isa] : NULL;
}

/* The chosen level: detected, lowered by BITNET_ISA when that names a
 * supported level. Computed on every call (cheap) so tests may change the
 * environment; callers keep the returned pointer. */
static bn_isa chosen_isa(int *env_state) {
    const bn_isa best = bn_isa_detected();
    const char *env = getenv("BITNET_ISA");
    *env_state = 0;
    if (env && *env) {
        const int forced = bn_isa_parse(env);
        if (forced >= 0 && bn_isa_supported((bn_isa)forced)) {
            *env_state = 1;
            return (bn_isa)forced;
        }
        *env_state = -1;
    }
    return best;
}

/* Software prefetch in the streaming kernels (stream_x86.h). On the AMX Xeon
 * host of this machine type the requests lifted the VNNI GEMV out of DRAM
 * 14–16%; on the AVX-512 EPYC host (Zen 4) they cost it instead: 6912×2560
 * GEMV on one core, 96 matrices cycled, mean of 600 calls, 22.8 GB/s with
 * the L1 + L2 requests, 28.5 without, 28.3 with the L1 request alone; the
 * F16 head (128256 × 2560, one row of activations) 21.1–21.6 with, 24.1
 * without, 17.9 with the L1 request alone. So the choice follows the vendor,
 * and BITNET_STREAM_PREFETCH lets a new host be measured both ways.
 * 0/1 chosen, -1 not yet decided; an atomic so concurrent first calls agree. */
static _Atomic int stream_prefetch_state = -1;

/* BITNET_STREAM_PREFETCH when it is "0" or "1", else NULL (ignored). */
static const char *stream_prefetch_env(void) {
    const char *env = getenv("BITNET_STREAM_PREFETCH");
    return env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0) ? env : NULL;
}

static int stream_prefetch_default(void) {
    const char *env = stream_prefetch_env();
    if (env) return env[0] == '1';
#if defined(__x86_64__) || defined(_M_X64)
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        char vendor[13];
        memcpy(vendor, &b, 4);
        memcpy(vendor + 4, &d, 4);
        memcpy(vendor + 8, &c, 4);
        vendor[12] = 0;
        if (strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0) return 0;
    }
#endif
    return 1;
}

/* A lazily decided 0/1 switch: *state is -1 until the first call asks `decide`
 * (deterministic, so concurrent first calls store the same value). */
static int decided(_Atomic int *state, int (*decide)(void)) {
    int s = *state;
    if (s < 0) {
        s = decide();
        *state = s;
    }
    return s;
}

int bn_stream_prefetch(void) { return decided(&stream_prefetch_state, stream_prefetch_default); }

void bn_set_stream_prefetch(int on) { stream_prefetch_state = on < 0 ? -1 : on != 0; }

/* GFNI build of the AVX-512 VNNI block-head kernel: 0/1 chosen, -1 not yet
 * decided (an atomic, as above). Only ever 1 where cpuid reports GFNI, so a
 * caller cannot turn on instructions the CPU lacks. */
static _Atomic int qblock_gfni_state = -1;

static int cpu_has_gfni(void) {
    const cpu_features f = detect_features();
    return f.gfni;
}

int bn_qblock_gfni(void) { return decided(&qblock_gfni_state, cpu_has_gfni); }

void bn_set_qblock_gfni(int on) { qblock_gfni_state = on < 0 ? -1 : on != 0 && cpu_has_gfni(); }

const bn_kernels *bn_kernels_best(void) {
    int env_state;
    return &tables[chosen_isa(&env_state)];
}

size_t bn_dispatch_report(char *buf, size_t cap) {
    const cpu_features f = detect_features();
    const bn_isa best = best_isa(&f);
    int env_state;
    const bn_isa chosen = chosen_isa(&env_state);
    const char *env = getenv("BITNET_ISA");
    char reason[160];
    if (env_state > 0)
        snprintf(reason, sizeof reason, "forced by BITNET_ISA=%s", env);
    else if (env_state < 0)
        snprintf(reason, sizeof reason,
                 "BITNET_ISA=%s ignored: unknown or not supported here (may only lower the level)", env);
    else
        snprintf(reason, sizeof reason, "best level this CPU and OS support");
#if defined(__x86_64__) || defined(_M_X64)
    return (size_t)snprintf(
        buf, cap,
        "cpu: %s\n"
        "arch: x86-64\n"
        "features: avx2=%d fma=%d f16c=%d avx512f=%d avx512bw=%d avx512vl=%d avx512dq=%d avx512vnni=%d "
        "gfni=%d amx_tile=%d amx_int8=%d\n"
        "os saves state (XCR0): ymm=%d zmm=%d amx=%d (amx permission granted: %d)\n"
        "detected: %s\n"
        "chosen: %s (%s)\n"
        "streaming kernels' software prefetch: %s (%s)\n",
        f.brand[0] ? f.brand : "unknown", f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl,
        f.avx512dq, f.avx512vnni, f.gfni, f.amx_tile, f.amx_int8, f.os_ymm, f.os_zmm, f.os_amx, f.amx_permitted, bn_isa_name(best), bn_isa_name(chosen), reason,
        bn_stream_prefetch() ? "on" : "off", stream_prefetch_env() ? "BITNET_STREAM_PREFETCH or a caller" : "by CPU vendor, or a caller");
#else
    return (size_t)snprintf(buf, cap,
                            "arch: %s\nfeatures: neon=%d dotprod=%d\ndetected: %s\nchosen: %s (%s)\n",
#if defined(__aarch64__)
                            "arm64",
#else
                            "other (scalar kernels only)",
#endif
                            f.neon, f.dotprod, bn_isa_name(best), bn_isa_name(chosen), reason);
#endif
}

uint64_t bn_bench_read(bn_isa isa, const void *buf, size_t len) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_read_x86(isa, buf, len);
#elif defined(__aarch64__)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_read_arm(isa, buf, len);
#endif
    const uint64_t *p = (const uint64_t *)buf;
    uint64_t acc = 0;
    for (size_t i = 0; i < len / 8; i++) acc ^= p[i];
    return acc;
}

uint64_t bn_bench_f32_peak(bn_isa isa, uint64_t iters) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_f32_peak_x86(isa, iters);
#elif defined(__aarch64__)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_f32_peak_arm(isa, iters);
#endif
    (void)iters;
    return 0;
}

uint64_t bn_bench_int8_peak(bn_isa isa, uint64_t iters) {
#if defined(__x86_64__) || defined(_M_X64)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_int8_peak_x86(isa, iters);
#elif defined(__aarch64__)
    if (isa != BN_ISA_SCALAR && bn_isa_supported(isa)) return bn_bench_int8_peak_arm(isa, iters);
#endif
    (void)iters;
    return 0;
}
