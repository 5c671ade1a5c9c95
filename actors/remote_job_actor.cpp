#include "actors/remote_job_actor.hpp"

// The protocol and the cleanup rules are in the header's opening comment.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/bucket_job_actor.hpp"
#include "actors/errors.hpp"
#include "actors/log.hpp"

namespace phonon::actors {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr const char* file_prefix = "rjob-";

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

/// errc for a failed write: no room is worth another try later.
caf::error write_error(int err, const std::string& what) {
  auto code = err == ENOSPC || err == EDQUOT ? errc::storage_full
                                             : errc::storage_failure;
  return caf::error{code, what + ": " + std::strerror(err)};
}

/// Writes all of `bytes` at `offset`; 0 or the errno.
int write_at(int fd, const std::string& bytes, uint64_t offset) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                      static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

/// Reads up to `size` bytes at `offset` (fewer only at the end of the
/// file); false on a read error.
bool read_at(int fd, uint64_t offset, size_t size, std::string& out) {
  out.resize(size);
  size_t done = 0;
  while (done < size) {
    auto n = ::pread(fd, out.data() + done, size - done,
                     static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return true;
}

// -- the remote job -----------------------------------------------------------

enum class phase { receiving, running, serving };

struct remote_job_state {
  static inline const char* name = "phonon.remote_job";
  remote_job_settings cfg;
  /// The job with this node's paths (input_path, output_path).
  transcode_job job;
  transcoder_actor transcoder;
  /// The relay that opened the job.
  caf::actor_addr owner;
  uint64_t announced = 0;
  uint64_t received = 0;
  uint64_t out_size = 0;
  int in_fd = -1;
  int out_fd = -1;
  phase ph = phase::receiving;
  /// The relay's run_job request while the transcoder works.
  caf::typed_response_promise<transcode_output> run_rp;
  clock_type::time_point last_seen = clock_type::now();

  /// The one cleanup path: runs however the actor ends.
  ~remote_job_state() {
    if (in_fd >= 0)
      ::close(in_fd);
    if (out_fd >= 0)
      ::close(out_fd);
    if (!job.input_path.empty())
      ::unlink(job.input_path.c_str());
    if (!job.output_path.empty())
      ::unlink(job.output_path.c_str());
  }
};

using job_pointer = caf::stateful_actor<remote_job_state>*;

/// Ends the job (the state's destructor removes the files); `why` goes to
/// the log and to whoever still waits on run_job.
void end_job(job_pointer self, caf::error why) {
  auto& st = self->state;
  if (why)
    log::actors()->debug("remote job ended req_id={} job={} reason={}",
                         log::rid(st.job.request_id), st.job.id,
                         self->system().render(why));
  if (st.run_rp.pending())
    st.run_rp.deliver(why ? why : caf::error{errc::transcode_failure,
                                             "remote job closed"});
  self->quit(std::move(why));
}

/// Step 1 (repeated): appends one chunk of the input.
caf::result<uint64_t> put_chunk(job_pointer self, uint64_t offset,
                                const std::string& bytes) {
  auto& st = self->state;
  caf::error err;
  if (st.ph != phase::receiving || offset != st.received)
    err = caf::error{errc::bad_request,
                     "chunk at " + std::to_string(offset) + ", expected "
                       + std::to_string(st.received)};
  else if (bytes.size() > transfer_chunk_bytes
           || st.received + bytes.size() > st.announced)
    err = caf::error{errc::payload_too_large,
                     "chunk overruns the announced input size "
                       + std::to_string(st.announced)};
  else if (auto rc = write_at(st.in_fd, bytes, offset); rc != 0)
    err = write_error(rc, "cannot write " + st.job.input_path);
  if (err) {
    end_job(self, err);
    return err;
  }
  st.received += bytes.size();
  return st.received;
}

/// Step 2: the transcoder streams the input file to the output file.
caf::result<transcode_output> run_job(job_pointer self) {
  auto& st = self->state;
  if (st.ph != phase::receiving || st.received != st.announced) {
    caf::error err{errc::bad_request,
                   "run before the whole input arrived: "
                     + std::to_string(st.received) + " of "
                     + std::to_string(st.announced) + " bytes"};
    end_job(self, err);
    return err;
  }
  ::close(st.in_fd);
  st.in_fd = -1;
  st.ph = phase::running;
  st.run_rp = self->make_response_promise<transcode_output>();
  // The media code stops at the job's deadline; the idle timeout on top
  // bounds a transcoder that does not answer at all.
  auto left = st.job.deadline_unix_ms > 0
                ? std::chrono::milliseconds{std::max<int64_t>(
                  0, st.job.deadline_unix_ms - now_unix_ms())}
                : std::chrono::milliseconds{std::chrono::hours{1}};
  self->request(st.transcoder, left + st.cfg.idle_timeout, transcode_atom_v,
                st.job)
    .then(
      [=](transcode_output& out) {
        auto& st = self->state;
        st.out_fd = ::open(st.job.output_path.c_str(), O_RDONLY | O_CLOEXEC);
        struct stat info;
        if (st.out_fd < 0 || ::fstat(st.out_fd, &info) != 0) {
          end_job(self, caf::error{errc::storage_failure,
                                   "cannot open " + st.job.output_path});
          return;
        }
        st.out_size = static_cast<uint64_t>(info.st_size);
        st.ph = phase::serving;
        st.last_seen = clock_type::now();
        out.size = st.out_size;
        out.output_path.clear();
        st.run_rp.deliver(std::move(out));
      },
      [=](caf::error& err) { end_job(self, std::move(err)); });
  return st.run_rp;
}

/// Step 3 (repeated): one chunk of the output.
caf::result<std::string> get_chunk(job_pointer self, uint64_t offset) {
  auto& st = self->state;
  caf::error err;
  std::string bytes;
  if (st.ph != phase::serving || offset > st.out_size)
    err = caf::error{errc::bad_request,
                     "output chunk at " + std::to_string(offset)
                       + " of a job that has "
                       + std::to_string(st.ph == phase::serving ? st.out_size
                                                                : 0)
                       + " bytes ready"};
  else if (!read_at(st.out_fd, offset,
                    static_cast<size_t>(std::min<uint64_t>(
                      transfer_chunk_bytes, st.out_size - offset)),
                    bytes))
    err = caf::error{errc::storage_failure,
                     "cannot read " + st.job.output_path};
  if (err) {
    end_job(self, err);
    return err;
  }
  return bytes;
}

/// Ends a job whose relay has been silent for idle_timeout (not while the
/// transcoder works: that is bounded by the job's deadline).
void idle_check(job_pointer self) {
  auto& st = self->state;
  auto idle = clock_type::now() - st.last_seen;
  if (st.ph != phase::running && idle >= st.cfg.idle_timeout) {
    log::actors()->warn("remote job abandoned by its serve node req_id={} "
                        "job={} idle_ms={}",
                        log::rid(st.job.request_id), st.job.id,
                        std::chrono::duration_cast<std::chrono::milliseconds>(
                          idle)
                          .count());
    end_job(self, caf::error{errc::deadline_exceeded,
                             "no message from the serve node"});
    return;
  }
  auto next = st.ph == phase::running
                ? st.cfg.idle_timeout
                : std::chrono::duration_cast<std::chrono::milliseconds>(
                    st.cfg.idle_timeout - idle);
  self->delayed_send(self, std::max(next, std::chrono::milliseconds{1}),
                     idle_check_atom_v);
}

caf::behavior remote_job_impl(job_pointer self, remote_job_settings cfg,
                              transcode_job job, uint64_t announced,
                              transcoder_actor transcoder, caf::actor owner,
                              int in_fd) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.job = std::move(job);
  st.announced = announced;
  st.transcoder = std::move(transcoder);
  st.owner = owner.address();
  st.in_fd = in_fd;
  // A relay that goes away (its serve node died) or a transcoder that dies
  // ends the job at once; the idle timeout catches a silent relay.
  self->monitor(st.transcoder);
  if (owner)
    self->monitor(owner);
  self->set_down_handler([=](caf::down_msg& dm) {
    // Once the output is complete the transcoder is no longer needed.
    if (dm.source == self->state.transcoder.address()
        && self->state.ph == phase::serving)
      return;
    end_job(self, dm.reason ? dm.reason
                            : caf::error{errc::transcode_failure,
                                         "the relay or the transcoder of "
                                         "the job is gone"});
  });
  self->delayed_send(self, st.cfg.idle_timeout, idle_check_atom_v);
  // Every message from the relay counts as a sign of life.
  auto seen = [=] { self->state.last_seen = clock_type::now(); };
  return {
    [=](put_chunk_atom, uint64_t offset,
        const std::string& bytes) -> caf::result<uint64_t> {
      seen();
      return put_chunk(self, offset, bytes);
    },
    [=](run_job_atom) -> caf::result<transcode_output> {
      seen();
      return run_job(self);
    },
    [=](get_chunk_atom, uint64_t offset) -> caf::result<std::string> {
      seen();
      return get_chunk(self, offset);
    },
    [=](close_job_atom) { end_job(self, caf::error{}); },
    [=](idle_check_atom) { idle_check(self); },
  };
}

// -- the job host -------------------------------------------------------------

struct job_host_state {
  static inline const char* name = "phonon.job_host";
  remote_job_settings cfg;
  uint64_t next = 1;
};

using host_pointer = caf::stateful_actor<job_host_state>*;

caf::result<caf::actor> open_job(host_pointer self, transcode_job& job,
                                 uint64_t size, caf::actor transcoder) {
  auto& st = self->state;
  auto rid = log::rid(job.request_id);
  if (size > st.cfg.max_input_bytes) {
    log::actors()->info("remote job refused req_id={} job={} bytes={} "
                        "max_bytes={}",
                        rid, job.id, size, st.cfg.max_input_bytes);
    return caf::error{errc::payload_too_large,
                      "the input (" + std::to_string(size)
                        + " bytes) is larger than this worker takes ("
                        + std::to_string(st.cfg.max_input_bytes) + ")"};
  }
  if (!transcoder)
    return caf::error{errc::transcode_failure, "a job without a transcoder"};
  std::error_code ec;
  fs::create_directories(st.cfg.temp_dir, ec);
  auto base = st.cfg.temp_dir + "/" + file_prefix
              + std::to_string(::getpid()) + "-" + std::to_string(st.next++);
  auto in_path = base + ".in";
  int fd = ::open(in_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
  if (fd < 0)
    return write_error(errno, "cannot create " + in_path);
  job.input_path = in_path;
  job.output_path = base + ".out";
  log::actors()->debug("remote job opened req_id={} job={} target={} "
                       "bytes={}",
                       rid, job.id, job.target, size);
  auto owner = caf::actor_cast<caf::actor>(self->current_sender());
  return self->system().spawn<caf::detached>(
    remote_job_impl, st.cfg, std::move(job), size,
    caf::actor_cast<transcoder_actor>(std::move(transcoder)), owner, fd);
}

/// A bucket job (bucket_job_actor.hpp): spawns it and hands it the
/// request, so that it answers the serve node itself.
caf::result<transcode_output> bucket_job(host_pointer self,
                                         transcode_job& job,
                                         caf::actor transcoder) {
  auto& st = self->state;
  if (!st.cfg.bucket)
    return caf::error{errc::storage_failure,
                      "this worker has no bucket: it takes jobs in chunks"};
  if (!transcoder)
    return caf::error{errc::transcode_failure, "a job without a transcoder"};
  std::error_code ec;
  fs::create_directories(st.cfg.temp_dir, ec);
  auto base = st.cfg.temp_dir + "/" + file_prefix
              + std::to_string(::getpid()) + "-b" + std::to_string(st.next++);
  auto worker = spawn_bucket_job(
    self->system(), st.cfg.bucket,
    caf::actor_cast<transcoder_actor>(std::move(transcoder)), std::move(base));
  auto rp = self->make_response_promise<transcode_output>();
  return rp.delegate(worker, transcode_atom_v, std::move(job));
}

caf::behavior job_host_impl(host_pointer self, remote_job_settings cfg) {
  if (auto n = sweep_remote_job_files(cfg.temp_dir); n > 0)
    log::actors()->info("swept files of dead remote jobs count={} dir={}", n,
                        cfg.temp_dir);
  self->state.cfg = std::move(cfg);
  return {
    [=](open_job_atom, transcode_job& job, uint64_t size,
        caf::actor transcoder) -> caf::result<caf::actor> {
      return open_job(self, job, size, std::move(transcoder));
    },
    [=](bucket_job_atom, transcode_job& job,
        caf::actor transcoder) -> caf::result<transcode_output> {
      return bucket_job(self, job, std::move(transcoder));
    },
  };
}

} // namespace

size_t sweep_remote_job_files(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> victims;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.rfind(file_prefix, 0) != 0)
      continue;
    auto pid = std::atol(name.c_str() + std::strlen(file_prefix));
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0
                     && errno == ESRCH))
      victims.push_back(it->path());
  }
  size_t removed = 0;
  for (auto& p : victims)
    if (fs::remove(p, ec))
      ++removed;
  return removed;
}

caf::actor spawn_job_host(caf::actor_system& sys, remote_job_settings cfg) {
  return sys.spawn<caf::detached>(job_host_impl, std::move(cfg));
}

} // namespace phonon::actors
