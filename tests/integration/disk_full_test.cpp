// A full disk (issue 8, item 10): uploads are refused with 507 and change
// nothing, DELETE always works, masters that could not be written are
// written once space is back, and /readyz says 503 meanwhile. The data
// folder lives on a small tmpfs that the test mounts (it needs root, which
// `make test` and CI have).

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/integration/media_support.hpp"
#include "tests/integration/support.hpp"

using namespace phonon::integration;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

/// A tmpfs of `size` bytes mounted on a fresh folder, unmounted (lazily)
/// when the object dies.
class small_disk {
public:
  explicit small_disk(uint64_t size) : dir_{"phonon-it-disk"} {
    mount_point_ = dir_ / "mnt";
    fs::create_directories(mount_point_);
    auto opts = "size=" + std::to_string(size);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, opts.c_str())
        != 0)
      throw std::runtime_error("mount tmpfs: " + std::string{strerror(errno)}
                               + " (this test needs root)");
  }

  ~small_disk() {
    ::umount2(mount_point_.c_str(), MNT_DETACH);
  }

  const fs::path& path() const {
    return mount_point_;
  }

  /// Bytes still free for an unprivileged writer.
  uint64_t available() const {
    struct statvfs st{};
    ::statvfs(mount_point_.c_str(), &st);
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }

  /// Creates (or grows) a filler file until only `leave` bytes are free;
  /// with leave = 0, writes until the file system refuses.
  void fill(uint64_t leave) {
    auto filler = mount_point_ / ("filler-" + std::to_string(fillers_++));
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    std::string block(64 * 1024, 'f');
    while (true) {
      auto avail = available();
      if (leave > 0 && avail <= leave)
        break;
      auto n = leave > 0 ? std::min<uint64_t>(block.size(), avail - leave)
                         : block.size();
      auto w = ::write(fd, block.data(), n);
      if (w <= 0)
        break;
    }
    ::fsync(fd);
    ::close(fd);
  }

  /// Removes every filler file.
  void drain() {
    for (int i = 0; i < fillers_; ++i)
      fs::remove(mount_point_ / ("filler-" + std::to_string(i)));
  }

private:
  temp_dir dir_;
  fs::path mount_point_;
  int fillers_ = 0;
};

std::vector<std::string> on_disk(const small_disk& disk) {
  return {"--set",
          "database.sqlite.path=" + (disk.path() / "phonon.db").string(),
          "--set",
          "storage.local.base_path=" + (disk.path() / "audio").string()};
}

std::string target_of(int64_t phrase) {
  return "/audio/user/8/phrase/" + std::to_string(phrase);
}

/// Polls `f` every 100 ms until it is true or `limit` passed.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

} // namespace

TEST_CASE("a full disk: 507 on upload, DELETE works, masters catch up",
          "[integration][diskfull]") {
  if (::geteuid() != 0) {
    FAIL("the disk-full test mounts a tmpfs and needs root");
  }
  const auto m4a = read_file(audio_fixtures().m4a);
  small_disk disk{24ull << 20};
  server_process srv;
  // The reserve is off, so that an upload whose original fits but whose
  // master does not gets through to the master write.
  auto args = on_disk(disk);
  args.insert(args.end(), {"--set", "storage.min_free_bytes=0"});
  srv.start(args);
  auto port = srv.port();
  REQUIRE(upload_file(port, target_of(1), m4a, "one.m4a").status == 201);
  require_ready(port, target_of(1));
  REQUIRE(http_get(port, "/readyz").status == 200);

  SECTION("an upload whose master would not fit is refused with 507") {
    // Room for the spooled and stored original (~50 KB), not for its
    // ~530 KB master: accepting it would leave it processing for ever.
    disk.fill(300 * 1024);
    auto res = upload_file(port, target_of(2), m4a, "two.m4a");
    INFO(res.body);
    CHECK(res.status == 507);
    CHECK(res.json().value("code", "") == "storage_full");
    CHECK(http_get(port, target_of(2)).status == 404);
    disk.drain();
    CHECK(upload_file(port, target_of(2), m4a, "two.m4a").status == 201);
    require_ready(port, target_of(2));
  }

  SECTION("masters that hit ENOSPC are written when space is back") {
    // The master is made 1.5 s after the answer (test hook), and the disk
    // fills up in between.
    srv.stop();
    srv.set_env({{"PHONON_TEST_MASTER_DELAY_MS", "1500"}});
    srv.start(args);
    port = srv.port();
    auto res = upload_file(port, target_of(2), m4a, "two.m4a");
    INFO(res.body);
    REQUIRE(res.status == 201);
    disk.fill(0);
    CHECK(eventually([&] { return http_get(port, "/readyz").status == 503; },
                     8000ms));
    CHECK(eventually(
      [&] {
        return srv.log().find("cannot write master") != std::string::npos;
      },
      8000ms));
    CHECK(http_get(port, target_of(2)).json().value("status", "")
          == "processing");
    disk.drain();
    CHECK(eventually(
      [&] {
        return http_get(port, target_of(2)).json().value("status", "")
               == "ready";
      },
      20000ms));
    CHECK(eventually([&] { return http_get(port, "/readyz").status == 200; },
                     5000ms));
    CHECK(http_get(port, target_of(2) + "/wav").status == 200);
  }

  SECTION("a completely full disk refuses uploads with 507 and still "
          "deletes") {
    disk.fill(0);
    auto res = upload_file(port, target_of(3), m4a, "three.m4a");
    CHECK(res.status == 507);
    expect_json_error(res);
    CHECK(res.json().value("code", "") == "storage_full");
    CHECK(http_get(port, target_of(3)).status == 404);
    CHECK(eventually([&] { return http_get(port, "/readyz").status == 503; },
                     5000ms));
    // The raw-body path refuses the same way.
    auto raw = http_request(port, "POST", target_of(4), m4a,
                            {{"Content-Type", "audio/mp4"}});
    CHECK(raw.status == 507);
    CHECK(raw.json().value("code", "") == "storage_full");
    CHECK(http_request(port, "DELETE", target_of(1)).status == 204);
    CHECK(http_get(port, target_of(1)).status == 404);
    disk.drain();
    CHECK(eventually([&] { return http_get(port, "/readyz").status == 200; },
                     5000ms));
    CHECK(upload_file(port, target_of(3), m4a, "three.m4a").status == 201);
    require_ready(port, target_of(3));
  }

  SECTION("the reserve refuses uploads before the disk is full") {
    srv.stop();
    auto reserved = on_disk(disk);
    reserved.insert(reserved.end(), {"--set", "storage.min_free_bytes=8mib"});
    srv.start(reserved);
    port = srv.port();
    disk.fill(6ull << 20);
    auto res = upload_file(port, target_of(5), m4a, "five.m4a");
    CHECK(res.status == 507);
    CHECK(res.json().value("code", "") == "storage_full");
    CHECK(res.has("Retry-After"));
    CHECK(http_get(port, target_of(5)).status == 404);
    CHECK(http_get(port, "/readyz").status == 503);
    CHECK(http_get(port, target_of(1) + "/m4a").status == 200);
    disk.drain();
    CHECK(upload_file(port, target_of(5), m4a, "five.m4a").status == 201);
  }
}
