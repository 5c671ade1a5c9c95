#include "actors/transcode_supervisor.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <set>
#include <unordered_map>

#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/errors.hpp"
#include "actors/job_relay_actor.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/peers_actor.hpp"
#include "actors/waveform_target.hpp"

namespace phonon::actors {

namespace {

using clock_type = std::chrono::steady_clock;

/// One transcoder the supervisor may dispatch to.
struct worker {
  transcoder_actor hdl;
  int capacity = 1;
  int running = 0;
  bool local = true;
  /// May open this node's files (local, or a worker on this machine).
  bool shares_files = true;
  /// Where a worker that does not share the files opens remote jobs
  /// (remote_job_actor.hpp); null otherwise.
  caf::actor job_host;
  /// Reaches this node's bucket itself: its job host runs bucket jobs.
  bool bucket_jobs = false;
};

/// One accepted job until its answer is delivered.
struct job_entry {
  transcode_job job;
  /// Input size, for queue_limit_bytes.
  uint64_t bytes = 0;
  caf::typed_response_promise<transcode_output> rp;
  int attempts = 0;
  /// The transcoder running it; null while queued.
  caf::actor_addr on;
  clock_type::time_point started;
  /// The running attempt is a bucket job (bucket_job_actor.hpp).
  bool by_bucket = false;
  /// A bucket job of it failed for the bucket's sake: it runs without the
  /// bucket from now on.
  bool bucket_failed = false;
};

struct supervisor_state {
  static inline const char* name = "phonon.supervisor";
  supervisor_settings cfg;
  transcoder_factory factory;
  std::vector<worker> workers;
  std::deque<uint64_t> queue;
  std::unordered_map<uint64_t, job_entry> jobs;
  /// Input bytes of all entries in `jobs`.
  uint64_t job_bytes = 0;
  uint64_t next_id = 1;
  /// Part of every output file name: unique to this process, so outputs of
  /// a restarted process (and its jobs' retries) never collide.
  std::string nonce;
};

using pointer = supervisor_actor::stateful_pointer<supervisor_state>;

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

bool expired(const transcode_job& job) {
  return job.deadline_unix_ms != 0 && now_unix_ms() > job.deadline_unix_ms;
}

/// Forgets a job that has been answered.
void erase_job(supervisor_state& st, uint64_t id) {
  auto i = st.jobs.find(id);
  if (i == st.jobs.end())
    return;
  st.job_bytes -= i->second.bytes;
  st.jobs.erase(i);
}

/// Answers and drops the queued jobs nobody waits for any more.
void drop_expired(pointer self) {
  auto& st = self->state;
  for (auto i = st.queue.begin(); i != st.queue.end();) {
    auto& entry = st.jobs[*i];
    if (!expired(entry.job)) {
      ++i;
      continue;
    }
    log::actors()->debug("job expired in the queue req_id={} job={} "
                         "target={}",
                         log::rid(entry.job.request_id), entry.job.id,
                         entry.job.target);
    metrics::global().inc("phonon_conversions_total",
                          {{"format", metric_target(entry.job.target)},
                           {"outcome", "expired"}});
    entry.rp.deliver(caf::error{errc::deadline_exceeded,
                                "the conversion waited in the queue past "
                                "its deadline"});
    erase_job(st, *i);
    i = st.queue.erase(i);
  }
}

void publish_gauges(pointer self) {
  auto& st = self->state;
  int local = 0;
  int remote = 0;
  std::set<caf::node_id> nodes;
  for (auto& w : st.workers) {
    (w.local ? local : remote) += 1;
    if (!w.local)
      nodes.insert(w.hdl.node());
  }
  auto& m = metrics::global();
  m.set("phonon_cluster_nodes", {{"kind", "worker"}},
        static_cast<double>(nodes.size()));
  m.set("phonon_transcoders", {{"kind", "local"}}, local);
  m.set("phonon_transcoders", {{"kind", "remote"}}, remote);
  m.set("phonon_queue_depth", {}, static_cast<double>(st.queue.size()));
  m.set("phonon_jobs_running", {},
        static_cast<double>(st.jobs.size() - st.queue.size()));
}

void spawn_local(pointer self) {
  auto hdl = self->state.factory(self->system());
  self->monitor(hdl);
  self->state.workers.push_back(
    worker{hdl, 1, 0, true, true, caf::actor{}, false});
}

void dispatch(pointer self);

void finish(pointer self, uint64_t id, const caf::actor_addr& from,
            caf::expected<transcode_output> res) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  // A job that was re-dispatched may still answer from its old transcoder:
  // only the transcoder that owns it now may complete it.
  if (i == st.jobs.end() || i->second.on != from)
    return;
  for (auto& w : st.workers)
    if (w.hdl.address() == from && w.running > 0)
      --w.running;
  auto& entry = i->second;
  // Only a bucket job may answer that its output is in the bucket.
  if (res && res->stored != entry.by_bucket)
    res = caf::error{errc::transcode_failure,
                     "a remote job answered stored="
                       + std::to_string(res->stored)};
  auto secs = std::chrono::duration<double>(clock_type::now() - entry.started)
                .count();
  auto& m = metrics::global();
  log::actors()->debug("job done req_id={} job={} target={} outcome={} "
                       "us={}",
                       log::rid(entry.job.request_id), entry.job.id,
                       entry.job.target,
                       res ? std::string{"ok"}
                           : self->system().render(res.error()),
                       static_cast<int64_t>(secs * 1e6));
  auto format = metric_target(entry.job.target);
  if (res) {
    m.inc("phonon_conversions_total", {{"format", format}, {"outcome", "ok"}});
    m.observe("phonon_conversion_seconds", {{"format", format}}, secs);
    res->job_id = entry.job.id;
    entry.rp.deliver(std::move(*res));
  } else {
    m.inc("phonon_conversions_total",
          {{"format", format}, {"outcome", "error"}});
    entry.rp.deliver(std::move(res.error()));
  }
  erase_job(st, id);
  dispatch(self);
}

/// Forgets a dead transcoder, respawns it when local and puts its jobs back
/// in front of the queue (or fails those that used up their attempts).
void lost(pointer self, const caf::actor_addr& addr, const caf::error& why) {
  auto& st = self->state;
  auto w = std::find_if(st.workers.begin(), st.workers.end(),
                        [&](const worker& x) { return x.hdl.address() == addr; });
  if (w == st.workers.end())
    return;
  bool was_local = w->local;
  // A transcoder that timed out may still be alive: make sure it is gone.
  self->send_exit(w->hdl, caf::exit_reason::kill);
  st.workers.erase(w);
  log::actors()->warn("transcoder lost local={} reason={}", was_local,
                      self->system().render(why));
  metrics::global().inc("phonon_transcoder_deaths_total",
                        {{"kind", was_local ? "local" : "remote"}});
  if (was_local)
    spawn_local(self);
  std::vector<uint64_t> orphans;
  for (auto& [id, entry] : st.jobs)
    if (entry.on == addr)
      orphans.push_back(id);
  std::sort(orphans.rbegin(), orphans.rend());
  for (auto id : orphans) {
    auto& entry = st.jobs[id];
    entry.on = caf::actor_addr{};
    if (++entry.attempts >= st.cfg.max_attempts) {
      log::actors()->error("job failed for good req_id={} job={} target={} "
                           "attempts={}",
                           log::rid(entry.job.request_id), id,
                           entry.job.target, entry.attempts);
      metrics::global().inc("phonon_conversions_total",
                            {{"format", metric_target(entry.job.target)},
                             {"outcome", "crashed"}});
      entry.rp.deliver(caf::error{errc::transcoder_crashed,
                                  "conversion crashed "
                                    + std::to_string(entry.attempts)
                                    + " transcoders"});
      erase_job(st, id);
    } else {
      log::actors()->warn("job queued again after its transcoder was lost "
                          "req_id={} job={} target={} attempts={}",
                          log::rid(entry.job.request_id), id,
                          entry.job.target, entry.attempts);
      st.queue.push_front(id);
    }
  }
  dispatch(self);
}

/// True when a bucket job's error is the bucket's (or the worker's access
/// to it), not the conversion's: the job may succeed without the bucket.
bool bucket_trouble(const caf::error& err) {
  return is(err, errc::storage_unavailable) || is(err, errc::storage_failure)
         || is(err, errc::storage_full) || is(err, errc::not_found);
}

/// A bucket job failed for the bucket's sake: the job goes back in front
/// of the queue to run without the bucket (in chunks or locally), which
/// does not count as an attempt (no transcoder died).
void retry_without_bucket(pointer self, uint64_t id,
                          const caf::actor_addr& from, const caf::error& err) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i == st.jobs.end() || i->second.on != from)
    return;
  for (auto& w : st.workers)
    if (w.hdl.address() == from && w.running > 0)
      --w.running;
  auto& entry = i->second;
  log::actors()->warn("bucket job failed, running it without the bucket "
                      "req_id={} job={} target={} error={}",
                      log::rid(entry.job.request_id), id, entry.job.target,
                      self->system().render(err));
  metrics::global().inc("phonon_remote_jobs_total",
                        {{"mode", "bucket"}, {"outcome", "fallback"}});
  entry.on = caf::actor_addr{};
  entry.by_bucket = false;
  entry.bucket_failed = true;
  st.queue.push_front(id);
  dispatch(self);
}

void dispatch(pointer self) {
  auto& st = self->state;
  // A job whose requester gave up is not started.
  drop_expired(self);
  while (!st.queue.empty()) {
    // Least loaded first: the lowest share of used capacity.
    auto best = st.workers.end();
    double best_load = 1.0;
    for (auto w = st.workers.begin(); w != st.workers.end(); ++w) {
      if (w->running >= w->capacity)
        continue;
      double load = static_cast<double>(w->running) / w->capacity;
      if (best == st.workers.end() || load < best_load) {
        best = w;
        best_load = load;
      }
    }
    if (best == st.workers.end())
      break;
    auto id = st.queue.front();
    st.queue.pop_front();
    auto& entry = st.jobs[id];
    entry.on = best->hdl.address();
    entry.started = clock_type::now();
    ++best->running;
    if (log::actors()->should_log(spdlog::level::debug))
      log::actors()->debug("job dispatched req_id={} job={} target={} "
                           "local={} node={}",
                           log::rid(entry.job.request_id), id,
                           entry.job.target, best->local,
                           caf::to_string(best->hdl.node()));
    auto from = entry.on;
    auto dest = caf::actor_cast<caf::actor>(best->hdl);
    // A fresh output file per attempt, so that a transcoder that lost the
    // job can never write into its successor's file.
    auto job = entry.job;
    job.output_path = st.cfg.temp_dir + "/job-" + st.nonce + "-"
                      + std::to_string(id) + "-"
                      + std::to_string(entry.attempts);
    // Without the files: a worker that reaches this node's bucket reads
    // and writes the job's objects itself (bucket_job_actor.hpp); for any
    // other, a relay on this node moves the input and the output in chunks
    // (job_relay_actor.hpp).
    entry.by_bucket = !best->shares_files && best->bucket_jobs
                      && has_keys(job) && !entry.bucket_failed;
    bool by_bucket = entry.by_bucket;
    caf::message msg;
    if (by_bucket) {
      // The worker sees no path of this node: it names its own files.
      job.input_path.clear();
      job.output_path.clear();
      dest = best->job_host;
      msg = caf::make_message(bucket_job_atom_v, std::move(job),
                              caf::actor_cast<caf::actor>(best->hdl));
    } else {
      if (!best->shares_files)
        dest = spawn_job_relay(self->system(), best->hdl, best->job_host,
                               st.cfg.job_timeout);
      msg = caf::make_message(transcode_atom_v, std::move(job));
    }
    if (!best->local)
      metrics::global().inc("phonon_remote_jobs_total",
                            {{"mode", by_bucket           ? "bucket"
                                      : best->shares_files ? "files"
                                                           : "chunks"},
                             {"outcome", "dispatched"}});
    self->request(dest, st.cfg.job_timeout, std::move(msg))
      .then(
        [=](transcode_output& out) { finish(self, id, from, std::move(out)); },
        [=](caf::error& err) {
          if (by_bucket && bucket_trouble(err)) {
            retry_without_bucket(self, id, from, err);
          } else if (is_phonon_error(err)) {
            finish(self, id, from, std::move(err));
          } else {
            // The transcoder died (or its node vanished) with this job.
            lost(self, from, err);
          }
        });
  }
  publish_gauges(self);
}

/// Refuses a job when there is no transcoder at all or the queue is full
/// (in jobs or in input bytes); a default error when it may be queued.
caf::error admit(pointer self, const std::string& target,
                 const std::string& request_id, uint64_t input_size) {
  auto& st = self->state;
  // With no transcoder anywhere (an HTTP-only node before any worker
  // joined) a job would only wait for the client's timeout: refuse it.
  if (st.workers.empty()) {
    log::actors()->debug("job refused: no transcoder req_id={} "
                         "target={}",
                         log::rid(request_id), target);
    metrics::global().inc("phonon_conversions_total",
                          {{"format", metric_target(target)},
                           {"outcome", "no_transcoder"}});
    return caf::error{errc::no_transcoder, "no transcoder available"};
  }
  drop_expired(self);
  // Bounded in jobs and in input bytes; one job alone is always taken,
  // however large, or it could never run.
  if (st.jobs.size() >= static_cast<size_t>(st.cfg.queue_limit)
      || (!st.jobs.empty()
          && st.job_bytes + input_size > st.cfg.queue_limit_bytes)) {
    log::actors()->debug("job refused: queue full req_id={} target={} "
                         "jobs={} bytes={}",
                         log::rid(request_id), target, st.jobs.size(),
                         st.job_bytes);
    metrics::global().inc("phonon_conversions_total",
                          {{"format", metric_target(target)},
                           {"outcome", "overloaded"}});
    return caf::error{errc::overloaded, "conversion queue is full"};
  }
  return caf::error{};
}

/// Stamps an admitted job (id, duration limit, deadline), queues it and
/// dispatches.
caf::result<transcode_output> enqueue(pointer self, transcode_job job,
                                      uint64_t input_size) {
  auto& st = self->state;
  auto id = st.next_id++;
  auto rp = self->make_response_promise<transcode_output>();
  job.id = id;
  // Uploads are held to server.max_duration; a master Phonon wrote is
  // converted whatever the limit is now.
  job.max_duration_ms = job.target == "master" ? st.cfg.max_duration_ms : 0;
  job.deadline_unix_ms = now_unix_ms() + st.cfg.request_timeout.count();
  st.job_bytes += input_size;
  log::actors()->debug("job queued req_id={} job={} target={} bytes={} "
                       "queued={}",
                       log::rid(job.request_id), id, job.target, input_size,
                       st.queue.size() + 1);
  st.jobs.emplace(id, job_entry{std::move(job), input_size, rp, 0,
                                caf::actor_addr{}, clock_type::now(), false,
                                false});
  st.queue.push_back(id);
  dispatch(self);
  return rp;
}

/// Registers a transcoder of another node (join_atom).
void join(pointer self, caf::actor hdl, int32_t capacity, bool shares_files,
          caf::actor job_host, const std::string& bucket) {
  auto& ws = self->state.workers;
  const auto& mine = self->state.cfg.bucket;
  if (!hdl || std::any_of(ws.begin(), ws.end(), [&](const worker& w) {
        return w.hdl.address() == hdl.address();
      }))
    return; // a duplicate registration after a reconnect
  auto typed = caf::actor_cast<transcoder_actor>(std::move(hdl));
  self->monitor(typed);
  // Bucket jobs only for a worker that names exactly this node's bucket
  // (endpoint, bucket, prefix): objects written anywhere else would never
  // be found here.
  bool bucket_jobs = !shares_files && job_host && !mine.empty()
                     && bucket == mine;
  ws.push_back(worker{std::move(typed), std::max(1, capacity), 0, false,
                      shares_files, std::move(job_host), bucket_jobs});
  log::actors()->info("remote transcoder joined node={} capacity={} "
                      "shared_files={} bucket_jobs={}",
                      caf::to_string(ws.back().hdl.node()), capacity,
                      shares_files, bucket_jobs);
  if (!bucket.empty() && !bucket_jobs && !shares_files)
    log::actors()->warn("a worker names another bucket than this node's: "
                        "its jobs go in chunks node={} worker_bucket={} "
                        "bucket={}",
                        caf::to_string(ws.back().hdl.node()), bucket,
                        mine.empty() ? "none (local storage)" : mine);
  dispatch(self);
}

supervisor_actor::behavior_type
supervisor_impl(pointer self, supervisor_settings cfg,
                transcoder_factory factory) {
  auto& st = self->state;
  st.cfg = cfg;
  st.nonce = std::to_string(::getpid()) + "-"
             + std::to_string(clock_type::now().time_since_epoch().count());
  st.factory = factory ? std::move(factory)
                       : [](caf::actor_system& sys) {
                           return spawn_transcoder(sys);
                         };
  for (int i = 0; i < cfg.workers; ++i)
    spawn_local(self);
  self->set_down_handler([=](caf::down_msg& dm) { lost(self, dm.source, dm.reason); });
  publish_gauges(self);
  return {
    [=](transcode_atom, std::string& target, std::string& input_path,
        uint64_t input_size,
        std::string& request_id) -> caf::result<transcode_output> {
      if (auto err = admit(self, target, request_id, input_size))
        return err;
      transcode_job job;
      job.target = std::move(target);
      job.input_path = std::move(input_path);
      job.request_id = std::move(request_id);
      return enqueue(self, std::move(job), input_size);
    },
    [=](transcode_atom, std::string& target, std::string& input_path,
        uint64_t input_size, std::string& request_id, blob_ref& input_key,
        blob_ref& output_key) -> caf::result<transcode_output> {
      if (auto err = admit(self, target, request_id, input_size))
        return err;
      transcode_job job;
      job.target = std::move(target);
      job.input_path = std::move(input_path);
      job.request_id = std::move(request_id);
      job.input_key = std::move(input_key);
      job.output_key = std::move(output_key);
      return enqueue(self, std::move(job), input_size);
    },
    [=](join_atom, caf::actor hdl, int32_t capacity, bool shares_files,
        caf::actor job_host) {
      join(self, std::move(hdl), capacity, shares_files, std::move(job_host),
           std::string{});
    },
    [=](join_atom, caf::actor hdl, int32_t capacity, bool shares_files,
        caf::actor job_host, const std::string& bucket) {
      join(self, std::move(hdl), capacity, shares_files, std::move(job_host),
           bucket);
    },
    [=](peer_atom, caf::actor other) -> caf::result<caf::actor> {
      // The published supervisor is a node's one door: a serve node that
      // joins is handed on to this node's peers actor.
      if (!cfg.peers)
        return caf::make_error(caf::sec::unexpected_message,
                               "this node takes no serve nodes");
      return self->delegate(caf::actor_cast<peers_actor>(cfg.peers),
                            peer_atom_v, std::move(other));
    },
    [=](status_atom) -> pool_status {
      pool_status res;
      std::set<caf::node_id> nodes;
      for (auto& w : self->state.workers) {
        (w.local ? res.local_transcoders : res.remote_transcoders) += 1;
        if (!w.local)
          nodes.insert(w.hdl.node());
      }
      res.remote_nodes = static_cast<int32_t>(nodes.size());
      res.queued = static_cast<int32_t>(self->state.queue.size());
      res.running = static_cast<int32_t>(self->state.jobs.size())
                    - res.queued;
      return res;
    },
  };
}

} // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys,
                                  supervisor_settings cfg,
                                  transcoder_factory factory) {
  auto& m = metrics::global();
  m.describe("phonon_conversions_total", "counter",
             "Conversions by target format and outcome.");
  m.describe("phonon_conversion_seconds", "histogram",
             "Conversion latency in seconds by target format.",
             {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
              5, 10});
  m.describe("phonon_transcoders", "gauge", "Transcoders by kind.");
  m.describe("phonon_transcoder_deaths_total", "counter",
             "Transcoders that died, by kind.");
  m.describe("phonon_cluster_nodes", "gauge",
             "Other nodes this one works with: kind=worker, worker nodes "
             "with registered transcoders; kind=serve, serve nodes it "
             "exchanges change events with.");
  m.describe("phonon_queue_depth", "gauge", "Conversion jobs waiting.");
  m.describe("phonon_remote_jobs_total", "counter",
             "Jobs sent to worker nodes, by mode (bucket: the worker reads "
             "and writes the bucket itself; chunks: the bytes go through "
             "this node; files: a worker sharing this node's files) and "
             "outcome (dispatched; fallback: a bucket job that failed for "
             "the bucket's sake and runs again without it).");
  m.describe("phonon_job_relay_bytes_total", "counter",
             "Bytes of remote jobs relayed through this node in chunks, by "
             "direction (in: input sent to a worker; out: output fetched "
             "back). Bucket jobs add nothing.");
  m.describe("phonon_jobs_running", "gauge", "Conversion jobs running.");
  // Shown from the start (0): a rate of them is 0, not no data.
  m.inc("phonon_transcoder_deaths_total", {{"kind", "local"}}, 0);
  m.inc("phonon_transcoder_deaths_total", {{"kind", "remote"}}, 0);
  return sys.spawn(supervisor_impl, cfg, std::move(factory));
}

} // namespace phonon::actors
