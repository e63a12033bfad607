// Checks every kernel level the CPU has against a plain loop: int8 exactly, float within
// rounding, every tail length, and the int8 extremes at the largest dimension (4,096). Built for another architecture and run
// under qemu-user by tests/kernels/check-arm64.sh (this machine is x86-64; the NEON
// kernels are tested that way).
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "SluiceKernels.h"

static unsigned long long state = 7;
static unsigned long long next(void) { state += 0x9E3779B97F4A7C15ULL; unsigned long long z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL; return z ^ (z >> 31); }

int main(void) {
    static const size_t dims[] = {1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 127, 384, 400, 4096};
    int failures = 0, levels = 0;
    const char *previous = "";
    // Forcing asks for a level no better than the one named; a CPU without it stays at its own
    // best, which the previous pass already checked.
    for (int force = 3; force >= 1; force--) {
        sluice_kernels_force(force);
        const char *name = sluice_kernels_name();
        if (strcmp(name, previous) == 0) continue;
        previous = name;
        levels++;
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            size_t dim = dims[d], stride = dim + 3, count = 37;
            int8_t *q = malloc(dim), *rows = malloc(count * stride);
            float *fq = malloc(dim * 4), *frows = malloc(count * stride * 4);
            for (size_t i = 0; i < dim; i++) { q[i] = i % 5 == 0 ? 127 : (int8_t)((int)(next() % 255) - 127); fq[i] = (float)((int)(next() % 2001) - 1000) / 1000; }
            for (size_t i = 0; i < count * stride; i++) { rows[i] = i % 7 == 0 ? -127 : (int8_t)((int)(next() % 255) - 127); frows[i] = (float)((int)(next() % 2001) - 1000) / 1000; }
            if (dim == 4096) {  // the largest sums: every lane ±127
                for (size_t i = 0; i < dim; i++) q[i] = (i & 1) ? -127 : 127;
                for (size_t i = 0; i < count * stride; i++) rows[i] = (i % 3) ? -127 : 127;
            }
            int32_t out[37]; float fout[37];
            sluice_scan_i8(q, rows, count, stride, dim, out);
            sluice_scan_f32(fq, frows, count, stride, dim, fout);
            for (size_t r = 0; r < count; r++) {
                int32_t e = 0; float fe = 0;
                for (size_t i = 0; i < dim; i++) {
                    e += q[i] * rows[r * stride + i];
                    fe += fq[i] * frows[r * stride + i];
                }
                if (out[r] != e || fabsf(fout[r] - fe) > 1e-4f * dim) {
                    if (failures++ < 5) printf("FAIL %s dim %zu row %zu: %d/%d %f/%f\n", name, dim, r, out[r], e, fout[r], fe);
                }
            }
            free(q); free(rows); free(fq); free(frows);
        }
        printf("%s: checked\n", name);
    }
    printf("%d levels, %d failures\n", levels, failures);
    return failures != 0;
}
