#include "services/core/request_tracker.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "services/core/testing/fake_clock.h"

namespace fedrx::core {
namespace {

using namespace std::chrono_literals;
using Outcome = RequestTracker::Outcome;

constexpr ChannelId kChannel = 0;
constexpr ChannelId kOtherChannel = 1;

codec::Message Answer(const std::string& correlation_id, std::string detail) {
  codec::Message m = MakeMessage(codec::Ack{std::move(detail)});
  m.header.message_id = "rep-" + correlation_id;
  m.header.correlation_id = correlation_id;
  return m;
}

std::string DetailOf(const Result<codec::Message>& r) {
  if (!r.ok()) return "error: " + r.status().ToString();
  return std::get<codec::Ack>(r->body).detail;
}

class RequestTrackerTest : public ::testing::Test {
 protected:
  double Rejected(const std::string& reason) const {
    return metrics_.Read("fedrx_tracker_test_rejected_total", {{"reason", reason}});
  }

  // Tracks `id` on `channel`; its outcome lands in results_[id].
  void TrackInto(const std::string& id, std::chrono::milliseconds timeout,
                 ChannelId channel = kChannel) {
    ASSERT_TRUE(tracker_
                    .Track(channel, id, "Ack", timeout,
                           [this, id](Result<codec::Message>&& r) {
                             ++calls_[id];
                             results_.insert_or_assign(id, std::move(r));
                           })
                    .ok());
  }

  Bus::PushHandler RecordPushes() {
    return [this](codec::Message&& m) { pushes_.push_back(std::get<codec::Ack>(m.body).detail); };
  }

  Metrics metrics_{"tracker_test"};
  testing::FakeClock clock_;
  RequestTracker tracker_{"tracker-test", metrics_, clock_};
  std::map<std::string, Result<codec::Message>> results_;
  std::map<std::string, int> calls_;
  std::vector<std::string> pushes_;
};

TEST_F(RequestTrackerTest, RepliesAnsweredOutOfOrderReachTheirOwnCallbacks) {
  TrackInto("r0", 1s);
  TrackInto("r1", 1s);
  TrackInto("r2", 1s);
  ASSERT_EQ(tracker_.pending(), 3u);

  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r2", "two"), RecordPushes()), Outcome::kReply);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "zero"), RecordPushes()), Outcome::kReply);
  EXPECT_EQ(tracker_.pending(), 1u);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r1", "one"), RecordPushes()), Outcome::kReply);

  EXPECT_EQ(tracker_.pending(), 0u);
  EXPECT_EQ(DetailOf(results_.at("r0")), "zero");
  EXPECT_EQ(DetailOf(results_.at("r1")), "one");
  EXPECT_EQ(DetailOf(results_.at("r2")), "two");
  EXPECT_EQ(results_.at("r2")->header.correlation_id, "r2");
  EXPECT_EQ(calls_, (std::map<std::string, int>{{"r0", 1}, {"r1", 1}, {"r2", 1}}));
  EXPECT_TRUE(pushes_.empty());
}

TEST_F(RequestTrackerTest, SecondReplyToAnsweredRequestIsAPush) {
  TrackInto("r0", 1s);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "first"), RecordPushes()), Outcome::kReply);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "again"), RecordPushes()), Outcome::kPush);
  EXPECT_EQ(calls_.at("r0"), 1);
  EXPECT_EQ(pushes_, (std::vector<std::string>{"again"}));
}

TEST_F(RequestTrackerTest, ErrorBodyBecomesStatusWithCodeMessageAndWhere) {
  TrackInto("r0", 1s);
  codec::Message error = MakeMessage(
      codec::Error{codec::ErrorCode::kNotFound, "no study named s-9", "CreateStudy.study_id"});
  error.header.correlation_id = "r0";

  EXPECT_EQ(tracker_.OnMessage(kChannel, std::move(error), RecordPushes()), Outcome::kReply);
  const Result<codec::Message>& r = results_.at("r0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no study named s-9");
  EXPECT_EQ(r.status().where(), "CreateStudy.study_id");
}

TEST_F(RequestTrackerTest, UnknownOrMissingCorrelationGoesToThePushHandler) {
  TrackInto("r0", 1s);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("nobody-asked", "stray"), RecordPushes()),
            Outcome::kPush);
  EXPECT_EQ(tracker_.OnMessage(kChannel, MakeMessage(codec::Ack{"plain push"}), RecordPushes()),
            Outcome::kPush);
  EXPECT_EQ(pushes_, (std::vector<std::string>{"stray", "plain push"}));
  EXPECT_EQ(tracker_.pending(), 1u);
  EXPECT_EQ(calls_.count("r0"), 0u);
  EXPECT_EQ(Rejected("unhandled_push"), 0);
}

TEST_F(RequestTrackerTest, ReplyOnAnotherChannelDoesNotAnswerTheRequest) {
  TrackInto("r0", 1s, kChannel);
  EXPECT_EQ(tracker_.OnMessage(kOtherChannel, Answer("r0", "wrong wire"), RecordPushes()),
            Outcome::kPush);
  EXPECT_EQ(tracker_.pending(), 1u);
  EXPECT_EQ(pushes_, (std::vector<std::string>{"wrong wire"}));
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "right wire"), RecordPushes()),
            Outcome::kReply);
  EXPECT_EQ(DetailOf(results_.at("r0")), "right wire");
}

TEST_F(RequestTrackerTest, PushWithoutAHandlerIsDroppedAndCounted) {
  EXPECT_EQ(tracker_.OnMessage(kChannel, MakeMessage(codec::Ack{"x"}), nullptr),
            Outcome::kUnhandledPush);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("unknown", "y"), nullptr),
            Outcome::kUnhandledPush);
  EXPECT_EQ(Rejected("unhandled_push"), 2);
}

TEST_F(RequestTrackerTest, RequestExpiresAtItsDeadlineAndNotBefore) {
  TrackInto("req-hold-1", 50ms);
  clock_.Advance(49ms);
  EXPECT_EQ(tracker_.ExpireDue(), 0u);
  EXPECT_EQ(calls_.count("req-hold-1"), 0u);

  clock_.Advance(1ms);
  EXPECT_EQ(tracker_.ExpireDue(), 1u);
  ASSERT_EQ(calls_.at("req-hold-1"), 1);
  const Status& s = results_.at("req-hold-1").status();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(s.message(), "no reply to Ack within 50 ms");
  EXPECT_EQ(s.where(), "request req-hold-1");
  EXPECT_EQ(tracker_.pending(), 0u);
  EXPECT_EQ(tracker_.ExpireDue(), 0u);
  EXPECT_EQ(calls_.at("req-hold-1"), 1);
}

TEST_F(RequestTrackerTest, LateReplyIsDroppedAndCountedNotPushed) {
  TrackInto("r0", 10ms);
  clock_.Advance(10ms);
  ASSERT_EQ(tracker_.ExpireDue(), 1u);

  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "too late"), RecordPushes()),
            Outcome::kLateReply);
  EXPECT_EQ(Rejected("late_reply"), 1);
  EXPECT_EQ(calls_.at("r0"), 1);
  EXPECT_EQ(results_.at("r0").status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(pushes_.empty());
}

TEST_F(RequestTrackerTest, ExpiresEarliestDeadlineFirstAndReportsTheNextDeadline) {
  EXPECT_EQ(tracker_.NextDeadline(), std::nullopt);
  const auto start = clock_.Now();
  std::vector<std::string> order;
  for (const auto& [id, timeout] :
       std::vector<std::pair<std::string, std::chrono::milliseconds>>{
           {"slow", 300ms}, {"fast", 100ms}, {"fast-too", 100ms}, {"mid", 200ms}}) {
    ASSERT_TRUE(tracker_
                    .Track(kChannel, id, "Ack", timeout,
                           [&order, id = id](Result<codec::Message>&&) { order.push_back(id); })
                    .ok());
  }
  EXPECT_EQ(tracker_.NextDeadline(), start + 100ms);

  clock_.Advance(250ms);
  EXPECT_EQ(tracker_.ExpireDue(), 3u);
  EXPECT_EQ(order, (std::vector<std::string>{"fast", "fast-too", "mid"}));
  EXPECT_EQ(tracker_.NextDeadline(), start + 300ms);

  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("slow", "in time"), nullptr), Outcome::kReply);
  EXPECT_EQ(tracker_.NextDeadline(), std::nullopt);
  clock_.Advance(1s);
  EXPECT_EQ(tracker_.ExpireDue(), 0u);
  EXPECT_EQ(order, (std::vector<std::string>{"fast", "fast-too", "mid", "slow"}));
}

TEST_F(RequestTrackerTest, RemembersOnlyTheNewestExpiredIds) {
  RequestTracker small("small", metrics_, clock_, /*expired_memory=*/2);
  for (const std::string id : {"a", "b", "c"}) {
    ASSERT_TRUE(small.Track(kChannel, id, "Ack", 10ms, [](Result<codec::Message>&&) {}).ok());
    clock_.Advance(10ms);
    ASSERT_EQ(small.ExpireDue(), 1u);
  }
  // "a" was forgotten when "c" expired: its reply is now just a push.
  EXPECT_EQ(small.OnMessage(kChannel, Answer("a", "1"), RecordPushes()), Outcome::kPush);
  EXPECT_EQ(small.OnMessage(kChannel, Answer("b", "2"), RecordPushes()), Outcome::kLateReply);
  EXPECT_EQ(small.OnMessage(kChannel, Answer("c", "3"), RecordPushes()), Outcome::kLateReply);
  EXPECT_EQ(pushes_, (std::vector<std::string>{"1"}));
  EXPECT_EQ(Rejected("late_reply"), 2);
}

TEST_F(RequestTrackerTest, SecondRequestWithAPendingIdIsRefused) {
  TrackInto("r0", 1s);
  Status again = tracker_.Track(kChannel, "r0", "Ack", 1s, [](Result<codec::Message>&&) {
    ADD_FAILURE() << "the refused request's callback ran";
  });
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(again.message(), "a request with message id r0 is already pending");
  EXPECT_EQ(tracker_.pending(), 1u);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("r0", "ok"), nullptr), Outcome::kReply);
  EXPECT_EQ(DetailOf(results_.at("r0")), "ok");
}

TEST_F(RequestTrackerTest, StartTracksOnlyWhatWasSent) {
  std::vector<std::string> sent;
  const auto send_ok = [&](codec::Message&& m) {
    sent.push_back(m.header.message_id);
    return Status::Ok();
  };
  codec::Message first = MakeMessage(codec::Ack{"q"});
  first.header.message_id = "r0";
  int first_calls = 0;
  ASSERT_TRUE(tracker_
                  .Start(kChannel, std::move(first), 1s,
                         [&](Result<codec::Message>&&) { ++first_calls; }, send_ok)
                  .ok());
  EXPECT_EQ(tracker_.pending(), 1u);

  // A duplicate id is refused before anything is sent.
  codec::Message duplicate = MakeMessage(codec::Ack{"q"});
  duplicate.header.message_id = "r0";
  EXPECT_EQ(tracker_
                .Start(kChannel, std::move(duplicate), 1s,
                       [](Result<codec::Message>&&) { ADD_FAILURE() << "duplicate called back"; },
                       send_ok)
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(sent, (std::vector<std::string>{"r0"}));

  // A failed send leaves nothing pending and never calls back.
  codec::Message unsent = MakeMessage(codec::Ack{"q"});
  unsent.header.message_id = "r1";
  Status s = tracker_.Start(
      kChannel, std::move(unsent), 1s,
      [](Result<codec::Message>&&) { ADD_FAILURE() << "an unsent request was called back"; },
      [](codec::Message&&) { return ResourceExhausted("send queue is full", "test"); });
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(tracker_.pending(), 1u);
  clock_.Advance(2s);
  EXPECT_EQ(tracker_.ExpireDue(), 1u);  // r0 only
  EXPECT_EQ(first_calls, 1);
}

TEST_F(RequestTrackerTest, CallbacksMayIssueNewRequests) {
  ASSERT_TRUE(tracker_
                  .Track(kChannel, "first", "Ack", 10ms,
                         [this](Result<codec::Message>&&) { TrackInto("retry", 10ms); })
                  .ok());
  clock_.Advance(10ms);
  EXPECT_EQ(tracker_.ExpireDue(), 1u);
  EXPECT_EQ(tracker_.pending(), 1u);
  EXPECT_EQ(tracker_.NextDeadline(), clock_.Now() + 10ms);
  EXPECT_EQ(tracker_.OnMessage(kChannel, Answer("retry", "done"), nullptr), Outcome::kReply);
  EXPECT_EQ(DetailOf(results_.at("retry")), "done");
}

}  // namespace
}  // namespace fedrx::core
