/* A plugin that dies on purpose, for the fault-isolation tests: compiled with -DPLUGIN_ID="..." and one of
 * -DDIE_IN_INIT (segfault in init), -DDIE_SEGV, -DDIE_ABORT or -DDIE_EXIT (segfault, abort() or exit(0) in run). */
#include "kandinsky_plugin.h"
#include <stdlib.h>

static const kd_plugin_desc_t desc_ = {sizeof(kd_plugin_desc_t), PLUGIN_ID, "Crashing", "1", "dies on purpose",
                                        0, 0, 0, 0, 0, 0};

static void die(void) {
#if defined(DIE_ABORT)
    abort();
#elif defined(DIE_EXIT)
    exit(0);
#else
    volatile int *nowhere = NULL;
    *nowhere = 1; /* a real fault: a raised SIGSEGV returned here (a handler in the process caught it) */
#endif
}

static bool init(const kd_host_t *host) {
    (void)host;
#ifdef DIE_IN_INIT
    die();
#endif
    return true;
}

static uint32_t count(void) { return 1; }
static const kd_plugin_desc_t *desc(uint32_t i) { (void)i; return &desc_; }

static kd_status run(uint32_t i, const kd_run_context_t *ctx) {
    (void)i;
    (void)ctx;
    die();
    return KD_ERR_FAILED;
}

static const kd_plugin_entry_t entry = {sizeof(kd_plugin_entry_t), {KD_ABI_MAJOR, KD_ABI_MINOR, 0}, init, count, desc,
                                        run};
KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
