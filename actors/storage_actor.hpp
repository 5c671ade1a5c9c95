#pragma once

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "persistence/blob_store.hpp"

namespace phonon::actors {

/// Owns the stored bytes. Runs detached because every handler does blocking
/// file I/O (fsync included). Failures answer errc::storage_failure, a full
/// disk (or an upload that would eat into storage.min_free_bytes)
/// errc::storage_full; a missing file answers errc::not_found. Handlers run
/// one at a time, so a check and the write after it are atomic with respect
/// to every other change of the stored files.
///
/// The last argument of the messages a request causes is its request id
/// (X-Request-Id, empty for work no request caused): the failure lines
/// these handlers log carry it (log::rid).
using storage_actor = caf::typed_actor<
  /// Syncs a spooled upload and creates its revision folder durably ahead
  /// of its store_atom, while the upload decodes (blob_store prepare_put);
  /// then the request id. Failures are only logged: store_atom does the
  /// same work again and reports them.
  caf::reacts_to<prepare_atom, blob_ref, std::string, std::string>,
  /// Installs an upload: moves the spooled original (blob_ref, spool path)
  /// and, when a temp path is given (else ""), its WAV master into the
  /// revision folder with one fsync of the folder (blob_store put_upload;
  /// the master is fsync'd here unless the bool says its writer did).
  /// Then the master's size: storage_full unless the original, the master
  /// and the reserve all fit; then the request id. Answers true when the
  /// master was installed too. A master that cannot be installed (any
  /// failure) is logged and left in the temp folder, and the original is
  /// installed alone (false): the caller adopts the master later.
  caf::replies_to<store_atom, blob_ref, std::string, std::string, bool,
                  uint64_t, std::string>::with<bool>,
  /// Writes bytes durably under a key (a master or a derived format), but
  /// only while the revision's original exists: a revision deleted or
  /// replaced meanwhile answers errc::not_found and gets no file.
  caf::replies_to<caf::put_atom, blob_ref, std::string, std::string>::with<
    blob_stat>,
  /// Moves a finished temp file (a transcoder's output: a master or a
  /// derived format) into place under a key durably (fsync, rename, fsync
  /// dir), but only while the revision's original exists, like put_atom.
  /// Whatever the outcome, the temp file is gone afterwards: adopted, or
  /// removed on any failure (errc::not_found when the revision is gone).
  caf::replies_to<adopt_atom, blob_ref, std::string, std::string>::with<
    blob_stat>,
  /// Takes over an object that a worker stored in the bucket itself (a
  /// bucket job's output, bucket_job_actor.hpp) under a key, of the size
  /// the worker reported; then the request id. Like adopt_atom only while
  /// the revision's original exists: a revision deleted or replaced
  /// meanwhile answers errc::not_found and the object is removed. With
  /// `copy` it makes this node's copy of it (blob_store stat: a derived
  /// format, served at once) and answers its facts; without, it only asks
  /// the bucket for its facts (blob_store facts, never a download: a
  /// master, which this node copies when it first needs it) and answers
  /// no path. An object missing or of another size answers
  /// errc::storage_failure.
  caf::replies_to<claim_atom, blob_ref, uint64_t, bool, std::string>::with<
    blob_stat>,
  /// Reads a stored file.
  caf::replies_to<read_atom, blob_ref, std::string>::with<std::string>,
  /// Stats a stored file; errc::not_found when missing.
  caf::replies_to<stat_atom, blob_ref, std::string>::with<blob_stat>,
  /// The facts a GET that may be redirected to the bucket needs
  /// (blob_store::facts): like stat_atom, but with S3 an object of at least
  /// the given size that this node has no copy of is answered from the
  /// bucket's HEAD, without a download; its path then does not exist.
  /// Then the request id.
  caf::replies_to<facts_atom, blob_ref, uint64_t, std::string>::with<
    blob_stat>,
  /// Removes a spooled file (an upload that was refused).
  caf::reacts_to<drop_atom, std::string>,
  /// Removes one stored file (cache eviction).
  caf::replies_to<drop_atom, blob_ref, std::string>::with<bool>,
  /// Removes one revision of (user, phrase) with everything in it.
  caf::replies_to<drop_atom, int64_t, int64_t, int64_t, std::string>::with<
    bool>,
  /// Removes every revision of (user, phrase) except `keep` (0 = all).
  caf::replies_to<prune_atom, int64_t, int64_t, int64_t, std::string>::with<
    bool>,
  /// Every stored file in the `sub` folder of any revision ("cache").
  caf::replies_to<list_atom, std::string>::with<std::vector<listed_blob>>,
  /// Every revision folder (startup reconciliation).
  caf::replies_to<scan_atom>::with<std::vector<stored_revision>>,
  /// True when the storage is writable: a probe file can be written, the
  /// free space is above the reserve, and the last write that failed for
  /// want of space would fit now.
  caf::replies_to<ping_atom>::with<bool>>;

/// Spawns the storage actor around a blob store. Uploads that would leave
/// less than `min_free_bytes` free are refused with errc::storage_full.
storage_actor spawn_storage(caf::actor_system& sys,
                            std::shared_ptr<persistence::blob_store> st,
                            uint64_t min_free_bytes = 0);

} // namespace phonon::actors
