/* Which of the instruction-set features the engine is compiled for (x86-64-v3: AVX, AVX2, FMA, F16C, BMI1/2,
 * LZCNT, MOVBE) the running CPU lacks. Compiled for baseline x86-64, so it runs on any x86-64 CPU before any
 * engine code does. */
#pragma once

/* The missing features as "avx2, fma" (empty when none, and always empty on other architectures): a static string,
 * owned by the library. Any thread. */
const char *kd_cpu_missing_features(void);
