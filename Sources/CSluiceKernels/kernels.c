#include "SluiceKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

// Each level has one function per row (`dot_*`) and the scan is the same loop around it.
#define SCAN_LOOPS(attr, level, name, lane, acc)                                                           \
    attr static void scan_##name##_##level(const lane *q, const lane *rows, size_t count, size_t stride,   \
                                           size_t dim, acc *out) {                                        \
        for (size_t r = 0; r < count; r++) out[r] = dot_##name##_##level(q, rows + r * stride, dim);       \
    }

// ---- portable -------------------------------------------------------------------------------

// int32 holds the sum up to 133,000 lanes of ±127 × ±127; vectors have at most 4,096.
static inline int32_t dot_int8_portable(const int8_t *q, const int8_t *row, size_t dim) {
    int32_t acc = 0;
    for (size_t i = 0; i < dim; i++) acc += (int32_t)q[i] * (int32_t)row[i];
    return acc;
}

static inline float dot_float_portable(const float *q, const float *row, size_t dim) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        a0 += q[i] * row[i];
        a1 += q[i + 1] * row[i + 1];
        a2 += q[i + 2] * row[i + 2];
        a3 += q[i + 3] * row[i + 3];
    }
    for (; i < dim; i++) a0 += q[i] * row[i];
    return (a0 + a1) + (a2 + a3);
}

SCAN_LOOPS(, portable, int8, int8_t, int32_t)
SCAN_LOOPS(, portable, float, float, float)

#if defined(__x86_64__)

// ---- AVX2 -----------------------------------------------------------------------------------

__attribute__((target("avx2,fma")))
static inline int32_t hsum256_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// |q| (unsigned) times b with q's sign: maddubs multiplies u8 by s8 into s16 pairs; with lanes
// in [-127, 127] a pair sums to at most 2 * 127 * 127 = 32258, so it never saturates.
__attribute__((target("avx2,fma")))
static inline int32_t dot_int8_avx2(const int8_t *q, const int8_t *row, size_t dim) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t blocks = dim / 32;
    __m256i acc = _mm256_setzero_si256();
    for (size_t b = 0; b < blocks; b++) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(q + b * 32));
        __m256i v = _mm256_loadu_si256((const __m256i *)(row + b * 32));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(v, a));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    int32_t sum = hsum256_epi32(acc);
    for (size_t i = blocks * 32; i < dim; i++) sum += (int32_t)q[i] * (int32_t)row[i];
    return sum;
}

__attribute__((target("avx2,fma")))
static inline float dot_float_avx2(const float *q, const float *row, size_t dim) {
    size_t blocks = dim / 16;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + b * 16), _mm256_loadu_ps(row + b * 16), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + b * 16 + 8), _mm256_loadu_ps(row + b * 16 + 8), a1);
    }
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 0x55));
    float sum = _mm_cvtss_f32(h);
    for (size_t i = blocks * 16; i < dim; i++) sum += q[i] * row[i];
    return sum;
}

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
SCAN_LOOPS(TARGET_AVX2, avx2, int8, int8_t, int32_t)
SCAN_LOOPS(TARGET_AVX2, avx2, float, float, float)

// ---- AVX-512 VNNI ---------------------------------------------------------------------------

// vpdpbusd: u8 x s8 products summed four at a time into s32 lanes, in one instruction.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static inline int32_t dot_int8_vnni(const int8_t *q, const int8_t *row, size_t dim) {
    size_t blocks = dim / 64;
    size_t tail = dim - blocks * 64;
    const __m512i zero = _mm512_setzero_si512();
    __m512i acc = _mm512_setzero_si512();
    for (size_t b = 0; b < blocks; b++) {
        __m512i a = _mm512_loadu_si512((const void *)(q + b * 64));
        __m512i v = _mm512_loadu_si512((const void *)(row + b * 64));
        __mmask64 negative = _mm512_movepi8_mask(a);
        __m512i signedV = _mm512_mask_sub_epi8(v, negative, zero, v);
        acc = _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(a), signedV);
    }
    if (tail) {
        __mmask64 tailMask = ~0ULL >> (64 - tail);
        __m512i a = _mm512_maskz_loadu_epi8(tailMask, q + blocks * 64);
        __m512i v = _mm512_maskz_loadu_epi8(tailMask, row + blocks * 64);
        __mmask64 negative = _mm512_movepi8_mask(a);
        __m512i signedV = _mm512_mask_sub_epi8(v, negative, zero, v);
        acc = _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(a), signedV);
    }
    return _mm512_reduce_add_epi32(acc);
}

__attribute__((target("avx512f")))
static inline float dot_float_avx512(const float *q, const float *row, size_t dim) {
    size_t blocks = dim / 16;
    size_t tail = dim - blocks * 16;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16), _mm512_loadu_ps(row + b * 16), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16 + 16), _mm512_loadu_ps(row + b * 16 + 16), a1);
    }
    for (; b < blocks; b++) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16), _mm512_loadu_ps(row + b * 16), a0);
    if (tail) {
        __mmask16 tailMask = (__mmask16)((1u << tail) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tailMask, q + blocks * 16), _mm512_maskz_loadu_ps(tailMask, row + blocks * 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

#define TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
SCAN_LOOPS(TARGET_VNNI, vnni, int8, int8_t, int32_t)
#define dot_float_vnni dot_float_avx512
SCAN_LOOPS(TARGET_VNNI, vnni, float, float, float)

#endif

#if defined(__aarch64__)

// ---- NEON -----------------------------------------------------------------------------------

// Baseline AArch64 (every arm64 CPU): widening s8 x s8 -> s16 products (127 * 127 fits), then
// pairwise-added into s32 lanes.
static inline int32_t dot_int8_neon(const int8_t *q, const int8_t *row, size_t dim) {
    int32x4_t acc = vdupq_n_s32(0);
    size_t blocks = dim / 16;
    for (size_t b = 0; b < blocks; b++) {
        int8x16_t a = vld1q_s8(q + b * 16), v = vld1q_s8(row + b * 16);
        acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(v)));
        acc = vpadalq_s16(acc, vmull_high_s8(a, v));
    }
    int32_t sum = vaddvq_s32(acc);
    for (size_t i = blocks * 16; i < dim; i++) sum += (int32_t)q[i] * (int32_t)row[i];
    return sum;
}

static inline float dot_float_neon(const float *q, const float *row, size_t dim) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0), a2 = vdupq_n_f32(0), a3 = vdupq_n_f32(0);
    size_t blocks = dim / 16;
    for (size_t b = 0; b < blocks; b++) {
        const float *x = q + b * 16, *y = row + b * 16;
        a0 = vfmaq_f32(a0, vld1q_f32(x), vld1q_f32(y));
        a1 = vfmaq_f32(a1, vld1q_f32(x + 4), vld1q_f32(y + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(x + 8), vld1q_f32(y + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(x + 12), vld1q_f32(y + 12));
    }
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (size_t i = blocks * 16; i < dim; i++) sum += q[i] * row[i];
    return sum;
}

SCAN_LOOPS(, neon, int8, int8_t, int32_t)
SCAN_LOOPS(, neon, float, float, float)

// The dot-product extension (Armv8.2 SDOT, most arm64 servers since 2018): four s8 x s8
// products summed into each s32 lane in one instruction.
__attribute__((target("arch=armv8.2-a+dotprod")))
static inline int32_t dot_int8_sdot(const int8_t *q, const int8_t *row, size_t dim) {
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    size_t blocks = dim / 32;
    for (size_t b = 0; b < blocks; b++) {
        acc0 = vdotq_s32(acc0, vld1q_s8(q + b * 32), vld1q_s8(row + b * 32));
        acc1 = vdotq_s32(acc1, vld1q_s8(q + b * 32 + 16), vld1q_s8(row + b * 32 + 16));
    }
    int32_t sum = vaddvq_s32(vaddq_s32(acc0, acc1));
    for (size_t i = blocks * 32; i < dim; i++) sum += (int32_t)q[i] * (int32_t)row[i];
    return sum;
}

#define TARGET_SDOT __attribute__((target("arch=armv8.2-a+dotprod")))
SCAN_LOOPS(TARGET_SDOT, sdot, int8, int8_t, int32_t)

#endif

// ---- dispatch -------------------------------------------------------------------------------

// Per thread: a test or benchmark that forces a level changes only its own thread's scans.
static _Thread_local int forced = 0;

// The level numbers are shared by both architectures: 2 is the first vector level, 3 the best.
enum level { PORTABLE = 1, AVX2 = 2, VNNI = 3, NEON = 2, SDOT = 3 };

static int detect(void);

static int detected = 0;  // the CPU's best level, found once (a benign race: every thread finds the same)

static int level_now(void) {
    int best = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (!best) {
        best = detect();
        __atomic_store_n(&detected, best, __ATOMIC_RELAXED);
    }
    int f = forced;
    if (f && f < best) return f;
    return best;
}

static int detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int best = PORTABLE;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = AVX2;
    if (best == AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni")) best = VNNI;
    return best;
#elif defined(__aarch64__)
    int best = NEON;  // Advanced SIMD is part of every AArch64 CPU
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) best = SDOT;
#elif defined(__APPLE__)
    best = SDOT;  // every Apple arm64 CPU has it
#endif
    return best;
#else
    return PORTABLE;
#endif
}

void sluice_kernels_force(int force) { forced = force; }

const char *sluice_kernels_name(void) {
    switch (level_now()) {
#if defined(__x86_64__)
    case VNNI: return "avx512-vnni";
    case AVX2: return "avx2";
#elif defined(__aarch64__)
    case SDOT: return "neon-dotprod";
    case NEON: return "neon";
#endif
    default: return "portable";
    }
}

void sluice_scan_i8(const int8_t *query, const int8_t *rows, size_t count, size_t stride, size_t dimension, int32_t *out) {
    switch (level_now()) {
#if defined(__x86_64__)
    case VNNI: scan_int8_vnni(query, rows, count, stride, dimension, out); return;
    case AVX2: scan_int8_avx2(query, rows, count, stride, dimension, out); return;
#elif defined(__aarch64__)
    case SDOT: scan_int8_sdot(query, rows, count, stride, dimension, out); return;
    case NEON: scan_int8_neon(query, rows, count, stride, dimension, out); return;
#endif
    default: scan_int8_portable(query, rows, count, stride, dimension, out); return;
    }
}


void sluice_scan_f32(const float *query, const float *rows, size_t count, size_t stride, size_t dimension, float *out) {
    switch (level_now()) {
#if defined(__x86_64__)
    case VNNI: scan_float_vnni(query, rows, count, stride, dimension, out); return;
    case AVX2: scan_float_avx2(query, rows, count, stride, dimension, out); return;
#elif defined(__aarch64__)
    case SDOT:
    case NEON: scan_float_neon(query, rows, count, stride, dimension, out); return;
#endif
    default: scan_float_portable(query, rows, count, stride, dimension, out); return;
    }
}

