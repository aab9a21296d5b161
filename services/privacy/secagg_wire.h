// Conversions between the secure-aggregation messages on the wire
// (codec::SecAgg*, messages/secagg.fbs) and the protocol's plain types
// (secagg_protocol.h), shared by the coordinator and the site. The *FromWire
// functions check what the codec cannot (32-byte keys, share sizes) and
// answer a malformed message with kInvalidArgument naming the field. Pure
// functions; thread-safe.
#pragma once

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/privacy/secagg_protocol.h"

namespace fedrx::privacy {

codec::SecAggParams ParamsToWire(const SecAggParams& params);
// kInvalidArgument when the parameters are out of range (SecAggParams::Validate).
core::Result<SecAggParams> ParamsFromWire(const codec::SecAggParams& params);

codec::SecAggKeyAdvertisement ToWire(const KeyAdvertisement& keys);
core::Result<KeyAdvertisement> FromWire(const codec::SecAggKeyAdvertisement& keys);

codec::SecAggRoster ToWire(const KeyRoster& roster);
core::Result<KeyRoster> FromWire(const codec::SecAggRoster& roster);

codec::SecAggBundle ToWire(const ShareBundle& bundle);
core::Result<ShareBundle> FromWire(const codec::SecAggBundle& bundle);

codec::SecAggUnmaskRequest ToWire(const UnmaskRequest& request);
UnmaskRequest FromWire(const codec::SecAggUnmaskRequest& request);

codec::SecAggShares ToWire(const ShareKeysMessage& shares);
core::Result<ShareKeysMessage> FromWire(const codec::SecAggShares& shares);

codec::SecAggUnmaskResponse ToWire(const UnmaskResponse& response);
core::Result<UnmaskResponse> FromWire(const codec::SecAggUnmaskResponse& response);

}  // namespace fedrx::privacy
