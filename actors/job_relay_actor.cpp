#include "actors/job_relay_actor.hpp"

// The steps and the cleanup path are in the header's opening comment.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"

namespace phonon::actors {

namespace {

using clock_type = std::chrono::steady_clock;

struct relay_state {
  static inline const char* name = "phonon.job_relay";
  transcoder_actor remote;
  caf::actor job_host;
  /// When the whole job must be done (transcoder.job_timeout).
  clock_type::time_point deadline;
  transcode_job job;
  int in_fd = -1;
  int out_fd = -1;
  uint64_t in_size = 0;
  /// Input bytes the worker acknowledged.
  uint64_t sent = 0;
  /// Output bytes appended to the output file.
  uint64_t fetched = 0;
  /// The worker's remote job, once opened.
  caf::actor rjob;
  /// The worker's answer to run_job (facts and size of the output).
  transcode_output result;
  caf::typed_response_promise<transcode_output> rp;

  ~relay_state() {
    if (in_fd >= 0)
      ::close(in_fd);
    if (out_fd >= 0)
      ::close(out_fd);
  }
};

using pointer = caf::stateful_actor<relay_state>*;

void send_input(pointer self);
void fetch_output(pointer self);

/// What is left of the job's time, for the next request.
caf::timespan left(pointer self) {
  auto rest = self->state.deadline - clock_type::now();
  return std::max(std::chrono::duration_cast<caf::timespan>(rest),
                  caf::timespan{std::chrono::milliseconds{1}});
}

/// The one cleanup path: closes the remote job, removes the output file,
/// answers `err` and quits.
void fail(pointer self, caf::error err) {
  auto& st = self->state;
  if (!st.rp.pending())
    return;
  log::actors()->debug("remote job failed req_id={} job={} sent={} of {} "
                       "fetched={} error={}",
                       log::rid(st.job.request_id), st.job.id, st.sent,
                       st.in_size, st.fetched, self->system().render(err));
  if (st.rjob)
    self->send(st.rjob, close_job_atom_v);
  if (st.out_fd >= 0) {
    ::close(st.out_fd);
    st.out_fd = -1;
  }
  ::unlink(st.job.output_path.c_str());
  st.rp.deliver(std::move(err));
  self->quit();
}

/// The error handler of every request: the step's error ends the job.
auto on_error(pointer self) {
  return [=](caf::error& err) { fail(self, std::move(err)); };
}

/// Last step: the output file is complete; answer like a local transcoder.
void done(pointer self) {
  auto& st = self->state;
  self->send(st.rjob, close_job_atom_v);
  auto rc = ::close(st.out_fd);
  st.out_fd = -1;
  if (rc != 0) {
    fail(self, caf::error{errc::storage_failure,
                          "cannot write " + st.job.output_path});
    return;
  }
  log::actors()->debug("remote job done req_id={} job={} in={} out={}",
                       log::rid(st.job.request_id), st.job.id, st.in_size,
                       st.fetched);
  auto out = std::move(st.result);
  out.output_path = st.job.output_path;
  out.size = st.fetched;
  out.synced = false; // written here, not fsync'd: the storage actor does
  st.rp.deliver(std::move(out));
  self->quit();
}

/// Step 4 (repeated): pulls the output chunk at `fetched` and appends it.
void fetch_output(pointer self) {
  auto& st = self->state;
  if (st.fetched >= st.result.size) {
    done(self);
    return;
  }
  self->request(st.rjob, left(self), get_chunk_atom_v, st.fetched)
    .then(
      [=](const std::string& bytes) {
        auto& st = self->state;
        if (bytes.empty() || bytes.size() > transfer_chunk_bytes
            || st.fetched + bytes.size() > st.result.size) {
          fail(self, caf::error{errc::transcode_failure,
                                "the worker sent an output chunk of "
                                  + std::to_string(bytes.size())
                                  + " bytes at "
                                  + std::to_string(st.fetched)});
          return;
        }
        size_t done_now = 0;
        while (done_now < bytes.size()) {
          auto n = ::write(st.out_fd, bytes.data() + done_now,
                           bytes.size() - done_now);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0) {
            auto code = errno == ENOSPC || errno == EDQUOT
                          ? errc::storage_full
                          : errc::storage_failure;
            fail(self, caf::error{code, "cannot write " + st.job.output_path
                                          + ": " + std::strerror(errno)});
            return;
          }
          done_now += static_cast<size_t>(n);
        }
        st.fetched += bytes.size();
        metrics::global().inc("phonon_job_relay_bytes_total",
                              {{"direction", "out"}},
                              static_cast<double>(bytes.size()));
        fetch_output(self);
      },
      on_error(self));
}

/// Step 3: the worker transcodes between its temp files.
void run(pointer self) {
  auto& st = self->state;
  ::close(st.in_fd);
  st.in_fd = -1;
  self->request(st.rjob, left(self), run_job_atom_v)
    .then(
      [=](transcode_output& out) {
        self->state.result = std::move(out);
        fetch_output(self);
      },
      on_error(self));
}

/// Step 2 (repeated): sends the input chunk at `sent`; the next one only
/// after the worker acknowledged it.
void send_input(pointer self) {
  auto& st = self->state;
  if (st.sent >= st.in_size) {
    run(self);
    return;
  }
  auto size = static_cast<size_t>(
    std::min<uint64_t>(transfer_chunk_bytes, st.in_size - st.sent));
  std::string chunk(size, '\0');
  size_t got = 0;
  while (got < size) {
    auto n = ::pread(st.in_fd, chunk.data() + got, size - got,
                     static_cast<off_t>(st.sent + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      // A file that shrank or cannot be read: not the worker's fault.
      fail(self, caf::error{errc::storage_failure,
                            "cannot read " + st.job.input_path});
      return;
    }
    got += static_cast<size_t>(n);
  }
  self->request(st.rjob, left(self), put_chunk_atom_v, st.sent,
                std::move(chunk))
    .then(
      [=](uint64_t acked) {
        auto& st = self->state;
        if (acked != st.sent + size) {
          fail(self, caf::error{errc::transcode_failure,
                                "the worker acknowledged "
                                  + std::to_string(acked) + " bytes, sent "
                                  + std::to_string(st.sent + size)});
          return;
        }
        st.sent = acked;
        metrics::global().inc("phonon_job_relay_bytes_total",
                              {{"direction", "in"}},
                              static_cast<double>(size));
        send_input(self);
      },
      on_error(self));
}

/// Step 1: opens the input and output files and a remote job on the worker.
void open(pointer self, transcode_job& job) {
  auto& st = self->state;
  st.job = std::move(job);
  st.in_fd = ::open(st.job.input_path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat info;
  if (st.in_fd < 0 || ::fstat(st.in_fd, &info) != 0) {
    fail(self, caf::error{errno == ENOENT ? errc::not_found
                                          : errc::storage_failure,
                          "cannot read " + st.job.input_path});
    return;
  }
  st.in_size = static_cast<uint64_t>(info.st_size);
  st.out_fd = ::open(st.job.output_path.c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (st.out_fd < 0) {
    fail(self, caf::error{errc::storage_failure,
                          "cannot create " + st.job.output_path});
    return;
  }
  // The worker sees neither path: it names its own files.
  auto remote_job = st.job;
  remote_job.input_path.clear();
  remote_job.output_path.clear();
  self
    ->request(st.job_host, left(self), open_job_atom_v, std::move(remote_job),
              st.in_size, caf::actor_cast<caf::actor>(st.remote))
    .then(
      [=](caf::actor& rjob) {
        auto& st = self->state;
        if (!rjob) {
          fail(self, caf::error{errc::transcode_failure,
                                "the worker opened no job"});
          return;
        }
        st.rjob = std::move(rjob);
        // A worker that dies (or drops the job) ends this one at once.
        self->monitor(st.rjob);
        send_input(self);
      },
      on_error(self));
}

caf::behavior relay_impl(pointer self, transcoder_actor remote,
                         caf::actor job_host, caf::timespan timeout) {
  auto& st = self->state;
  st.remote = std::move(remote);
  st.job_host = std::move(job_host);
  st.deadline = clock_type::now() + timeout;
  self->set_down_handler([=](caf::down_msg& dm) {
    fail(self, dm.reason ? dm.reason
                         : caf::error{caf::sec::request_receiver_down});
  });
  return {
    [=](transcode_atom, transcode_job& job) -> caf::result<transcode_output> {
      auto& st = self->state;
      if (st.rp.pending())
        return caf::error{errc::transcode_failure, "a relay runs one job"};
      st.rp = self->make_response_promise<transcode_output>();
      if (!st.job_host) {
        // A node that registered no job host cannot take file jobs.
        st.job = std::move(job);
        fail(self, caf::error{errc::no_transcoder,
                              "the worker takes no remote jobs"});
      } else {
        open(self, job);
      }
      return st.rp;
    },
  };
}

} // namespace

caf::actor spawn_job_relay(caf::actor_system& sys, transcoder_actor remote,
                           caf::actor job_host, caf::timespan timeout) {
  return sys.spawn<caf::detached>(relay_impl, std::move(remote),
                                  std::move(job_host), timeout);
}

} // namespace phonon::actors
