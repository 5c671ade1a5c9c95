// The read model's publishing rules: a view read before a change is never
// published after it, files belong to one revision, and the bound holds.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "actors/read_model.hpp"

using phonon::actors::file_ref;
using phonon::actors::read_model;
using phonon::persistence::recording;

namespace {

recording row(int64_t user, int64_t phrase, int64_t revision) {
  recording r;
  r.user_id = user;
  r.phrase_id = phrase;
  r.revision = revision;
  return r;
}

file_ref facts(const std::string& path) {
  file_ref f;
  f.path = path;
  f.size = 10;
  f.etag = "\"" + path + "\"";
  return f;
}

} // namespace

TEST_CASE("a published row and its files are found until invalidated",
          "[unit][read_model]") {
  read_model m{100};
  CHECK(m.find(1, 2) == nullptr);
  auto gen = m.generation(1, 2);
  REQUIRE(m.publish_row(row(1, 2, 7), gen));
  REQUIRE(m.publish_file(row(1, 2, 7), gen, "m4a", facts("a")));
  auto v = m.find(1, 2);
  REQUIRE(v);
  CHECK(v->row.revision == 7);
  REQUIRE(v->file("m4a"));
  CHECK(v->file("m4a")->facts.path == "a");
  CHECK(v->file("mp3") == nullptr);
  m.invalidate(1, 2);
  CHECK(m.find(1, 2) == nullptr);
  // The view taken before stays whole for whoever holds it.
  CHECK(v->file("m4a")->facts.path == "a");
  auto st = m.snapshot();
  CHECK(st.hits == 1);
  CHECK(st.misses == 2);
  CHECK(st.entries == 0);
}

TEST_CASE("what a miss read before a change is never published after it",
          "[unit][read_model]") {
  read_model m{100};
  auto before = m.generation(1, 2);
  m.invalidate(1, 2); // a PUT or DELETE answered meanwhile
  CHECK_FALSE(m.publish_row(row(1, 2, 7), before));
  CHECK(m.find(1, 2) == nullptr);
  auto now = m.generation(1, 2);
  REQUIRE(m.publish_row(row(1, 2, 8), now));
  m.forget_file(1, 2, 8, "mp3"); // an eviction moves the generation too
  CHECK_FALSE(m.publish_file(row(1, 2, 8), now, "mp3", facts("old")));
  CHECK(m.find(1, 2)->file("mp3") == nullptr);
}

TEST_CASE("files are kept only for the revision they belong to",
          "[unit][read_model]") {
  read_model m{100};
  auto gen = m.generation(3, 4);
  REQUIRE(m.publish_row(row(3, 4, 1), gen));
  REQUIRE(m.publish_file(row(3, 4, 1), gen, "wav", facts("w1")));
  // The same revision published again keeps its files.
  REQUIRE(m.publish_row(row(3, 4, 1), gen));
  CHECK(m.find(3, 4)->file("wav") != nullptr);
  // A file of another revision is refused.
  CHECK_FALSE(m.publish_file(row(3, 4, 2), gen, "mp3", facts("x")));
  // A new revision's row starts without files.
  REQUIRE(m.publish_row(row(3, 4, 2), gen));
  CHECK(m.find(3, 4)->file("wav") == nullptr);
  // Newer facts of a format replace the ones the view held.
  REQUIRE(m.publish_file(row(3, 4, 2), gen, "flac", facts("f1")));
  REQUIRE(m.publish_file(row(3, 4, 2), gen, "flac", facts("f2")));
  CHECK(m.find(3, 4)->file("flac")->facts.path == "f2");
  // An eviction of one format keeps the others.
  REQUIRE(m.publish_file(row(3, 4, 2), gen, "mp3", facts("m")));
  REQUIRE(m.publish_file(row(3, 4, 2), gen, "ogg", facts("o")));
  m.forget_file(3, 4, 2, "mp3");
  auto v = m.find(3, 4);
  CHECK(v->file("mp3") == nullptr);
  CHECK(v->file("ogg") != nullptr);
}

TEST_CASE("the read model keeps its bound and can be off",
          "[unit][read_model]") {
  read_model off{0};
  CHECK_FALSE(off.publish_row(row(1, 1, 1), off.generation(1, 1)));
  CHECK(off.find(1, 1) == nullptr);
  read_model m{64};
  for (int64_t p = 1; p <= 10000; ++p)
    m.publish_row(row(1, p, 1), m.generation(1, p));
  // One entry per shard at most (64 / 64 shards).
  CHECK(m.snapshot().entries <= 64);
}

TEST_CASE("readers on other threads see whole views while a writer "
          "changes them",
          "[unit][read_model]") {
  read_model m{1000};
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (auto v = m.find(5, 5)) {
          // A view's files always belong to its row's revision.
          for (auto& f : v->files)
            if (f->facts.path != std::to_string(v->row.revision))
              ++torn;
        }
      }
    });
  for (int64_t rev = 1; rev <= 20000; ++rev) {
    auto gen = m.generation(5, 5);
    m.publish_row(row(5, 5, rev), gen);
    m.publish_file(row(5, 5, rev), gen, "m4a", facts(std::to_string(rev)));
    if (rev % 3 == 0)
      m.invalidate(5, 5);
  }
  stop = true;
  for (auto& t : readers)
    t.join();
  CHECK(torn == 0);
}

TEST_CASE("hot reads touch a file at most once per interval",
          "[unit][read_model]") {
  phonon::actors::view_file f{"mp3", facts("m")};
  CHECK(read_model::should_touch(f, 10000));
  CHECK_FALSE(read_model::should_touch(f, 10500));
  CHECK(read_model::should_touch(f, 11000));
}
