// The statistics fields of a StudySpec (statistic, statistic_rows) travel in
// CreateStudy and come back as sent; a spec without them decodes as a model
// study (empty statistic).
#include <gtest/gtest.h>

#include "messages/codec/codec.h"
#include "messages/codec/message.h"

namespace fedrx::codec {
namespace {

Message RoundTrip(Body body) {
  Message m;
  m.header.message_id = "m-1";
  m.body = std::move(body);
  Decoded d = Decode(Encode(std::move(m)));
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  return std::move(d.message());
}

TEST(StudySpecStatisticTest, PairCountsFieldsSurviveTheRoundTrip) {
  StudySpec s;
  s.study_id = "reverse-counts";
  s.statistic = "pair_counts";
  s.statistic_rows = {"CT_TOX", "FDA_APPROVED"};
  s.tasks = {"SR-MMP", "SR-p53"};
  s.secure_aggregation = true;
  const StudySpec got = std::get<CreateStudy>(RoundTrip(CreateStudy{s}).body).study;
  EXPECT_EQ(got.statistic, "pair_counts");
  EXPECT_EQ(got.statistic_rows, (std::vector<std::string>{"CT_TOX", "FDA_APPROVED"}));
  EXPECT_EQ(got.tasks, s.tasks);
  EXPECT_TRUE(got.secure_aggregation);

  StudySpec model;
  model.study_id = "tox21-demo";
  model.tasks = {"NR-AR"};
  const StudySpec plain = std::get<CreateStudy>(RoundTrip(CreateStudy{model}).body).study;
  EXPECT_TRUE(plain.statistic.empty());
  EXPECT_TRUE(plain.statistic_rows.empty());
}

}  // namespace
}  // namespace fedrx::codec
