#ifndef SLUICE_KERNELS_H
#define SLUICE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

// Vector scan kernels, chosen at run time by what the CPU has (x86-64: AVX-512 VNNI, AVX2;
// arm64: NEON with or without the dot-product extension; else a portable loop), so that users
// need no build flag and one binary runs on every CPU of its architecture.

/// out[r] = dot(query, rows + r * stride) over `dimension` int8 lanes, for r in 0 ..< count.
/// Lanes must lie in [-127, 127] (symmetric quantisation never writes -128).
void sluice_scan_i8(const int8_t *query, const int8_t *rows, size_t count, size_t stride, size_t dimension, int32_t *out);

/// out[r] = dot(query, rows + r * stride) over `dimension` floats, for r in 0 ..< count.
void sluice_scan_f32(const float *query, const float *rows, size_t count, size_t stride, size_t dimension, float *out);


/// The kernels in use: "avx512-vnni", "avx2", "neon-dotprod", "neon" or "portable". `force`
/// (tests, benchmarks; for the calling thread only): 0 = best available, 1 = portable, 2 = the
/// first vector level (avx2 or neon, if the CPU has it).
const char *sluice_kernels_name(void);
void sluice_kernels_force(int force);

/// Whether `needle` occurs in `haystack` (memmem: linear in the haystack).
int sluice_contains_bytes(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/// glibc only (elsewhere a no-op returning 0): blocks of `threshold` bytes and more are mapped
/// on their own and given back to the system when freed, whatever was freed before (glibc
/// otherwise raises its threshold to each large block freed, and serves later ones from arenas
/// that keep the memory). Returns 1 when applied.
int sluice_map_large_allocations(size_t threshold);

/// glibc 2.33 and later (elsewhere 0): bytes free inside the allocator's heap arenas, which
/// the process still holds (mallinfo2's `fordblks`). Walks every arena, locking each in turn.
size_t sluice_allocator_free_bytes(void);

/// glibc only (elsewhere a no-op returning 0): gives the pages of free chunks in every arena
/// back to the system (`malloc_trim(0)`; the chunks stay free). Returns 1 when any page range
/// was advised back, including ones already given back before.
int sluice_allocator_release_free(void);

#endif
