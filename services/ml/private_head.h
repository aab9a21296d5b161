// A site's private head (personalisation, as in MELLODDY): the seed it starts
// from and the file it is kept in on the site's own disk. Shared by the site
// service, which trains and stores the head, and by the lab, which scores the
// federated trunk under it on the institution's machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "services/core/status.h"

namespace fedrx::ml {

// The seed of `site_id`'s head in a study seeded `study_seed`: apart from the
// trunk's seed (the study seed itself) and from every other site's.
std::uint64_t PrivateHeadSeed(std::uint64_t study_seed, const std::string& site_id);

// The head file: the line "fedrx-head 1", the head's tasks comma-separated,
// its parameter count, then exactly that many float32 values. Written to
// `path`.tmp and renamed, so a crash leaves the previous head. kUnavailable
// (where = `where`) when it cannot be written.
core::Status SaveHeadFile(const std::string& path, const std::vector<std::string>& tasks,
                          const std::vector<float>& head, const std::string& where);
// The head at `path` when it is of exactly these tasks and `expected`
// parameters, all finite. kNotFound when there is no file; kInvalidArgument
// naming the file otherwise (not a head file, other tasks, wrong size,
// truncated, a non-finite value).
core::Result<std::vector<float>> ReadHeadFile(const std::string& path,
                                              const std::vector<std::string>& tasks,
                                              std::size_t expected);

}  // namespace fedrx::ml
