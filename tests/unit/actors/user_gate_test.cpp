#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "actors/user_gate.hpp"

using phonon::actors::user_gate;

TEST_CASE("user gate: a user gets at most `limit` tickets; others are not "
          "affected; a ticket that goes frees its place",
          "[unit][actors][limits]") {
  auto gate = user_gate::make(2);
  auto a1 = gate->try_enter(7);
  auto a2 = gate->try_enter(7);
  REQUIRE(a1);
  REQUIRE(a2);
  CHECK(gate->in_flight(7) == 2);
  CHECK_FALSE(gate->try_enter(7));
  CHECK(gate->in_flight(7) == 2); // a refusal counts nothing
  // Another user is not held up by user 7.
  auto b = gate->try_enter(8);
  CHECK(b);
  a1.reset();
  CHECK(gate->in_flight(7) == 1);
  auto a3 = gate->try_enter(7);
  CHECK(a3);
  // Moved tickets release once.
  auto moved = std::move(*a3);
  a3.reset();
  CHECK(gate->in_flight(7) == 2);
  {
    auto gone = std::move(moved);
  }
  CHECK(gate->in_flight(7) == 1);
  a2.reset();
  b.reset();
  // Counters of idle users are dropped.
  CHECK(gate->users() == 0);
}

TEST_CASE("user gate: limit 0 is no bound", "[unit][actors][limits]") {
  auto gate = user_gate::make(0);
  std::vector<user_gate::ticket> held;
  for (int i = 0; i < 1000; ++i) {
    auto t = gate->try_enter(1);
    REQUIRE(t);
    held.push_back(std::move(*t));
  }
  CHECK(gate->in_flight(1) == 1000);
  held.clear();
  CHECK(gate->users() == 0);
}

TEST_CASE("user gate: threads never hold more than the limit of one user",
          "[unit][actors][limits]") {
  auto gate = user_gate::make(3);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto ticket = gate->try_enter(42);
        if (!ticket) {
          ++refused;
          continue;
        }
        auto now = ++inside;
        for (auto seen = most.load(); now > seen
                                      && !most.compare_exchange_weak(seen,
                                                                     now);) {
        }
        --inside;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(most.load() <= 3);
  CHECK(most.load() >= 1);
  CHECK(gate->users() == 0);
}
