/* Compiles the header as C so that a C compiler, not only Swift's importer, checks it on every build. */
#include "kandinsky_plugin.h"

_Static_assert(sizeof(kd_version_t) == 12, "kd_version_t layout");
