#include "actors/user_gate.hpp"

#include <utility>

namespace phonon::actors {

user_gate::ticket::ticket(std::shared_ptr<user_gate> gate, int64_t user)
  : gate_(std::move(gate)), user_(user) {
  // nop
}

user_gate::ticket::ticket(ticket&& other) noexcept
  : gate_(std::move(other.gate_)), user_(other.user_) {
  // nop
}

user_gate::ticket& user_gate::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = std::move(other.gate_);
    user_ = other.user_;
  }
  return *this;
}

user_gate::ticket::~ticket() {
  release();
}

void user_gate::ticket::release() noexcept {
  if (gate_) {
    gate_->leave(user_);
    gate_.reset();
  }
}

std::shared_ptr<user_gate> user_gate::make(int limit) {
  return std::shared_ptr<user_gate>{new user_gate(limit)};
}

std::optional<user_gate::ticket> user_gate::try_enter(int64_t user) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    auto& n = counts_[user];
    if (limit_ > 0 && n >= limit_)
      return std::nullopt;
    ++n;
  }
  return ticket{shared_from_this(), user};
}

void user_gate::leave(int64_t user) noexcept {
  std::lock_guard<std::mutex> guard{mu_};
  auto i = counts_.find(user);
  if (i == counts_.end())
    return;
  if (--i->second <= 0)
    counts_.erase(i);
}

int user_gate::in_flight(int64_t user) const {
  std::lock_guard<std::mutex> guard{mu_};
  auto i = counts_.find(user);
  return i == counts_.end() ? 0 : i->second;
}

size_t user_gate::users() const {
  std::lock_guard<std::mutex> guard{mu_};
  return counts_.size();
}

} // namespace phonon::actors
