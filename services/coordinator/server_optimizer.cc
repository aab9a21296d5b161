#include "services/coordinator/server_optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fedrx::coordinator {
namespace {

// Serialized state: magic, format version, kind, steps, parameter count,
// then m and v as little-endian float32 (the host order of every platform
// the coordinator runs on).
constexpr char kMagic[4] = {'F', 'X', 'S', 'O'};
constexpr std::uint8_t kFormat = 1;
constexpr std::size_t kHeader = 4 + 1 + 1 + 8 + 8;

bool UsesM(ServerOptimizer::Kind k) { return k != ServerOptimizer::Kind::kFedAvg; }
bool UsesV(ServerOptimizer::Kind k) {
  return k == ServerOptimizer::Kind::kFedAdagrad || k == ServerOptimizer::Kind::kFedAdam ||
         k == ServerOptimizer::Kind::kFedYogi;
}

core::Status Bad(const std::string& what, const char* field) {
  return core::InvalidArgument(what, std::string("StudySpec.") + field);
}

}  // namespace

core::Result<ServerOptimizer> ServerOptimizer::Create(const ServerOptimizerOptions& o) {
  Kind kind;
  if (o.name.empty() || o.name == "fedavg") {
    kind = Kind::kFedAvg;
  } else if (o.name == "fedavgm") {
    kind = Kind::kFedAvgM;
  } else if (o.name == "fedadagrad") {
    kind = Kind::kFedAdagrad;
  } else if (o.name == "fedadam") {
    kind = Kind::kFedAdam;
  } else if (o.name == "fedyogi") {
    kind = Kind::kFedYogi;
  } else {
    return Bad("unknown server optimizer '" + o.name +
                   "' (known: fedavg, fedavgm, fedadagrad, fedadam, fedyogi)",
               "server_optimizer");
  }
  if (!(o.learning_rate > 0 && o.learning_rate <= 100)) {
    return Bad("server_learning_rate must be in (0, 100]", "server_learning_rate");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return Bad("server_beta1 must be in [0, 1)", "server_beta1");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) return Bad("server_beta2 must be in [0, 1)", "server_beta2");
  if (!(o.tau > 0 && o.tau <= 10)) return Bad("server_tau must be in (0, 10]", "server_tau");
  ServerOptimizerOptions options = o;
  if (options.name.empty()) options.name = "fedavg";
  return ServerOptimizer(kind, std::move(options));
}

core::Result<ServerOptimizer> ServerOptimizer::FromStudy(const codec::StudySpec& spec) {
  ServerOptimizerOptions o;
  o.name = spec.server_optimizer;
  o.learning_rate = spec.server_learning_rate;
  o.beta1 = spec.server_beta1;
  o.beta2 = spec.server_beta2;
  o.tau = spec.server_tau;
  return Create(o);
}

const char* ServerOptimizer::name() const {
  switch (kind_) {
    case Kind::kFedAvg: return "fedavg";
    case Kind::kFedAvgM: return "fedavgm";
    case Kind::kFedAdagrad: return "fedadagrad";
    case Kind::kFedAdam: return "fedadam";
    case Kind::kFedYogi: return "fedyogi";
  }
  return "unknown";
}

void ServerOptimizer::Reset() {
  steps_ = 0;
  m_.clear();
  v_.clear();
}

void ServerOptimizer::Initialise(std::size_t parameters) {
  if (UsesM(kind_)) m_.assign(parameters, 0.0f);
  if (UsesV(kind_)) v_.assign(parameters, options_.tau * options_.tau);
}

core::Status ServerOptimizer::Step(std::span<const float> global, std::vector<float>& aggregate) {
  if (global.size() != aggregate.size()) {
    return core::InvalidArgument("aggregate has " + std::to_string(aggregate.size()) +
                                     " parameters, the global model " +
                                     std::to_string(global.size()),
                                 "ServerOptimizer::Step");
  }
  const std::size_t n = global.size();
  if ((UsesM(kind_) && m_.size() != n) || (UsesV(kind_) && v_.size() != n)) Initialise(n);
  const float eta = options_.learning_rate, b1 = options_.beta1, b2 = options_.beta2,
              tau = options_.tau;
  float* x = aggregate.data();  // holds the aggregate, becomes the next model
  const float* g = global.data();
  switch (kind_) {
    case Kind::kFedAvg:
      if (!identity()) {
        for (std::size_t i = 0; i < n; ++i) x[i] = g[i] + eta * (x[i] - g[i]);
      }
      break;
    case Kind::kFedAvgM:
      for (std::size_t i = 0; i < n; ++i) {
        const float delta = x[i] - g[i];
        m_[i] = b1 * m_[i] + delta;
        x[i] = g[i] + eta * m_[i];
      }
      break;
    case Kind::kFedAdagrad:
    case Kind::kFedAdam:
    case Kind::kFedYogi:
      for (std::size_t i = 0; i < n; ++i) {
        const float delta = x[i] - g[i];
        const float d2 = delta * delta;
        m_[i] = b1 * m_[i] + (1.0f - b1) * delta;
        float& v = v_[i];
        if (kind_ == Kind::kFedAdagrad) {
          v = v + d2;
        } else if (kind_ == Kind::kFedAdam) {
          v = b2 * v + (1.0f - b2) * d2;
        } else {
          const float diff = v - d2;
          const float sign = diff > 0 ? 1.0f : (diff < 0 ? -1.0f : 0.0f);
          v = v - (1.0f - b2) * d2 * sign;
        }
        x[i] = g[i] + eta * m_[i] / (std::sqrt(v) + tau);
      }
      break;
  }
  ++steps_;
  return core::Status::Ok();
}

std::string ServerOptimizer::SerializeState() const {
  const std::uint64_t count = std::max(m_.size(), v_.size());
  std::string out(kHeader + (m_.size() + v_.size()) * sizeof(float), '\0');
  char* p = out.data();
  std::memcpy(p, kMagic, 4);
  p[4] = static_cast<char>(kFormat);
  p[5] = static_cast<char>(kind_);
  std::memcpy(p + 6, &steps_, 8);
  std::memcpy(p + 14, &count, 8);
  p += kHeader;
  if (!m_.empty()) std::memcpy(p, m_.data(), m_.size() * sizeof(float));
  p += m_.size() * sizeof(float);
  if (!v_.empty()) std::memcpy(p, v_.data(), v_.size() * sizeof(float));
  return out;
}

core::Status ServerOptimizer::RestoreState(std::string_view b, std::size_t parameters) {
  const auto bad = [](const std::string& what) {
    return core::Status(core::StatusCode::kDataLoss, "stored server optimizer state " + what,
                        "server optimizer state");
  };
  if (b.size() < kHeader || std::memcmp(b.data(), kMagic, 4) != 0 ||
      static_cast<std::uint8_t>(b[4]) != kFormat) {
    return bad("is not in a known format");
  }
  if (static_cast<std::uint8_t>(b[5]) != static_cast<std::uint8_t>(kind_)) {
    return bad("belongs to another optimizer");
  }
  std::uint64_t steps = 0, count = 0;
  std::memcpy(&steps, b.data() + 6, 8);
  std::memcpy(&count, b.data() + 14, 8);
  const std::size_t vectors = (UsesM(kind_) ? 1 : 0) + (UsesV(kind_) ? 1 : 0);
  // count 0: the moments were never initialised (no step yet).
  if (vectors > 0 && count != 0 && count != parameters) {
    return bad("has " + std::to_string(count) + " parameters, the model " +
               std::to_string(parameters));
  }
  if (b.size() != kHeader + vectors * count * sizeof(float)) return bad("has a ragged size");
  Reset();
  steps_ = steps;
  const char* p = b.data() + kHeader;
  if (UsesM(kind_) && count > 0) {
    m_.resize(count);
    std::memcpy(m_.data(), p, count * sizeof(float));
    p += count * sizeof(float);
  }
  if (UsesV(kind_) && count > 0) {
    v_.resize(count);
    std::memcpy(v_.data(), p, count * sizeof(float));
  }
  return core::Status::Ok();
}

}  // namespace fedrx::coordinator
