// FakeBus behaviour beyond the Bus conformance suite: the identity a test can
// give a client in place of CURVE authentication.
#include "services/core/testing/fake_bus.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/metrics.h"
#include "services/core/testing/fake_clock.h"

namespace fedrx::core::testing {
namespace {

TEST(FakeBusTest, ServerSeesTheIdentitySetForAClientAndNoneOtherwise) {
  FakeClock clock;
  FakeNetwork network;
  Metrics metrics("fake");
  FakeBus server(network, BusOptions{"server"}, metrics, clock);
  FakeBus site(network, BusOptions{"site-a"}, metrics, clock);
  FakeBus anonymous(network, BusOptions{"anonymous"}, metrics, clock);
  network.SetIdentity("site-a", Identity{"inst-7", "site"});
  network.SetIdentity("raw-1", Identity{"inst-9", "admin"});

  std::vector<Inbound> seen;
  ASSERT_TRUE(
      server.Serve("tcp://127.0.0.1:*", [&](Inbound&& in) { seen.push_back(std::move(in)); }).ok());
  Result<ChannelId> a = site.Connect(server.ServedEndpoint(), nullptr);
  Result<ChannelId> b = anonymous.Connect(server.ServedEndpoint(), nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(site.Send(*a, MakeMessage(codec::Ack{"from site"})).ok());
  ASSERT_TRUE(anonymous.Send(*b, MakeMessage(codec::Ack{"from anonymous"})).ok());
  codec::Message raw = MakeMessage(codec::Ack{"from raw"});
  raw.header.schema_version = codec::kSchemaVersion;
  raw.header.message_id = "raw-message-1";
  network.InjectRaw(server.ServedEndpoint(), "raw-1", codec::Encode(std::move(raw)));
  network.Pump();

  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(std::get<codec::Ack>(seen[0].message.body).detail, "from site");
  EXPECT_EQ(seen[0].identity, "inst-7");
  EXPECT_EQ(seen[0].role, "site");
  EXPECT_EQ(seen[1].identity, "");
  EXPECT_EQ(seen[1].role, "");
  EXPECT_EQ(seen[2].identity, "inst-9");
  EXPECT_EQ(seen[2].role, "admin");
}

}  // namespace
}  // namespace fedrx::core::testing
