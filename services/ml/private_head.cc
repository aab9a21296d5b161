#include "services/core/random.h"
#include "services/ml/private_head.h"

#include <cmath>
#include <filesystem>
#include <fstream>

namespace fedrx::ml {
namespace {

// One step of splitmix64 from state x.
std::uint64_t Mix(std::uint64_t x) { return core::SplitMix64(x); }

std::string JoinTasks(const std::vector<std::string>& tasks) {
  std::string s;
  for (const auto& t : tasks) s += (s.empty() ? "" : ",") + t;
  return s;
}

}  // namespace

std::uint64_t PrivateHeadSeed(std::uint64_t study_seed, const std::string& site_id) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a of the id
  for (unsigned char c : site_id) h = (h ^ c) * 0x100000001b3ULL;
  return Mix(Mix(study_seed ^ 0x4ead5eedULL) ^ h);
}

core::Status SaveHeadFile(const std::string& path, const std::vector<std::string>& tasks,
                          const std::vector<float>& head, const std::string& where) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << "fedrx-head 1\n" << JoinTasks(tasks) << "\n" << head.size() << "\n";
    out.write(reinterpret_cast<const char*>(head.data()),
              static_cast<std::streamsize>(head.size() * sizeof(float)));
    if (!out.good()) return core::Unavailable("cannot write " + tmp, where);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return core::Unavailable("cannot rename " + tmp + ": " + ec.message(), where);
  return core::Status::Ok();
}

core::Result<std::vector<float>> ReadHeadFile(const std::string& path,
                                              const std::vector<std::string>& tasks,
                                              std::size_t expected) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("cannot open the private head file", path);
  std::string magic, names, count;
  std::getline(in, magic);
  std::getline(in, names);
  std::getline(in, count);
  if (magic != "fedrx-head 1") {
    return core::InvalidArgument("not a private head file (it does not start with 'fedrx-head 1')",
                                 path);
  }
  const std::string want_tasks = JoinTasks(tasks);
  if (names != want_tasks) {
    return core::InvalidArgument(
        "the head is of tasks '" + names + "', the site's data has '" + want_tasks + "'", path);
  }
  const std::string want = std::to_string(expected);
  const auto header = static_cast<std::size_t>(in.tellg());
  in.seekg(0, std::ios::end);
  const auto payload = static_cast<std::size_t>(in.tellg()) - header;
  if (count != want || payload != expected * sizeof(float)) {
    return core::InvalidArgument("the head has " + count + " parameters in " +
                                     std::to_string(payload) + " bytes; a head of " + std::to_string(tasks.size()) +
                                     " task(s) on this trunk needs " + want + " (" +
                                     std::to_string(expected * sizeof(float)) + " bytes)",
                                 path);
  }
  std::vector<float> head(expected);
  in.seekg(static_cast<std::streamoff>(header));
  in.read(reinterpret_cast<char*>(head.data()),
          static_cast<std::streamsize>(expected * sizeof(float)));
  if (static_cast<std::size_t>(in.gcount()) != expected * sizeof(float)) {
    return core::InvalidArgument("the head file is truncated", path);
  }
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (!std::isfinite(head[i])) {
      return core::InvalidArgument("head parameter " + std::to_string(i) + " is not finite", path);
    }
  }
  return head;
}

}  // namespace fedrx::ml
