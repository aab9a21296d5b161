#include "services/ml/study_spec.h"

namespace fedrx::ml {

NetSpec NetSpecFromStudy(const codec::StudySpec& spec) {
  NetSpec net;
  net.input_dim = spec.model.input_dim;
  net.hidden = spec.model.hidden;
  net.num_tasks = spec.model.num_tasks;
  net.dropout = spec.model.dropout;
  return net;
}

}  // namespace fedrx::ml
