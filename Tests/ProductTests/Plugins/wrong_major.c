/* A plugin built for a future ABI 2.0: the host must refuse it, not crash. */
#include "kandinsky_plugin.h"
static bool init(const kd_host_t *host) { (void)host; return true; }
static uint32_t count(void) { return 0; }
static const kd_plugin_desc_t *desc(uint32_t i) { (void)i; return NULL; }
static kd_status run(uint32_t i, const kd_run_context_t *ctx) { (void)i; (void)ctx; return KD_ERR_FAILED; }
static const kd_plugin_entry_t entry = {sizeof(kd_plugin_entry_t), {2, 0, 0}, init, count, desc, run};
KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
