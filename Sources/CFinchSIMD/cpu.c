#include "CFinchSIMD.h"
#include <cpuid.h>

// cpuid rather than __builtin_cpu_supports: no dependence on the runtime's CPU-model table.
// 1 when the CPU executes AVX512-F/BW/VL and the OS saves the zmm state.
static int has_avx512_base(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;   // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;   // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && bw && vl;
}

int cfinch_cpu_has_avx512(void) {
    static int state = -1;
    if (state < 0) {
        unsigned a, b, c, d;
        state = has_avx512_base() && __get_cpuid(1, &a, &b, &c, &d) && ((c >> 12) & 1);   // + FMA (AVX2 comes with F)
    }
    return state;
}

int cfinch_cpu_has_avx512bf16(void) {
    unsigned a, b, c, d;
    if (!has_avx512_base() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return 0;
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a >> 5) & 1;   // AVX512_BF16
}

int cfinch_cpu_has_avx512vnni(void) {
    static int state = -1;   // cpuid is slow in VMs: asked once (a benign race: every thread computes the same)
    if (state < 0) {
        unsigned a, b, c, d;
        int ok = has_avx512_base() && __get_cpuid_count(7, 0, &a, &b, &c, &d);
        // AVX512_VNNI (c bit 11); the kernels also use AVX2, FMA and F16C, which every such CPU has.
        state = ok && ((c >> 11) & 1) && __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1) && ((c >> 12) & 1);
    }
    return state;
}

int cfinch_cpu_has_f16c(void) {
    static int state = -1;
    if (state < 0) {
        unsigned a, b, c, d, lo = 0, hi;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1) && ((c >> 28) & 1)   // OSXSAVE, AVX
                 && ((c >> 29) & 1) && ((c >> 12) & 1);                                   // F16C, FMA
        if (ok) __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        ok = ok && (lo & 6) == 6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 5) & 1);   // ymm state, AVX2
        state = ok;
    }
    return state;
}
