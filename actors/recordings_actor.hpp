#pragma once

#include <chrono>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/format_cache_actor.hpp"
#include "actors/messages.hpp"
#include "actors/peers_actor.hpp"
#include "actors/read_model.hpp"
#include "actors/repository_actor.hpp"
#include "actors/storage_actor.hpp"
#include "actors/transcode_supervisor.hpp"

namespace phonon::actors {

/// The use cases the HTTP side asks for: upload, metadata, fetch a format,
/// delete, list, and startup recovery. It coordinates the storage,
/// supervisor, cache and repository actors and never blocks itself.
///
/// Request ids: an upload (upload_request::request_id), a fetch and a
/// delete carry the X-Request-Id of their HTTP request, and every log line
/// about them carries it (log::rid), in this actor and in the actors it
/// asks, on every node. The master written after an upload was answered,
/// its retries (remaster) and marking it ready keep the upload's id: they
/// finish what that request started. Startup reconciliation and recovery
/// belong to no request and log "-".
using recordings_actor = caf::typed_actor<
  /// Stores, validates and registers an upload (POST or PUT).
  caf::replies_to<upload_atom, upload_request>::with<upload_result>,
  /// Metadata of (user, phrase); then the request id.
  caf::replies_to<meta_atom, int64_t, int64_t, std::string>::with<
    persistence::recording>,
  /// The file of (user, phrase) in a format, made if needed; then the
  /// request id.
  caf::replies_to<fetch_atom, int64_t, int64_t, std::string,
                  std::string>::with<file_ref>,
  /// Deletes (user, phrase) with every file; then the request id.
  caf::replies_to<remove_atom, int64_t, int64_t, std::string>::with<bool>,
  /// Lists (user, after, limit); then the request id.
  caf::replies_to<list_atom, int64_t, int64_t, int32_t, std::string>::with<
    std::vector<persistence::recording>>,
  /// Startup: reconciles storage with the database once (orphan revision
  /// folders removed, rows without an original marked failed), then
  /// re-enqueues every `processing` row; returns how many there were.
  caf::replies_to<recover_atom>::with<int32_t>,
  /// (internal) The second reconciliation, recordings_deps::reconcile_grace
  /// after the first: it judges the revisions the first one had to leave
  /// alone because they were younger than the grace.
  caf::reacts_to<scan_atom>,
  /// Makes a revision's master again from its original (sent to itself
  /// after a master write failed, e.g. on a full disk; attempt counts up;
  /// then the id of the upload that made the revision).
  caf::reacts_to<remaster_atom, persistence::recording, int32_t,
                 std::string>,
  /// Records that a revision's master is stored (sent to itself again and
  /// again while the database is unreachable, so no completion is lost;
  /// then the id of the upload that made the revision).
  caf::reacts_to<ready_atom, persistence::recording, std::string>>;

/// The actors a recordings actor works with.
struct recordings_deps {
  repository_actor repository;
  storage_actor storage;
  supervisor_actor supervisor;
  format_cache_actor cache;
  /// server.request_timeout: an upload or delete that has not reached its
  /// commit point by then is abandoned and answered 504.
  caf::timespan request_timeout = std::chrono::seconds(30);
  /// Tests only: a committed upload's master is not installed with its
  /// original but made this much later (from its original), the path an
  /// upload takes when its master cannot be installed; a test can fill the
  /// disk in between. 0 = installed with the original.
  caf::timespan master_delay{0};
  /// The published read model (read_model.hpp): this actor publishes what
  /// its misses read and invalidates a key before it answers any change of
  /// it. Off (publishes nothing) unless set.
  std::shared_ptr<read_model> model = std::make_shared<read_model>(0);
  /// Startup reconciliation judges only revisions made this long before
  /// the actor started. With storage other nodes share (S3), an upload
  /// through another node may have stored its original and not yet
  /// committed its row; it commits within server.request_timeout or never.
  caf::timespan reconcile_grace{0};
  /// An upload's original is stored before it is decoded, and the decode
  /// names both objects' keys: with storage other nodes share (S3), a
  /// worker on the bucket then decodes the original from the bucket and
  /// writes the master there itself (a bucket job), so neither passes
  /// through this node. Off: the decode overlaps the original's fsync and
  /// both are installed together (local storage).
  bool original_first = false;
  /// The other serve nodes of the deployment (peers_actor.hpp): told of
  /// every change, like the read model. None on a node alone.
  peers_actor peers{};
  /// storage.s3.redirect_min_bytes while storage.s3.redirect is on, else
  /// 0: a GET of an original or master of at least this size is answered
  /// with a redirect to the bucket, so the facts of such a file come from
  /// the bucket (facts_atom) and this node makes no copy of it.
  uint64_t redirect_min_bytes = 0;
};

/// Spawns the recordings actor.
recordings_actor spawn_recordings(caf::actor_system& sys,
                                  recordings_deps deps);

} // namespace phonon::actors
