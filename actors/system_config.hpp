#pragma once

#include <caf/actor_system_config.hpp>

#include "config/settings.hpp"

namespace phonon::actors {

/// Prepares CAF for Phonon: announces the message types (needed for remote
/// nodes), registers the error renderer, loads the middleman and sizes the
/// scheduler against the machine (Beast and the detached actors run on
/// threads of their own). With `cluster.tls.*` set it also loads CAF's
/// OpenSSL module with this node's certificate, key and CA: copies of the
/// files read now into memory (so later changes to the files need a
/// restart) and checked like check_cluster_tls does; every cluster
/// connection of the system then has to go through
/// `caf::openssl::publish` / `caf::openssl::remote_actor`.
/// @throws config::config_error when the TLS files are unusable.
void configure(caf::actor_system_config& cfg, const config::settings& s);

/// Loads the `cluster.tls.*` files the way CAF's OpenSSL session will (a PEM
/// certificate chain, an unencrypted PEM private key that matches it, a PEM
/// CA file), so that a bad file stops the process at start: CAF itself
/// reads them only when a connection opens, and throws from its I/O thread.
/// Logs a warning when the CA did not sign the node's own certificate
/// (every peer would refuse this node). Any thread; no-op when TLS is off.
/// @throws config::config_error naming the key and OpenSSL's reason.
void check_cluster_tls(const config::cluster_tls_settings& tls);

} // namespace phonon::actors
