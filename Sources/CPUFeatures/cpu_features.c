#include "cpu_features.h"
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

static char missing[128];

static void need(int present, const char *name) {
    if (present) return;
    if (missing[0]) strcat(missing, ", ");
    strcat(missing, name);
}

const char *kd_cpu_missing_features(void) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    missing[0] = 0;
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned leaf1_ecx = c;
    int os_saves_ymm = 0;
    if (leaf1_ecx & bit_OSXSAVE) {
        unsigned lo, hi;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        os_saves_ymm = (lo & 6) == 6; /* the OS saves SSE and AVX state */
    }
    a = b = c = d = 0;
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    unsigned leaf7_ebx = b;
    a = b = c = d = 0;
    __get_cpuid(0x80000001, &a, &b, &c, &d);
    unsigned ext_ecx = c;
    need((leaf1_ecx & bit_AVX) && os_saves_ymm, "avx");
    need(leaf7_ebx & bit_AVX2, "avx2");
    need(leaf1_ecx & bit_FMA, "fma");
    need(leaf1_ecx & bit_F16C, "f16c");
    need(leaf7_ebx & bit_BMI, "bmi1");
    need(leaf7_ebx & bit_BMI2, "bmi2");
    need(ext_ecx & bit_LZCNT, "lzcnt");
    need(leaf1_ecx & bit_MOVBE, "movbe");
    return missing;
}
#else
const char *kd_cpu_missing_features(void) { return ""; }
#endif
