#include "actors/bucket_job_actor.hpp"

// The steps and the cleanup path are in the header's opening comment.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"

namespace phonon::actors {

namespace {

using clock_type = std::chrono::steady_clock;
using persistence::blob_key;

blob_key key_of(const blob_ref& ref) {
  return {ref.user_id, ref.phrase_id, ref.revision, ref.name};
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

/// The job's error for a failed bucket request: the serve node runs the
/// job again without the bucket on any of these.
caf::error bucket_error(const persistence::storage_error& e,
                        const std::string& what) {
  auto text = what + ": " + e.what();
  if (auto s3e = dynamic_cast<const persistence::s3::error*>(&e);
      s3e != nullptr && s3e->code() == persistence::s3::errc::not_found)
    return caf::error{errc::not_found, text};
  if (e.unavailable())
    return caf::error{errc::storage_unavailable, text};
  if (e.no_space())
    return caf::error{errc::storage_full, text};
  return caf::error{errc::storage_failure, text};
}

struct bucket_job_state {
  static inline const char* name = "phonon.bucket_job";
  std::shared_ptr<persistence::s3_blob_store> bucket;
  transcoder_actor transcoder;
  /// The job with this node's temp files as input_path and output_path.
  transcode_job job;
  caf::typed_response_promise<transcode_output> rp;
  clock_type::time_point started = clock_type::now();
  uint64_t in_bytes = 0;

  /// The one cleanup path: runs however the actor ends.
  ~bucket_job_state() {
    std::error_code ec;
    if (!job.input_path.empty())
      std::filesystem::remove(job.input_path, ec);
    if (!job.output_path.empty())
      std::filesystem::remove(job.output_path, ec);
  }
};

using pointer = caf::stateful_actor<bucket_job_state>*;

/// Fail: answers `err` and quits (the state's destructor removes the
/// files).
void fail(pointer self, caf::error err) {
  auto& st = self->state;
  log::actors()->warn("bucket job failed req_id={} job={} target={} "
                      "error={}",
                      log::rid(st.job.request_id), st.job.id, st.job.target,
                      self->system().render(err));
  metrics::global().inc("phonon_bucket_jobs_total", {{"outcome", "error"}});
  if (st.rp.pending())
    st.rp.deliver(std::move(err));
  self->quit();
}

/// Done: the output is in the bucket; answer its facts, no bytes.
void done(pointer self, transcode_output out, uint64_t size) {
  auto& st = self->state;
  out.output_path.clear();
  out.synced = false;
  out.size = size;
  out.stored = true;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              clock_type::now() - st.started)
              .count();
  log::actors()->info("bucket job done req_id={} job={} target={} "
                      "in_bytes={} out_bytes={} ms={}",
                      log::rid(st.job.request_id), st.job.id, st.job.target,
                      st.in_bytes, size, ms);
  metrics::global().inc("phonon_bucket_jobs_total", {{"outcome", "ok"}});
  st.rp.deliver(std::move(out));
  self->quit();
}

/// Store: one atomic PUT of the output under output_key.
void store(pointer self, transcode_output out) {
  auto& st = self->state;
  uint64_t size = 0;
  try {
    size = st.bucket->put_object(key_of(st.job.output_key),
                                 st.job.output_path);
  } catch (const persistence::storage_error& e) {
    fail(self, bucket_error(e, "cannot store the output"));
    return;
  }
  done(self, std::move(out), size);
}

/// Convert: the transcoder streams the temp input to the temp output.
void convert(pointer self) {
  auto& st = self->state;
  // The media code stops at the job's deadline; a minute on top bounds a
  // transcoder that does not answer at all.
  auto left = st.job.deadline_unix_ms > 0
                ? std::chrono::milliseconds{std::max<int64_t>(
                  0, st.job.deadline_unix_ms - now_unix_ms())}
                : std::chrono::milliseconds{std::chrono::hours{1}};
  self
    ->request(st.transcoder, left + std::chrono::minutes{1},
              transcode_atom_v, st.job)
    .then([=](transcode_output& out) { store(self, std::move(out)); },
          [=](caf::error& err) { fail(self, std::move(err)); });
}

/// Fetch: the input object into the temp input file.
void fetch(pointer self) {
  auto& st = self->state;
  try {
    st.bucket->get_object(key_of(st.job.input_key), st.job.input_path);
    std::error_code ec;
    st.in_bytes = std::filesystem::file_size(st.job.input_path, ec);
  } catch (const persistence::storage_error& e) {
    fail(self, bucket_error(e, "cannot fetch the input"));
    return;
  }
  convert(self);
}

caf::behavior bucket_job_impl(pointer self,
                              std::shared_ptr<persistence::s3_blob_store> bucket,
                              transcoder_actor transcoder,
                              std::string file_base) {
  auto& st = self->state;
  st.bucket = std::move(bucket);
  st.transcoder = std::move(transcoder);
  // A transcoder that dies mid-job ends the job at once, with its exit
  // reason (the serve node's supervisor sees the same death and retries).
  self->monitor(st.transcoder);
  self->set_down_handler([=](caf::down_msg& dm) {
    if (self->state.rp.pending())
      fail(self, dm.reason ? dm.reason
                           : caf::error{errc::transcode_failure,
                                        "the transcoder of the job is gone"});
  });
  return {
    [=](transcode_atom, transcode_job& job) -> caf::result<transcode_output> {
      auto& st = self->state;
      if (st.rp.pending())
        return caf::error{errc::transcode_failure, "a bucket job runs once"};
      st.rp = self->make_response_promise<transcode_output>();
      st.job = std::move(job);
      st.job.input_path = file_base + ".in";
      st.job.output_path = file_base + ".out";
      log::actors()->debug("bucket job started req_id={} job={} target={} "
                           "user={} phrase={} rev={} input={} output={}",
                           log::rid(st.job.request_id), st.job.id,
                           st.job.target, st.job.input_key.user_id,
                           st.job.input_key.phrase_id,
                           st.job.input_key.revision, st.job.input_key.name,
                           st.job.output_key.name);
      if (!st.bucket || !has_keys(st.job))
        fail(self, caf::error{errc::storage_failure,
                              "a bucket job without a bucket or keys"});
      else
        fetch(self);
      return st.rp;
    },
  };
}

} // namespace

caf::actor spawn_bucket_job(caf::actor_system& sys,
                            std::shared_ptr<persistence::s3_blob_store> bucket,
                            transcoder_actor transcoder,
                            std::string file_base) {
  return sys.spawn<caf::detached>(bucket_job_impl, std::move(bucket),
                                  std::move(transcoder), std::move(file_base));
}

} // namespace phonon::actors
