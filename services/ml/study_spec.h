// The network a study's spec describes, as the ML core sees it. Pure function.
#pragma once

#include "messages/codec/message.h"
#include "services/ml/model.h"

namespace fedrx::ml {

NetSpec NetSpecFromStudy(const codec::StudySpec& spec);

}  // namespace fedrx::ml
