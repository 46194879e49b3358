#include "CFinchSIMD.h"
#include <cpuid.h>

// cpuid rather than __builtin_cpu_supports: no dependence on the runtime's CPU-model table.
int cfinch_cpu_has_avx512bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;   // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;   // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (!(f && bw && vl) || a < 1) return 0;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a >> 5) & 1;   // AVX512_BF16
}
