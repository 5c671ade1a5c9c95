#pragma once

// limits.per_user_inflight (API.md "Limits"): how many uploads and
// conversions one user may have in flight on this node at once. A node
// has two gates of that size: one for the HTTP sessions (an upload holds
// a place from its head until it is answered, so its body is not read
// when the user has none left) and one for the format cache (a conversion
// of the user's recording holds a place until it ends; requests that join
// a running conversion take none). Two, because conversions may be
// started by others (holders of the user's signed links, anyone with auth
// off): they must never lock the user out of uploading.
// Beyond the bound a request is answered 429 with Retry-After, so one
// user's client, hostile or buggy, cannot fill the conversion queue or
// the spool folder that every other user shares.
//
// A plain class (no actor): written by hand, a counter per user under one
// mutex, each critical section a hash lookup; threads of both sides share
// it.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace phonon::actors {

class user_gate : public std::enable_shared_from_this<user_gate> {
public:
  /// One request counted against its user until the ticket goes.
  class ticket {
  public:
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket();

  private:
    friend class user_gate;
    ticket(std::shared_ptr<user_gate> gate, int64_t user);
    void release() noexcept;

    std::shared_ptr<user_gate> gate_;
    int64_t user_ = 0;
  };

  /// `limit`: requests one user may have in flight; 0 = no bound.
  static std::shared_ptr<user_gate> make(int limit);

  /// A ticket when `user` has fewer than the limit in flight; nullopt
  /// when the request must be refused.
  std::optional<ticket> try_enter(int64_t user);

  /// Requests of `user` in flight now.
  int in_flight(int64_t user) const;

  /// Users with at least one request in flight (their counters are
  /// dropped at zero, so a flood of user ids leaves nothing behind).
  size_t users() const;

  int limit() const noexcept {
    return limit_;
  }

private:
  explicit user_gate(int limit) : limit_(limit) {}
  void leave(int64_t user) noexcept;

  const int limit_;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, int> counts_;
};

} // namespace phonon::actors
