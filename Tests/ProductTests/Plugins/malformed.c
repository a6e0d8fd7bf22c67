/* A plugin whose descriptor has no id: skipped with a warning. */
#include "kandinsky_plugin.h"
static const kd_plugin_desc_t d = {sizeof(kd_plugin_desc_t), 0, "Broken", "1", "no id", 0, 0, 0, 0, 0, 0};
static bool init(const kd_host_t *host) { (void)host; return true; }
static uint32_t count(void) { return 1; }
static const kd_plugin_desc_t *desc(uint32_t i) { (void)i; return &d; }
static kd_status run(uint32_t i, const kd_run_context_t *ctx) { (void)i; (void)ctx; return KD_ERR_FAILED; }
static const kd_plugin_entry_t entry = {sizeof(kd_plugin_entry_t), {KD_ABI_MAJOR, KD_ABI_MINOR, 0}, init, count, desc, run};
KD_EXPORT const kd_plugin_entry_t *kandinsky_plugin_entry(void) { return &entry; }
