// SPDX-License-Identifier: MIT
//
// What the first write to a heap page costs after the kernel has made it resident, against the
// second write: the reason ui/x11-frames.c writes each page of the block it prepares once from the
// process rather than only asking the kernel to populate it (MADV_POPULATE_WRITE). On the 2-vCPU
// test VM (a paravirtualised guest) the first memset of 12 MiB after a populate took ~22 ms and the
// second ~0.6 ms: the hypervisor maps a page for the process on its first touch from user space.
// On most machines both are well under a millisecond. Prints one line per round.
//
//     first-touch [MiB, 12] [rounds, 3]
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    size_t bytes = (size_t)(argc > 1 ? atoi(argv[1]) : 12) << 20;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (bytes == 0 || rounds <= 0) {
        fprintf(stderr, "usage: first-touch [MiB] [rounds]\n");
        return 2;
    }
    // As the window sets it (x11-frames.c): blocks this size come from the heap, not mmap.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    for (int r = 0; r < rounds; r++) {
        unsigned char *block = malloc(bytes);  // fresh each round: the rounds' blocks stay allocated
        if (!block)
            return 1;
        unsigned char *from = (unsigned char *)(((size_t)block + 4095) & ~(size_t)4095);
        size_t span = (bytes - (size_t)(from - block)) & ~(size_t)4095;
        double t0 = now_ms();
        int populated = -1;
#ifdef MADV_POPULATE_WRITE
        populated = madvise(from, span, MADV_POPULATE_WRITE);
#endif
        double t1 = now_ms();
        memset(block, 1, bytes);
        double t2 = now_ms();
        memset(block, 2, bytes);
        double t3 = now_ms();
        printf("%zu MiB: populate %s %.2f ms, first memset %.2f ms, second memset %.2f ms\n", bytes >> 20,
               populated == 0 ? "ok" : "unavailable", t1 - t0, t2 - t1, t3 - t2);
    }
    return 0;
}
