#include "app/roles.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <stdexcept>
#include <string>

#include "actors/log.hpp"
#include "media/transcode.hpp"
#include "persistence/local_blob_store.hpp"
#include "persistence/s3_blob_store.hpp"

namespace phonon::app {

std::shared_ptr<persistence::blob_store>
open_blob_store(const config::settings& s) {
  if (s.storage.type != "s3")
    return std::make_shared<persistence::local_blob_store>(
      s.storage.local_base_path);
  const auto& in = s.storage.s3;
  persistence::s3::settings cfg;
  cfg.endpoint = in.endpoint;
  cfg.region = in.region;
  cfg.bucket = in.bucket;
  cfg.prefix = in.prefix;
  cfg.access_key = in.access_key;
  cfg.secret_key = in.secret_key;
  cfg.path_style = in.path_style;
  cfg.part_size = in.part_size;
  // A bucket that stops answering fails a request (3 tries) well within
  // server.request_timeout, so a write answers 503 rather than 504 and the
  // requests queued behind it move on.
  cfg.connect_timeout = std::chrono::seconds(2);
  cfg.idle_timeout = std::chrono::seconds(
    std::clamp(s.server.request_timeout / 5, 1, 15));
  auto st = std::make_shared<persistence::s3_blob_store>(
    std::move(cfg), s.storage.local_base_path);
  // Never the secret: endpoint, bucket, prefix and the key id only.
  log::actors()->info("storage type=s3 endpoint={} bucket={} prefix={} "
                      "region={} path_style={} access_key={}",
                      in.endpoint, in.bucket, in.prefix, in.region,
                      in.path_style, in.access_key);
  try {
    st->check();
  } catch (const persistence::s3::error& e) {
    if (e.code() != persistence::s3::errc::unavailable)
      throw std::runtime_error(
        "storage.s3: the bucket refused this node (" + e.s3_code()
        + (e.code() == persistence::s3::errc::forbidden
             ? "; check storage.s3.access_key and the secret key"
             : "")
        + "): " + e.what());
    log::actors()->warn("storage unavailable: the bucket does not answer "
                        "yet; /readyz answers 503 until it does error={}",
                        e.what());
  }
  return st;
}

std::unique_ptr<persistence::recording_store>
open_store(const config::settings& s) {
  std::unique_ptr<persistence::recording_store> store;
  if (s.database.driver == "mysql") {
    // A database that is still starting (compose, systemd) is waited for,
    // with backoff, for up to a minute before giving up.
    auto wait = std::chrono::milliseconds(250);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (true) {
      try {
        store = persistence::open_mysql_store(s.database.mysql);
        break;
      } catch (const persistence::db_error& e) {
        if (std::chrono::steady_clock::now() + wait > deadline)
          throw;
        log::actors()->warn("database not reachable, retrying in {} ms "
                            "error={}",
                            wait.count(), e.what());
        std::this_thread::sleep_for(wait);
        wait = std::min(wait * 2, std::chrono::milliseconds(5000));
      }
    }
  } else {
    store = persistence::open_sqlite_store(s.database.sqlite_path);
  }
  store->migrate();
  return store;
}

int run_migrate(const config::settings& s) {
  open_store(s);
  log::actors()->info("migrations applied driver={}", s.database.driver);
  return EXIT_SUCCESS;
}

actors::transcode_fn transcode_function() {
  const char* fault = std::getenv("PHONON_TEST_FAULT");
  if (fault == nullptr || *fault == '\0')
    return actors::run_media_job;
  std::string spec{fault};
  auto colon = spec.find(':');
  auto mode = spec.substr(0, colon);
  auto target = colon == std::string::npos ? "" : spec.substr(colon + 1);
  log::actors()->warn("test fault injection active mode={} target={}", mode,
                      target);
  // "slow:<target>:<ms>" delays every job of that target by ms (tests of
  // uploads that outlive the request timeout).
  auto arg_colon = target.find(':');
  auto delay = std::chrono::milliseconds{0};
  if (arg_colon != std::string::npos) {
    delay = std::chrono::milliseconds{
      std::strtoll(target.c_str() + arg_colon + 1, nullptr, 10)};
    target.resize(arg_colon);
  }
  return [mode, target, delay](const actors::transcode_job& job) {
    if (job.target == target) {
      if (mode == "slow") {
        std::this_thread::sleep_for(delay);
        return actors::run_media_job(job);
      }
      if (mode == "abort")
        std::abort();
      throw std::runtime_error("injected fault for target " + target);
    }
    return actors::run_media_job(job);
  };
}

std::chrono::milliseconds test_master_delay() {
  const char* text = std::getenv("PHONON_TEST_MASTER_DELAY_MS");
  if (text == nullptr || *text == '\0')
    return std::chrono::milliseconds{0};
  log::actors()->warn("test hook active: masters are made {} ms late", text);
  return std::chrono::milliseconds{std::strtoll(text, nullptr, 10)};
}

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

void route_libav_logs() {
  media::set_log_sink([](int level, const char* text) {
    // libav levels: 8 fatal, 16 error, 24 warning, 32 info. The line
    // names the request and job the transcoder runs on this thread.
    auto lvl = level <= 16 ? spdlog::level::debug : spdlog::level::trace;
    log::media()->log(lvl, "libav req_id={} job={}: {}",
                      log::rid(log::current_request_id()),
                      log::current_job(), text);
  });
}

} // namespace phonon::app
