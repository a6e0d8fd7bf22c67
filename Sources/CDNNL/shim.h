// oneDNN's C API (Debian libdnnl-dev 2.6: an operation descriptor first, then its primitive descriptor).
#include <oneapi/dnnl/dnnl.h>
