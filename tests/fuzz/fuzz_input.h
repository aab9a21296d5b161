// The gateway intake fuzzer's input format, shared by the fuzz target (which
// parses it) and the seed corpus generator (which writes it):
//   input   := message*
//   message := control:u8  frame_count:u8  frame * (frame_count % 5)
//   frame   := length:u16 (little-endian)  bytes[length]
// control bits 0-2: the sender (Sender, modulo kSenderCount); bits 3-5: how
// far the clock moves first (kClockSteps); bit 6: the gateway ticks (its
// readiness probe) first; bit 7: the coordinator stand-in pushes a message
// back to the sender's site. A truncated frame keeps the bytes there are.
// Header-only; stateless and thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fedrx::fuzz {

// Who sends: a plaintext connection, or what its CURVE handshake said.
enum Sender : std::uint8_t {
  kNone = 0,        // no identity (plaintext bus)
  kSite = 1,        // enrolled, active, role site
  kScientist = 2,   // enrolled, active, role scientist
  kAdmin = 3,       // enrolled, active, role admin
  kUnenrolled = 4,  // an identity the registry does not know
  kSuspended = 5,   // enrolled as a site, suspended
};
inline constexpr std::size_t kSenderCount = 6;

inline constexpr std::chrono::milliseconds kClockSteps[8] = {
    std::chrono::milliseconds(0),    std::chrono::milliseconds(1),
    std::chrono::milliseconds(100),  std::chrono::milliseconds(1000),
    std::chrono::milliseconds(2500),  // past the status cache's 2 s
    std::chrono::seconds(30),        std::chrono::minutes(6),  // past the replay window
    std::chrono::hours(1)};

// At most this many messages are read from one input, to bound its run time.
inline constexpr std::size_t kMaxMessages = 64;

struct Message {
  Sender sender = kNone;
  std::chrono::milliseconds clock_advance{0};
  bool tick = false;
  bool push_back = false;
  std::vector<std::span<const std::uint8_t>> frames;
};

inline std::uint8_t Control(Sender sender, std::size_t clock_step, bool tick, bool push_back) {
  return static_cast<std::uint8_t>(sender | (clock_step & 7) << 3 | (tick ? 0x40 : 0) |
                                   (push_back ? 0x80 : 0));
}

inline std::vector<Message> ParseInput(const std::uint8_t* data, std::size_t size) {
  std::vector<Message> out;
  std::size_t at = 0;
  while (at + 2 <= size && out.size() < kMaxMessages) {
    const std::uint8_t control = data[at];
    const std::size_t count = data[at + 1] % 5;
    at += 2;
    Message m;
    m.sender = static_cast<Sender>((control & 7) % kSenderCount);
    m.clock_advance = kClockSteps[(control >> 3) & 7];
    m.tick = (control & 0x40) != 0;
    m.push_back = (control & 0x80) != 0;
    for (std::size_t i = 0; i < count && at + 2 <= size; ++i) {
      std::size_t length = data[at] | static_cast<std::size_t>(data[at + 1]) << 8;
      at += 2;
      if (length > size - at) length = size - at;
      m.frames.emplace_back(data + at, length);
      at += length;
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Appends one message in the format above (frames longer than 65535 bytes
// are cut there).
inline void AppendMessage(std::vector<std::uint8_t>& out, std::uint8_t control,
                          const std::vector<std::vector<std::uint8_t>>& frames) {
  out.push_back(control);
  out.push_back(static_cast<std::uint8_t>(frames.size()));
  for (const auto& f : frames) {
    const std::size_t length = f.size() < 0xffff ? f.size() : 0xffff;
    out.push_back(static_cast<std::uint8_t>(length & 0xff));
    out.push_back(static_cast<std::uint8_t>(length >> 8));
    out.insert(out.end(), f.begin(), f.begin() + static_cast<std::ptrdiff_t>(length));
  }
}

}  // namespace fedrx::fuzz
