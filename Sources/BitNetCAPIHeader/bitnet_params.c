/* The C API's default parameters: plain C, so the struct_size a caller gets
 * is the one its own compiler lays out from bitnet.h. */
#include "bitnet.h"

bitnet_model_params bitnet_model_default_params(void) {
    bitnet_model_params p = {0};
    p.struct_size = (uint32_t)sizeof p;
    return p;
}

bitnet_context_params bitnet_context_default_params(void) {
    bitnet_context_params p = {0};
    p.struct_size = (uint32_t)sizeof p;
    p.kv_f16 = -1;
    return p;
}
