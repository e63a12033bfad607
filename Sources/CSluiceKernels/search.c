// memmem is a GNU extension: Swift's Glibc module does not declare it.
#define _GNU_SOURCE
#include <string.h>
#include "SluiceKernels.h"

int sluice_contains_bytes(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length) != NULL;
}
