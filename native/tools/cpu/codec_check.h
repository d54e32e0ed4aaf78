// Checks of the codec kernels and the fused AdamW's non-finite reports (codec_check.cc).
#pragma once
#include "../check_util.h"

namespace bnn::tools {

// Every codec variant this CPU supports: accumulate, scaled copy and scan against scalar definitions.
void check_codec(Checks& t);

}  // namespace bnn::tools
