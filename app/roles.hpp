#pragma once

#include <chrono>

#include <csignal>
#include <memory>

#include "actors/transcoder_actor.hpp"
#include "config/settings.hpp"
#include "persistence/blob_store.hpp"
#include "persistence/recording_store.hpp"

namespace phonon::app {

/// `phonon serve`: HTTP + actors until SIGINT/SIGTERM.
int run_serve(const config::settings& s);

/// `phonon worker --join HOST:PORT`: a transcoder pool without HTTP.
int run_worker(const config::settings& s);

/// `phonon migrate`: applies the database migrations and exits.
int run_migrate(const config::settings& s);

/// Opens the configured blob store (storage.type) and checks it: a bucket
/// that refuses the credentials or does not exist throws (the node does not
/// start); one that does not answer is logged and waited for by readiness.
std::shared_ptr<persistence::blob_store>
open_blob_store(const config::settings& s);

/// Opens the configured recording store and migrates it.
std::unique_ptr<persistence::recording_store>
open_store(const config::settings& s);

/// The transcode function of this process: the media one, or (only when
/// the test-only PHONON_TEST_FAULT variable is set, e.g. `throw:master` or
/// `abort:mp3`) one that crashes on jobs for that target.
actors::transcode_fn transcode_function();

/// Tests only: $PHONON_TEST_MASTER_DELAY_MS, how late a committed upload's
/// master is made (0 when unset).
std::chrono::milliseconds test_master_delay();

/// Blocks SIGINT and SIGTERM in this and every later thread; returns the set
/// for wait_for_signal().
sigset_t block_stop_signals();

/// Waits for SIGINT or SIGTERM; returns the signal.
int wait_for_signal(const sigset_t& set);

/// Sends libav's log lines to the `media` logger.
void route_libav_logs();

} // namespace phonon::app
