#include "SluiceKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---- portable -------------------------------------------------------------------------------

static void scan_i8_portable(const int8_t *q, const int8_t *rows, size_t count, size_t stride, size_t dim, int32_t *out) {
    for (size_t r = 0; r < count; r++) {
        const int8_t *row = rows + r * stride;
        int32_t acc = 0;
        for (size_t i = 0; i < dim; i++) acc += (int32_t)q[i] * (int32_t)row[i];
        out[r] = acc;
    }
}

static void scan_f32_portable(const float *q, const float *rows, size_t count, size_t stride, size_t dim, float *out) {
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * stride;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        size_t i = 0;
        for (; i + 4 <= dim; i += 4) {
            a0 += q[i] * row[i];
            a1 += q[i + 1] * row[i + 1];
            a2 += q[i + 2] * row[i + 2];
            a3 += q[i + 3] * row[i + 3];
        }
        for (; i < dim; i++) a0 += q[i] * row[i];
        out[r] = (a0 + a1) + (a2 + a3);
    }
}

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
static void scan_i8_avx2(const int8_t *q, const int8_t *rows, size_t count, size_t stride, size_t dim, int32_t *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t blocks = dim / 32;
    for (size_t r = 0; r < count; r++) {
        const int8_t *row = rows + r * stride;
        __m256i acc = _mm256_setzero_si256();
        for (size_t b = 0; b < blocks; b++) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(q + b * 32));
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + b * 32));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(v, a));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
        }
        int32_t sum = hsum256_epi32(acc);
        for (size_t i = blocks * 32; i < dim; i++) sum += (int32_t)q[i] * (int32_t)row[i];
        out[r] = sum;
    }
}

__attribute__((target("avx2,fma")))
static void scan_f32_avx2(const float *q, const float *rows, size_t count, size_t stride, size_t dim, float *out) {
    size_t blocks = dim / 16;
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * stride;
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
        out[r] = sum;
    }
}

// ---- AVX-512 VNNI ---------------------------------------------------------------------------

// vpdpbusd: u8 x s8 products summed four at a time into s32 lanes, in one instruction.
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void scan_i8_vnni(const int8_t *q, const int8_t *rows, size_t count, size_t stride, size_t dim, int32_t *out) {
    size_t blocks = dim / 64;
    size_t tail = dim - blocks * 64;
    __mmask64 tailMask = tail ? (~0ULL >> (64 - tail)) : 0;
    const __m512i zero = _mm512_setzero_si512();
    for (size_t r = 0; r < count; r++) {
        const int8_t *row = rows + r * stride;
        __m512i acc = _mm512_setzero_si512();
        for (size_t b = 0; b < blocks; b++) {
            __m512i a = _mm512_loadu_si512((const void *)(q + b * 64));
            __m512i v = _mm512_loadu_si512((const void *)(row + b * 64));
            __mmask64 negative = _mm512_movepi8_mask(a);
            __m512i signedV = _mm512_mask_sub_epi8(v, negative, zero, v);
            acc = _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(a), signedV);
        }
        if (tail) {
            __m512i a = _mm512_maskz_loadu_epi8(tailMask, q + blocks * 64);
            __m512i v = _mm512_maskz_loadu_epi8(tailMask, row + blocks * 64);
            __mmask64 negative = _mm512_movepi8_mask(a);
            __m512i signedV = _mm512_mask_sub_epi8(v, negative, zero, v);
            acc = _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(a), signedV);
        }
        out[r] = _mm512_reduce_add_epi32(acc);
    }
}

__attribute__((target("avx512f")))
static void scan_f32_avx512(const float *q, const float *rows, size_t count, size_t stride, size_t dim, float *out) {
    size_t blocks = dim / 16;
    size_t tail = dim - blocks * 16;
    __mmask16 tailMask = (__mmask16)(tail ? ((1u << tail) - 1) : 0);
    for (size_t r = 0; r < count; r++) {
        const float *row = rows + r * stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        size_t b = 0;
        for (; b + 2 <= blocks; b += 2) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16), _mm512_loadu_ps(row + b * 16), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16 + 16), _mm512_loadu_ps(row + b * 16 + 16), a1);
        }
        for (; b < blocks; b++) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + b * 16), _mm512_loadu_ps(row + b * 16), a0);
        if (tail) a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tailMask, q + blocks * 16), _mm512_maskz_loadu_ps(tailMask, row + blocks * 16), a1);
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

#endif

// ---- dispatch -------------------------------------------------------------------------------

// Per thread: a test or benchmark that forces a level changes only its own thread's scans.
static _Thread_local int forced = 0;

enum level { PORTABLE = 1, AVX2 = 2, VNNI = 3 };

static int detect(void);

static int detected = 0;  // the CPU's best level, found once (a benign race: every thread finds the same)

static int level_now(void) {
#if defined(__x86_64__)
    int best = __atomic_load_n(&detected, __ATOMIC_RELAXED);
    if (!best) {
        best = detect();
        __atomic_store_n(&detected, best, __ATOMIC_RELAXED);
    }
    int f = forced;
    if (f && f < best) return f;
    return best;
#else
    return PORTABLE;
#endif
}

static int detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    int best = PORTABLE;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = AVX2;
    if (best == AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni")) best = VNNI;
    return best;
#else
    return PORTABLE;
#endif
}

void sluice_kernels_force(int force) { forced = force; }

const char *sluice_kernels_name(void) {
    switch (level_now()) {
    case VNNI: return "avx512-vnni";
    case AVX2: return "avx2";
    default: return "portable";
    }
}

void sluice_scan_i8(const int8_t *query, const int8_t *rows, size_t count, size_t stride, size_t dimension, int32_t *out) {
#if defined(__x86_64__)
    switch (level_now()) {
    case VNNI: scan_i8_vnni(query, rows, count, stride, dimension, out); return;
    case AVX2: scan_i8_avx2(query, rows, count, stride, dimension, out); return;
    default: break;
    }
#endif
    scan_i8_portable(query, rows, count, stride, dimension, out);
}

void sluice_scan_f32(const float *query, const float *rows, size_t count, size_t stride, size_t dimension, float *out) {
#if defined(__x86_64__)
    switch (level_now()) {
    case VNNI: scan_f32_avx512(query, rows, count, stride, dimension, out); return;
    case AVX2: scan_f32_avx2(query, rows, count, stride, dimension, out); return;
    default: break;
    }
#endif
    scan_f32_portable(query, rows, count, stride, dimension, out);
}
