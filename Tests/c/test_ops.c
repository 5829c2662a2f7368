/* C-only test harness for the float ops of CKernels (rmsnorm, f16_gemm,
 * f16_to_f32, dot, axpy, add, softmax, gates, rope, attention): every ISA
 * this CPU supports against the scalar twins, and the scalar twins against
 * double-precision formulas, on odd sizes and adversarial values, with guard
 * bytes after every output. Inputs are malloc'd at their exact size so the
 * sanitizer build (make sanitize) catches any read past them.
 *
 * Tolerances (checked, not just printed):
 *   exact (bit for bit vs scalar): add, axpy, f16_to_f32 (all 65,536 halves),
 *       rope, gate_relu2 — each lane computes the scalar expression with the
 *       product rounded before the add, and no file contracts to FMA.
 *   f16_gemm: bit for bit vs its spec, one fmaf per weight in column order
 *       (bitnet_kernels.h), in every ISA and for every batch size.
 *   dot:            |Δ| ≤ 1e-5 · Σ|aᵢ·bᵢ|  (relative to the condition, so
 *       cancellation cannot fail a correct kernel); lengths ≤ 6912.
 *   rmsnorm:        |Δ| ≤ 1e-5 · |y|  elementwise.
 *   attention:      |Δ| ≤ 1e-5 · Σₜ pₜ·|vₜ|  per output element, with scores
 *       |scale·q·k| up to ~100 (a score's f32 rounding, ~|s|·6e-8, moves
 *       its weight by as much relatively: measured worst 2e-6).
 *   softmax:        |Δ| ≤ 2e-6 · |p| + 1e-36  elementwise (exp error plus
 *       a different summation order).
 *   gate_silu:      |Δ| ≤ 1e-6 · |y| + 1e-36 (the absolute term covers
 *       v < -88.7, where expf(-v) overflows and the result flushes to ±0
 *       instead of |v·e^v| < 6e-37).
 *   exp, isolated through softmax (see test_softmax): relative error vs the
 *       exact value ≤ 2^-23 = 1.2e-7 for every ISA (measured 0.6·2^-23),
 *       printed per ISA. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bitnet_kernels.h"

#define TOL_SUM 1e-5      /* dot, attention: × Σ|terms| */
#define TOL_RMS 1e-5      /* rmsnorm: × |y| */
#define TOL_SOFTMAX 2e-6  /* softmax: × |p| */
#define TOL_SILU 1e-6     /* gate_silu: × |y| */
#define TOL_ABS 1e-36     /* results below ~1e-36 may flush or overflow to 0 differently */
#define EXP_TOL 1.2e-7    /* exp (scalar expf and the SIMD polynomials) vs exact: 2^-23 relative */

#define HARNESS_SEED 0x2545F4914F6CDD1Dull
#include "harness.h"
/* exact-size copy: an input the sanitizer guards */
static void *dup_exact(const void *src, size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    memcpy(p, src, bytes);
    return p;
}

static const bn_isa all_isas[] = {BN_ISA_SCALAR, BN_ISA_AVX2, BN_ISA_AVX512, BN_ISA_AVX512_VNNI, BN_ISA_AMX,
                                  BN_ISA_NEON, BN_ISA_NEON_DOTPROD};
#define N_ISAS (int)(sizeof all_isas / sizeof all_isas[0])
#define FOR_SIMD(kt)                                                       \
    for (int ii_ = 1; ii_ < N_ISAS; ii_++)                                 \
        for (const bn_kernels *kt = bn_kernels_for(all_isas[ii_]); kt; kt = NULL)

static const int sizes[] = {1, 3, 15, 16, 17, 63, 64, 65, 127, 1000, 2560, 6912};
#define N_SIZES (int)(sizeof sizes / sizeof sizes[0])

static uint32_t bits_of(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* Value kinds for the vector tests. */
enum { V_RANDOM, V_ZERO, V_LARGE, V_MIXED, V_KINDS };
static void fill(float *x, int n, int kind) {
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case V_RANDOM: x[i] = 2.0f * rnd_float(); break;              /* [-2, 2] */
        case V_ZERO: x[i] = (i & 1) ? -0.0f : 0.0f; break;
        case V_LARGE: x[i] = 1e4f * rnd_float(); break;              /* ±1e4: exp overflow bait */
        default: x[i] = (rnd() % 7 == 0) ? 1e4f * rnd_float() : 2.0f * rnd_float(); break;
        }
    }
}

/* ---- half precision helpers (test side) -------------------------------------- */

/* IEEE binary32 → binary16, round to nearest even; overflow → inf, NaN → quiet NaN. */
static uint16_t float_to_half(float f) {
    const uint32_t b = bits_of(f);
    const uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    const uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* ≥ 65520 rounds to inf */
    if (a < 0x38800000u) {                                   /* below 2^-14: subnormal half */
        const float scaled = fabsf(f) * 0x1p24f;             /* exact: a power-of-two scaling up */
        return (uint16_t)(sign | (uint32_t)nearbyintf(scaled)); /* 1024 carries into the exponent, correctly */
    }
    uint32_t h = ((((a >> 23) - 112u) << 10) | ((a & 0x7fffffu) >> 13));
    const uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* binary16 → double by the textbook formula (independent of the kernels' bit tricks) */
static double half_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp((double)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp((double)(1024 + m), e - 25);
    return s ? -v : v;
}

/* ---- tables --------------------------------------------------------------------- */

static void test_tables(void) {
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        printf("  testing %s\n", kt->name);
        CHECK(kt->isa == all_isas[ii] && kt->name && kt->quantize && kt->i2s_gemv && kt->i2s_gemm, "%s: header fields", kt->name);
        CHECK(kt->rmsnorm && kt->f16_gemm && kt->f16_to_f32 && kt->dot && kt->axpy && kt->add && kt->softmax &&
                  kt->gate_relu2 && kt->gate_silu && kt->rope && kt->attention && kt->attention_f16 && kt->q8_gemm && kt->tl1_gemv &&
                  kt->tl1_gemm && kt->tl2_gemv && kt->tl2_gemm,
              "%s: a float op is missing from the table", kt->name);
    }
}

/* ---- f16_to_f32 ------------------------------------------------------------------ */

static void test_f16(void) {
    /* the test's own encoder round-trips every non-NaN half */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const double v = half_value((uint16_t)h);
        if (!isnan(v) && float_to_half((float)v) != h) bad++;
    }
    CHECK(bad == 0, "float_to_half round trip: %d halves wrong", bad);
    CHECK(float_to_half(65519.0f) == 0x7bff && float_to_half(65520.0f) == 0x7c00 && float_to_half(1e-8f) == 0 &&
              float_to_half(3e-8f) == 1 && float_to_half(-2.0f) == 0xc000,
          "float_to_half rounding edges");
    /* all 65,536 halves: scalar against the formula, every ISA bit for bit against scalar */
    uint16_t *all = malloc(65536 * sizeof(uint16_t));
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    float *ref = guarded_alloc(65536 * sizeof(float));
    bn_kernels_for(BN_ISA_SCALAR)->f16_to_f32(all, ref, 65536);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const double v = half_value((uint16_t)h);
        if (isnan(v) ? !isnan(ref[h]) : (double)ref[h] != v || signbit(ref[h]) != signbit(v)) bad++;
    }
    CHECK(bad == 0, "scalar f16_to_f32: %d halves wrong", bad);
    CHECK(guard_ok(ref, 65536 * sizeof(float)), "scalar f16_to_f32 overran");
    FOR_SIMD(kt) {
        float *y = guarded_alloc(65536 * sizeof(float));
        kt->f16_to_f32(all, y, 65536);
        CHECK(memcmp(y, ref, 65536 * sizeof(float)) == 0, "%s f16_to_f32 differs from scalar (bits, NaNs included)", kt->name);
        free(y);
        /* odd lengths and offsets: tails must stop exactly at n */
        for (int si = 0; si < N_SIZES; si++) {
            const int n = sizes[si];
            uint16_t *src = dup_exact(all + 1000 + si, (size_t)n * 2);
            float *d = guarded_alloc((size_t)n * 4);
            kt->f16_to_f32(src, d, n);
            CHECK(memcmp(d, ref + 1000 + si, (size_t)n * 4) == 0, "%s f16_to_f32 n=%d", kt->name, n);
            CHECK(guard_ok(d, (size_t)n * 4), "%s f16_to_f32 overran n=%d", kt->name, n);
            free(src);
            free(d);
        }
    }
    free(all);
    free(ref);
}

/* ---- dot, rmsnorm, add, axpy ------------------------------------------------------- */

static void test_vector_ops(void) {
    const bn_kernels *sc = bn_kernels_for(BN_ISA_SCALAR);
    double worst_dot = 0, worst_rms = 0;
    for (int si = 0; si < N_SIZES; si++)
        for (int kind = 0; kind < V_KINDS; kind++) {
            const int n = sizes[si];
            const size_t bytes = (size_t)n * sizeof(float);
            float *a = malloc(bytes), *b = malloc(bytes);
            fill(a, n, kind);
            fill(b, n, kind == V_ZERO ? V_RANDOM : kind);
            /* dot */
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                exact += (double)a[i] * b[i];
                mag += fabs((double)a[i] * b[i]);
            }
            const float dref = sc->dot(a, b, n);
            CHECK(fabs(dref - exact) <= TOL_SUM * mag + 1e-30, "scalar dot n=%d kind=%d: %g vs %g", n, kind, dref, exact);
            FOR_SIMD(kt) {
                const float d = kt->dot(a, b, n);
                const double err = fabs((double)d - dref);
                if (mag > 0 && err / mag > worst_dot) worst_dot = err / mag;
                CHECK(err <= TOL_SUM * mag + 1e-30, "%s dot n=%d kind=%d: %g vs %g", kt->name, n, kind, d, dref);
            }
            /* rmsnorm, into a separate output and in place (y aliases x) */
            const float eps = 1e-5f;
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)a[i] * a[i];
            const double inv = 1.0 / sqrt(ss / n + eps);
            float *yref = guarded_alloc(bytes);
            sc->rmsnorm(a, b, eps, n, yref);
            CHECK(guard_ok(yref, bytes), "scalar rmsnorm overran n=%d", n);
            for (int i = 0; i < n; i++) {
                const double want = a[i] * inv * b[i];
                CHECK(fabs(yref[i] - want) <= TOL_RMS * fabs(want) + 1e-30, "scalar rmsnorm n=%d i=%d: %g vs %g", n, i, yref[i], want);
            }
            for (int ii = 0; ii < N_ISAS; ii++) {
                const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
                if (!kt) continue;
                float *y = guarded_alloc(bytes);
                kt->rmsnorm(a, b, eps, n, y);
                float *xy = guarded_alloc(bytes);
                memcpy(xy, a, bytes);
                kt->rmsnorm(xy, b, eps, n, xy);
                CHECK(guard_ok(y, bytes) && guard_ok(xy, bytes), "%s rmsnorm overran n=%d", kt->name, n);
                CHECK(memcmp(y, xy, bytes) == 0, "%s rmsnorm in place differs n=%d", kt->name, n);
                for (int i = 0; i < n; i++) {
                    const double err = fabs((double)y[i] - yref[i]);
                    if (yref[i] != 0 && err / fabs(yref[i]) > worst_rms) worst_rms = err / fabs(yref[i]);
                    CHECK(err <= TOL_RMS * fabs(yref[i]) + 1e-30, "%s rmsnorm n=%d kind=%d i=%d: %g vs %g", kt->name, n,
                          kind, i, y[i], yref[i]);
                }
                free(y);
                free(xy);
            }
            free(yref);
            /* add and axpy: exact against scalar, scalar within rounding of the formula */
            const float alpha = kind == V_LARGE ? 37.5f : -0.7301f;
            float *add_ref = guarded_alloc(bytes), *axpy_ref = guarded_alloc(bytes);
            memcpy(add_ref, b, bytes);
            memcpy(axpy_ref, b, bytes);
            sc->add(a, add_ref, n);
            sc->axpy(alpha, a, axpy_ref, n);
            CHECK(guard_ok(add_ref, bytes) && guard_ok(axpy_ref, bytes), "scalar add/axpy overran n=%d", n);
            for (int i = 0; i < n; i++) {
                CHECK(add_ref[i] == (float)((double)b[i] + a[i]), "scalar add n=%d i=%d", n, i);
                const double prod = (double)(alpha * a[i]); /* the spec rounds the product first */
                CHECK(axpy_ref[i] == (float)((double)b[i] + prod) &&
                          fabs(axpy_ref[i] - ((double)b[i] + (double)alpha * a[i])) <=
                              1.2e-7 * (fabs(b[i]) + fabs((double)alpha * a[i])),
                      "scalar axpy n=%d i=%d", n, i);
            }
            FOR_SIMD(kt) {
                float *y = guarded_alloc(bytes);
                memcpy(y, b, bytes);
                kt->add(a, y, n);
                CHECK(memcmp(y, add_ref, bytes) == 0 && guard_ok(y, bytes), "%s add n=%d kind=%d", kt->name, n, kind);
                memcpy(y, b, bytes);
                kt->axpy(alpha, a, y, n);
                CHECK(memcmp(y, axpy_ref, bytes) == 0 && guard_ok(y, bytes), "%s axpy n=%d kind=%d", kt->name, n, kind);
                free(y);
            }
            free(add_ref);
            free(axpy_ref);
            free(a);
            free(b);
        }
    printf("  worst SIMD vs scalar: dot %.2e (of Σ|ab|), rmsnorm %.2e (relative)\n", worst_dot, worst_rms);
}

/* ---- softmax and gates ------------------------------------------------------------ */

static void test_softmax(void) {
    const bn_kernels *sc = bn_kernels_for(BN_ISA_SCALAR);
    double worst = 0, worst_ref = 0;
    for (int si = 0; si < N_SIZES; si++)
        for (int kind = 0; kind < V_KINDS + 1; kind++) {
            const int n = sizes[si];
            const size_t bytes = (size_t)n * sizeof(float);
            float *x = malloc(bytes);
            if (kind < V_KINDS) {
                fill(x, n, kind);
            } else { /* all -1e4 but one +1e4: one-hot, the rest underflow */
                for (int i = 0; i < n; i++) x[i] = -1e4f;
                x[n / 2] = 1e4f;
            }
            /* double reference */
            double mx = x[0], sum = 0;
            for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
            for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
            float *ref = guarded_alloc(bytes);
            memcpy(ref, x, bytes);
            sc->softmax(ref, n);
            CHECK(guard_ok(ref, bytes), "scalar softmax overran n=%d", n);
            double total = 0;
            for (int i = 0; i < n; i++) {
                const double want = exp((double)x[i] - mx) / sum;
                const double err = fabs(ref[i] - want);
                if (want > 1e-30 && err / want > worst_ref) worst_ref = err / want;
                CHECK(err <= 1e-5 * want + TOL_ABS, "scalar softmax n=%d kind=%d i=%d: %g vs %g", n, kind, i, ref[i], want);
                total += ref[i];
            }
            CHECK(fabs(total - 1.0) < 1e-4, "scalar softmax sums to %f", total);
            FOR_SIMD(kt) {
                float *y = guarded_alloc(bytes);
                memcpy(y, x, bytes);
                kt->softmax(y, n);
                CHECK(guard_ok(y, bytes), "%s softmax overran n=%d", kt->name, n);
                for (int i = 0; i < n; i++) {
                    const double err = fabs((double)y[i] - ref[i]);
                    if (ref[i] > 1e-30f && err / ref[i] > worst) worst = err / ref[i];
                    CHECK(err <= TOL_SOFTMAX * fabs(ref[i]) + TOL_ABS, "%s softmax n=%d kind=%d i=%d: %g vs %g", kt->name,
                          n, kind, i, y[i], ref[i]);
                }
                free(y);
            }
            free(ref);
            free(x);
        }
    printf("  worst softmax: scalar vs double %.2e, SIMD vs scalar %.2e (relative)\n", worst_ref, worst);
    /* exp accuracy, isolated: softmax of [0, d1, d2, ...] with every d in
     * [-87, -40] has a sum that rounds to exactly 1 (Σe^d < 1e-13), so each
     * output is the kernel's exp(d) itself, normal-range, every reduced
     * argument r in [-ln2/2, ln2/2] many times over */
    enum { NE = 40000 };
    float *x = malloc(NE * sizeof(float));
    x[0] = 0.0f;
    for (int i = 1; i < NE; i++) x[i] = -40.0f - 47.0f * (float)i / (NE - 1);
    for (int ii = 0; ii < N_ISAS; ii++) {
        const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
        if (!kt) continue;
        float *y = malloc(NE * sizeof(float));
        memcpy(y, x, NE * sizeof(float));
        kt->softmax(y, NE);
        CHECK(y[0] == 1.0f, "%s exp probe: sum did not round to 1", kt->name);
        double w = 0;
        for (int i = 1; i < NE; i++) {
            const double want = exp((double)x[i]), e = fabs(y[i] - want) / want;
            w = e > w ? e : w;
        }
        printf("  %s exp max relative error %.2e = %.2f × 2^-23\n", kt->name, w, w * 8388608.0);
        CHECK(w <= EXP_TOL, "%s exp error %.3g > %.3g", kt->name, w, EXP_TOL);
        free(y);
    }
    free(x);
}

static void test_gates(void) {
    const bn_kernels *sc = bn_kernels_for(BN_ISA_SCALAR);
    double worst = 0;
    for (int si = 0; si < N_SIZES; si++)
        for (int kind = 0; kind < V_KINDS; kind++) {
            const int n = sizes[si];
            const size_t bytes = (size_t)n * sizeof(float);
            float *g = malloc(bytes), *u = malloc(bytes);
            fill(g, n, kind);
            fill(u, n, V_RANDOM);
            if (kind == V_MIXED) /* exp(-v) overflows for v < -88.7 */
                for (int i = 0; i < n; i += 5) g[i] = -90.0f - (float)(i % 50);
            float *r2 = guarded_alloc(bytes), *si_ref = guarded_alloc(bytes);
            memcpy(r2, g, bytes);
            memcpy(si_ref, g, bytes);
            sc->gate_relu2(r2, u, n);
            sc->gate_silu(si_ref, u, n);
            CHECK(guard_ok(r2, bytes) && guard_ok(si_ref, bytes), "scalar gates overran n=%d", n);
            for (int i = 0; i < n; i++) {
                const double v = g[i] > 0 ? g[i] : 0;
                const double want2 = v * v * u[i];
                CHECK(fabs(r2[i] - want2) <= 2.4e-7 * fabs(want2), "scalar relu2 n=%d i=%d: %g vs %g", n, i, r2[i], want2);
                const double wants = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
                CHECK(fabs(si_ref[i] - wants) <= 1e-6 * fabs(wants) + TOL_ABS, "scalar silu n=%d i=%d: %g vs %g", n, i,
                      si_ref[i], wants);
            }
            FOR_SIMD(kt) {
                float *y = guarded_alloc(bytes);
                memcpy(y, g, bytes);
                kt->gate_relu2(y, u, n);
                CHECK(memcmp(y, r2, bytes) == 0 && guard_ok(y, bytes), "%s relu2 differs n=%d kind=%d", kt->name, n, kind);
                memcpy(y, g, bytes);
                kt->gate_silu(y, u, n);
                CHECK(guard_ok(y, bytes), "%s silu overran n=%d", kt->name, n);
                for (int i = 0; i < n; i++) {
                    const double err = fabs((double)y[i] - si_ref[i]);
                    if (fabs(si_ref[i]) > 1e-30f && err / fabs(si_ref[i]) > worst) worst = err / fabs(si_ref[i]);
                    CHECK(err <= TOL_SILU * fabs(si_ref[i]) + TOL_ABS, "%s silu n=%d kind=%d i=%d: %g vs %g (g=%g)",
                          kt->name, n, kind, i, y[i], si_ref[i], g[i]);
                }
                free(y);
            }
            free(r2);
            free(si_ref);
            free(g);
            free(u);
        }
    printf("  worst silu SIMD vs scalar %.2e (relative)\n", worst);
}

/* ---- rope ---------------------------------------------------------------------------- */

static void test_rope(void) {
    static const int hds[] = {1, 2, 3, 4, 6, 8, 10, 16, 17, 30, 64, 100, 128};
    static const int headss[] = {1, 3, 20};
    const bn_kernels *sc = bn_kernels_for(BN_ISA_SCALAR);
    for (size_t di = 0; di < sizeof hds / sizeof hds[0]; di++)
        for (size_t hi = 0; hi < sizeof headss / sizeof headss[0]; hi++)
            for (int neox = 0; neox < 2; neox++) {
                const int hd = hds[di], heads = headss[hi], half = hd / 2, n = heads * hd;
                const size_t bytes = (size_t)n * sizeof(float);
                float *x = malloc(bytes), *c = malloc((size_t)(half ? half : 1) * 4), *s = malloc((size_t)(half ? half : 1) * 4);
                fill(x, n, hi == 2 ? V_LARGE : V_RANDOM);
                const double pos = (double)(rnd() % 4096);
                for (int i = 0; i < half; i++) {
                    const double theta = pos * pow(10000.0, -2.0 * i / hd);
                    c[i] = (float)cos(theta);
                    s[i] = (float)sin(theta);
                }
                float *ref = guarded_alloc(bytes);
                memcpy(ref, x, bytes);
                sc->rope(ref, heads, hd, c, s, neox);
                CHECK(guard_ok(ref, bytes), "scalar rope overran");
                for (int h = 0; h < heads; h++) {
                    const float *xh = x + (size_t)h * hd, *rh = ref + (size_t)h * hd;
                    for (int i = 0; i < half; i++) {
                        const int ia = neox ? i : 2 * i, ib = neox ? i + half : 2 * i + 1;
                        const double a = xh[ia], b = xh[ib];
                        const double ta = a * c[i] - b * s[i], tb = a * s[i] + b * c[i];
                        const double ma = fabs(a * c[i]) + fabs(b * s[i]), mb = fabs(a * s[i]) + fabs(b * c[i]);
                        CHECK(fabs(rh[ia] - ta) <= 1.2e-7 * ma && fabs(rh[ib] - tb) <= 1.2e-7 * mb,
                              "scalar rope hd=%d neox=%d i=%d", hd, neox, i);
                    }
                    if (hd & 1) CHECK(rh[hd - 1] == xh[hd - 1], "scalar rope touched the odd last element");
                }
                FOR_SIMD(kt) {
                    float *y = guarded_alloc(bytes);
                    memcpy(y, x, bytes);
                    kt->rope(y, heads, hd, c, s, neox);
                    CHECK(memcmp(y, ref, bytes) == 0 && guard_ok(y, bytes), "%s rope differs hd=%d heads=%d neox=%d",
                          kt->name, hd, heads, neox);
                    free(y);
                }
                free(ref);
                free(x);
                free(c);
                free(s);
            }
}

/* ---- f16 GEMM -------------------------------------------------------------------------- */

/* The spec of bn_f16_gemm_fn, written independently of the kernels: row r of
 * row-major w against activation row xt, one fmaf per weight in column order. */
static float f16_chain(const uint16_t *w, int k, int r, const float *xt) {
    float s = 0.0f;
    for (int c = 0; c < k; c++) s = fmaf((float)half_value(w[(size_t)r * k + c]), xt[c], s);
    return s;
}

/* bn_f16_panels against the layout stated in bitnet_kernels.h: every element at
 * (p*k + c)*16 + i, the rows past m zero, panel ranges written independently
 * and nothing past bn_f16_panels_bytes. */
static void test_f16_panels(void) {
    static const int ms[] = {1, 15, 16, 17, 40};
    static const int ks[] = {1, 3, 64};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            const int m = ms[mi], k = ks[ki], panels = (m + 15) / 16;
            uint16_t *w = malloc((size_t)m * k * 2);
            for (size_t i = 0; i < (size_t)m * k; i++) w[i] = (uint16_t)(rnd() | 1u); /* never 0 */
            const size_t bytes = bn_f16_panels_bytes(m, k);
            CHECK(bytes == (size_t)panels * 16 * k * 2, "bn_f16_panels_bytes(%d, %d) = %zu", m, k, bytes);
            uint16_t *dst = guarded_alloc(bytes);
            const int cut = panels > 1 ? 1 : panels; /* two calls when there are two panels or more */
            bn_f16_panels(w, m, k, 0, cut, dst);
            bn_f16_panels(w, m, k, cut, panels, dst);
            CHECK(guard_ok(dst, bytes), "bn_f16_panels overran (m=%d k=%d)", m, k);
            int bad = 0;
            for (int p = 0; p < panels; p++)
                for (int c = 0; c < k; c++)
                    for (int i = 0; i < 16; i++) {
                        const int r = 16 * p + i;
                        const uint16_t want = r < m ? w[(size_t)r * k + c] : 0;
                        bad += dst[((size_t)p * k + c) * 16 + i] != want;
                    }
            CHECK(bad == 0, "bn_f16_panels (m=%d k=%d): %d elements misplaced", m, k, bad);
            /* and every row back out of the panels, exactly, nothing written past k */
            uint16_t *row = guarded_alloc((size_t)k * 2);
            int rows_bad = 0;
            for (int r = 0; r < m; r++) {
                bn_f16_panels_row(dst, k, r, row);
                rows_bad += memcmp(row, w + (size_t)r * k, (size_t)k * 2) != 0;
            }
            CHECK(rows_bad == 0 && guard_ok(row, (size_t)k * 2), "bn_f16_panels_row (m=%d k=%d): %d rows differ", m, k,
                  rows_bad);
            free(row);
            free(dst);
            free(w);
        }
}

/* Every ISA against the fmaf chain, bit for bit, on odd shapes (partial last
 * panels, k through every length), adversarial values (weights up to ±6e4,
 * subnormal halves, an all-zero row of signed zeros, activations up to 1e3),
 * row ranges split anywhere (not only at panel edges: threads may cut rows
 * anywhere) and n past a group of activation rows, with guard bytes after y
 * and the ldy gap checked untouched. The chain itself is checked against a
 * double sum within its rounding bound k·2^-24·Σ|w·x|. Bit-identical results
 * for every n are what makes batched decoding give every sequence its logits
 * alone (continuous batching). */
static void test_f16_gemm(void) {
    static const int ms[] = {1, 5, 16, 17, 33, 47};
    static const int ks[] = {1, 7, 64, 100, 333, 2560};
    static const int ns[] = {1, 2, 3, 5, 8, 9, 13, 17};
    int cases = 0;
    double worst = 0;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int m = ms[mi], k = ks[ki], n = ns[ni], ldy = m + 3;
                uint16_t *w = malloc((size_t)m * k * 2);
                float *x = malloc((size_t)n * k * 4);
                const int big = (mi + ki + ni) % 4 == 0; /* some problems with large weights (up to ±6e4) */
                for (size_t i = 0; i < (size_t)m * k; i++)
                    w[i] = i % 97 == 5 ? (uint16_t)(rnd() & 0x83ffu) /* subnormal or zero */
                                       : float_to_half(2.0f * rnd_float() * (big ? 3e4f : 1.0f));
                if (m >= 5) /* one all-zero row */
                    for (int c = 0; c < k; c++) w[(size_t)3 * k + c] = (c & 1) ? 0x8000 : 0;
                for (size_t i = 0; i < (size_t)n * k; i++) x[i] = (rnd() % 7 == 0) ? 1e3f * rnd_float() : 2.0f * rnd_float();
                uint16_t *w16 = malloc(bn_f16_panels_bytes(m, k));
                bn_f16_panels(w, m, k, 0, (m + 15) / 16, w16);
                float *want = malloc(sizeof(float) * (size_t)n * m);
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < m; r++) {
                        const float *xt = x + (size_t)t * k;
                        const float got = want[(size_t)t * m + r] = f16_chain(w, k, r, xt);
                        double e = 0, g = 0;
                        for (int c = 0; c < k; c++) {
                            const double p = half_value(w[(size_t)r * k + c]) * xt[c];
                            e += p;
                            g += fabs(p);
                        }
                        if (g > 0 && fabs(got - e) / g > worst) worst = fabs(got - e) / g;
                        CHECK(fabs(got - e) <= k * 0x1p-24 * g + 1e-30, "the fmaf chain (m=%d k=%d r=%d): %g vs %g", m,
                              k, r, got, e);
                    }
                const size_t ybytes = sizeof(float) * (size_t)n * ldy;
                for (int ii = 0; ii < N_ISAS; ii++) {
                    const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
                    if (!kt) continue;
                    /* whole range, then split at a random row, then row by row */
                    for (int split = 0; split < 3; split++) {
                        float *y = guarded_alloc(ybytes);
                        if (split == 0) {
                            kt->f16_gemm(w16, k, x, n, y, ldy, 0, m);
                        } else if (split == 1) {
                            const int cut = (int)(rnd() % (unsigned)(m + 1));
                            kt->f16_gemm(w16, k, x, n, y, ldy, 0, cut);
                            kt->f16_gemm(w16, k, x, n, y, ldy, cut, m);
                        } else {
                            for (int r = 0; r < m; r++) kt->f16_gemm(w16, k, x, n, y, ldy, r, r + 1);
                        }
                        CHECK(guard_ok(y, ybytes), "%s f16_gemm overran (m=%d k=%d n=%d)", kt->name, m, k, n);
                        int bad = 0, first = -1;
                        for (int t = 0; t < n; t++) {
                            for (int r = m; r < ldy; r++)
                                CHECK(bits_of(y[(size_t)t * ldy + r]) == 0xCDCDCDCDu, "%s f16_gemm wrote the ldy gap", kt->name);
                            for (int r = 0; r < m; r++)
                                if (bits_of(y[(size_t)t * ldy + r]) != bits_of(want[(size_t)t * m + r])) {
                                    if (first < 0) first = t * m + r;
                                    bad++;
                                }
                        }
                        CHECK(bad == 0, "%s f16_gemm (m=%d k=%d n=%d split=%d): %d of %d differ from the fmaf chain, "
                              "first (t=%d r=%d) %.9g vs %.9g", kt->name, m, k, n, split, bad, n * m,
                              first < 0 ? 0 : first / m, first < 0 ? 0 : first % m,
                              first < 0 ? 0.0 : y[(size_t)(first / m) * ldy + first % m], first < 0 ? 0.0 : want[first]);
                        free(y);
                        cases++;
                    }
                }
                free(want);
                free(w16);
                free(w);
                free(x);
            }
    printf("  f16_gemm: %d (ISA, shape, n, split) cases bit-identical to the fmaf chain; chain vs exact %.2e of Σ|w·x|\n",
           cases, worst);
}

/* ---- attention ------------------------------------------------------------------------- */

static void test_attention(void) {
    static const int Ts[] = {1, 2, 17, 300};
    /* GQA groups of 1, 4, 4 and 20 (more than BN_ATTN_GROUP: split) */
    static const int heads[][2] = {{4, 4}, {8, 2}, {20, 5}, {20, 1}};
    static const int hds[] = {1, 3, 64, 128};
    double worst = 0;
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
        for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++)
            for (size_t di = 0; di < sizeof hds / sizeof hds[0]; di++) {
                const int T = Ts[ti], H = heads[hi][0], KV = heads[hi][1], hd = hds[di];
                const int stride = KV * hd + (int)(di % 2) * 5; /* padded cache rows too */
                const size_t qbytes = sizeof(float) * (size_t)H * hd, cbytes = sizeof(float) * (size_t)T * stride;
                float *q = malloc(qbytes), *k = malloc(cbytes), *v = malloc(cbytes);
                /* every other problem has sharp scores (|scale·q·k| up to ~100) */
                const float qs = (ti + hi + di) % 2 ? 1.0f : 100.0f / sqrtf((float)hd);
                for (int i = 0; i < H * hd; i++) q[i] = qs * rnd_float();
                /* values representable in f16, so the f16-cache kernel sees the same numbers */
                uint16_t *kh = malloc(sizeof(uint16_t) * (size_t)T * stride), *vh = malloc(sizeof(uint16_t) * (size_t)T * stride);
                for (size_t i = 0; i < (size_t)T * stride; i++) {
                    kh[i] = float_to_half(rnd_float());
                    vh[i] = float_to_half(2.0f * rnd_float());
                    k[i] = (float)half_value(kh[i]);
                    v[i] = (float)half_value(vh[i]);
                }
                const float scale = 1.0f / sqrtf((float)hd);
                /* double reference and condition Σ p|v| */
                double *exact = malloc(sizeof(double) * H * hd), *mag = malloc(sizeof(double) * H * hd);
                double *p = malloc(sizeof(double) * T);
                for (int h = 0; h < H; h++) {
                    const int g = h / (H / KV);
                    double mx = -INFINITY, sum = 0;
                    for (int t = 0; t < T; t++) {
                        double s = 0;
                        for (int d = 0; d < hd; d++) s += (double)q[h * hd + d] * k[(size_t)t * stride + g * hd + d];
                        p[t] = (double)scale * s;
                        mx = p[t] > mx ? p[t] : mx;
                    }
                    for (int t = 0; t < T; t++) sum += (p[t] = exp(p[t] - mx));
                    for (int d = 0; d < hd; d++) {
                        double o = 0, m = 0;
                        for (int t = 0; t < T; t++) {
                            o += p[t] / sum * v[(size_t)t * stride + g * hd + d];
                            m += p[t] / sum * fabs(v[(size_t)t * stride + g * hd + d]);
                        }
                        exact[h * hd + d] = o;
                        mag[h * hd + d] = m;
                    }
                }
                float *ref = NULL;
                for (int ii = 0; ii < N_ISAS; ii++) {
                    const bn_kernels *kt = bn_kernels_for(all_isas[ii]);
                    if (!kt) continue;
                    const size_t sbytes = sizeof(float) * BN_ATTN_GROUP * (size_t)T;
                    float *out = guarded_alloc(qbytes), *scores = guarded_alloc(sbytes);
                    /* two threads' worth of heads: [0, H/2 + 1) and the rest */
                    const int cut = H / 2 + 1;
                    kt->attention(q, k, v, stride, T, H, KV, hd, scale, scores, out, 0, cut, 0);
                    for (int i = cut * hd; i < H * hd; i++)
                        CHECK(bits_of(out[i]) == 0xCDCDCDCDu, "%s attention wrote a head outside its range", kt->name);
                    kt->attention(q, k, v, stride, T, H, KV, hd, scale, scores, out, cut, H, 0);
                    CHECK(guard_ok(out, qbytes) && guard_ok(scores, sbytes), "%s attention overran (T=%d H=%d hd=%d)",
                          kt->name, T, H, hd);
                    {   /* the f16-cache kernel: the same bits as the f32 one on the same values
                         * (called with BN_ATTN_RESIDENT, the f32 one without: flags change nothing) */
                        float *o16 = guarded_alloc(qbytes);
                        kt->attention_f16(q, kh, vh, stride, T, H, KV, hd, scale, scores, o16, 0, cut, BN_ATTN_RESIDENT);
                        kt->attention_f16(q, kh, vh, stride, T, H, KV, hd, scale, scores, o16, cut, H, BN_ATTN_RESIDENT);
                        const bn_kernels *twin = kt->attention_f16 == bn_kernels_for(BN_ISA_SCALAR)->attention_f16
                                                     ? bn_kernels_for(BN_ISA_SCALAR) : kt;
                        float *o32 = out;
                        if (twin != kt) {
                            o32 = guarded_alloc(qbytes);
                            twin->attention(q, k, v, stride, T, H, KV, hd, scale, scores, o32, 0, H, 0);
                        }
                        CHECK(memcmp(o16, o32, qbytes) == 0 && guard_ok(o16, qbytes) && guard_ok(scores, sbytes),
                              "%s attention_f16 != attention on the same values (T=%d H=%d KV=%d hd=%d)", kt->name, T, H,
                              KV, hd);
                        if (o32 != out) free(o32);
                        free(o16);
                    }
                    {   /* one head per call gives the same bits as the grouped calls, flags or not */
                        float *single = guarded_alloc(qbytes);
                        for (int h = 0; h < H; h++)
                            kt->attention(q, k, v, stride, T, H, KV, hd, scale, scores, single, h, h + 1,
                                          h % 2 ? BN_ATTN_RESIDENT : 0);
                        CHECK(memcmp(single, out, qbytes) == 0, "%s attention depends on the head grouping (T=%d H=%d KV=%d)",
                              kt->name, T, H, KV);
                        free(single);
                    }
                    for (int i = 0; i < H * hd; i++) {
                        const double want = ref ? ref[i] : exact[i];
                        const double err = fabs((double)out[i] - want);
                        if (ref && err / mag[i] > worst) worst = err / mag[i];
                        CHECK(err <= TOL_SUM * mag[i] + 1e-30, "%s attention (T=%d H=%d KV=%d hd=%d i=%d): %g vs %g", kt->name,
                              T, H, KV, hd, i, out[i], want);
                    }
                    free(scores);
                    if (!ref)
                        ref = out;
                    else
                        free(out);
                }
                free(ref);
                free(exact);
                free(mag);
                free(p);
                free(q);
                free(k);
                free(v);
                free(kh);
                free(vh);
            }
    printf("  worst attention SIMD vs scalar %.2e (of Σp|v|)\n", worst);
}

int main(void) {
    test_tables();
    test_f16();
    test_vector_ops();
    test_softmax();
    test_gates();
    test_rope();
    /* both walks of the streaming kernels: with their software prefetch
     * (Intel) and without (AMD, where a lone activation row walks the two
     * halves of the rows side by side) */
    for (int prefetch = 0; prefetch <= 1; prefetch++) {
        bn_set_stream_prefetch(prefetch);
        printf("  streaming kernels' software prefetch %s:\n", prefetch ? "on" : "off");
        test_f16_panels();
        test_f16_gemm();
    }
    bn_set_stream_prefetch(-1);
    test_attention();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
