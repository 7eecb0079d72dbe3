/* What this machine charges for the memory accesses of BENCHMARKS.md's figure (b),
 * without cgnat: per "packet", one random 4-byte read into an index of INDEX_MB on
 * transparent huge pages (the reads of a batch of 64 prefetched first, then done, as
 * the burst's lookup stage does), and/or a replay-like stream (64 bytes copied out of
 * every 640 of 2.7 GB on 4 KB pages, as net_pcap's infinite_rx copies each stored
 * frame out of --no-huge memory). Prints the TSC cycles per packet, the best of three
 * passes over 16,777,216 packets.
 *
 *   cc -O2 -o memprobe scripts/memprobe.c
 *   ./memprobe INDEX_MB STREAM(0|1) RANDOM(0|1)
 *
 * Written for issue 13 (b); Linux, x86-64 (rdtsc, prefetcht0). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <x86intrin.h>

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static char *map(size_t n, int huge)
{
    size_t al = 2 << 20;
    char *raw = mmap(0, n + al, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    char *b = (char *)(((uintptr_t)raw + al - 1) & ~(al - 1));
    madvise(b, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(b, 1, n);
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: memprobe INDEX_MB(power of two) STREAM(0|1) RANDOM(0|1)\n");
        return 2;
    }
    size_t n = (size_t)atol(argv[1]) << 20;
    int stream = atoi(argv[2]), rnd = atoi(argv[3]);
    if (n == 0 || (n & (n - 1))) {
        fprintf(stderr, "memprobe: INDEX_MB must be a power of two\n");
        return 2;
    }
    char *idx = map(n, 1);
    size_t sn = stream ? (size_t)2700 << 20 : 0, sp = 0;
    char *src = stream ? map(sn, 0) : NULL;
    static char dst[64 * 128];
    size_t at[64], N = (size_t)1 << 24;
    uint64_t acc = 0, best = ~0ULL;
    for (int rep = 0; rep < 3; rep++) {
        uint64_t t0 = __rdtsc();
        for (size_t i = 0; i < N; i += 64) {
            if (stream)
                for (int j = 0; j < 64; j++) {
                    memcpy(dst + j * 128, src + sp, 64);
                    sp = sp + 1280 > sn ? 0 : sp + 640;
                }
            if (rnd) {
                for (int j = 0; j < 64; j++) {
                    at[j] = mix(i + j + rep * N) & (n - 1) & ~63ULL;
                    _mm_prefetch(idx + at[j], _MM_HINT_T0);
                }
                for (int j = 0; j < 64; j++)
                    acc += *(volatile uint32_t *)(idx + at[j]);
            }
            acc += dst[(i >> 6) & 127];
        }
        uint64_t t = __rdtsc() - t0;
        if (t < best)
            best = t;
    }
    printf("index %s MB, stream %d, random %d: %.1f cycles/packet (%llu)\n", argv[1], stream, rnd,
           (double)best / N, (unsigned long long)(acc & 1));
    return 0;
}
