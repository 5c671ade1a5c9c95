#include "http/handlers.hpp"

#include <chrono>
#include <ctime>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include "actors/errors.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "http/console.hpp"
#include "http/ids.hpp"
#include "http/status_map.hpp"
#include "http/waveform_query.hpp"
#include "media/formats.hpp"

namespace phonon::http {

namespace {

using persistence::recording;

/// The answer to a request whose handler threw: a JSON 500 for that one
/// request, the reason in the log only.
reply internal_error(const char* where, const char* what) {
  log::http()->error("handler failed where={} error={}", where, what);
  return error_reply(500, "internal error", "internal");
}

/// Serializes JSON for an answer. Text that is not valid UTF-8 (rows
/// stored before names were cleaned) is written with U+FFFD instead of
/// making dump() throw.
std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The argument type of a one-argument lambda.
template <class F>
struct argument_of;

template <class C, class R, class A>
struct argument_of<R (C::*)(A) const> {
  using type = A;
};

template <class C, class R, class A>
struct argument_of<R (C::*)(A)> {
  using type = A;
};

/// Wraps a response handler so that an exception it throws answers a JSON
/// 500 instead of killing the bridge actor (and leaving the client with no
/// answer). Keeps the handler's exact signature: CAF matches it against the
/// response type.
template <class OnOk,
          class Arg = typename argument_of<decltype(&OnOk::operator())>::type>
auto guard_reply(OnOk on_ok, respond_fn respond) {
  return [on_ok, respond](Arg x) mutable {
    try {
      on_ok(std::forward<Arg>(x));
    } catch (const std::exception& e) {
      respond(internal_error("reply", e.what()));
    } catch (...) {
      respond(internal_error("reply", "unknown exception"));
    }
  };
}

/// Sends one request to `hdl` from a one-shot bridge actor: `on_ok` gets the
/// result, every error becomes its mapped reply, and an exception thrown by
/// `on_ok` becomes a JSON 500. The bridge has no behavior of its own, so it
/// quits after its response handler ran.
template <class Handle, class OnOk, class... Ts>
void ask_within(const services& svc, std::chrono::milliseconds timeout,
                const respond_fn& respond, const Handle& hdl, OnOk on_ok,
                Ts... xs) {
  svc.sys->spawn([=](caf::event_based_actor* self) {
    self->request(hdl, timeout, xs...)
      .then(guard_reply(on_ok, respond),
            [=](caf::error& err) { respond(to_reply(err)); });
  });
}

/// ask_within with the bound of ordinary requests.
template <class Handle, class OnOk, class... Ts>
void ask(const services& svc, const respond_fn& respond, const Handle& hdl,
         OnOk on_ok, Ts... xs) {
  ask_within(svc, svc.timeout, respond, hdl, std::move(on_ok), xs...);
}

std::string rfc3339(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string base_path(int64_t user, int64_t phrase) {
  return "/audio/user/" + std::to_string(user) + "/phrase/"
         + std::to_string(phrase);
}

/// Seconds since the Unix epoch.
int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

/// Format name -> URL of every format of a recording: plain paths with auth
/// off, signed links (valid for auth.link_ttl from `now`) with auth on.
nlohmann::json format_links(const authenticator& auth, bool may_read,
                            int64_t user, int64_t phrase, int64_t now) {
  nlohmann::json formats = nlohmann::json::object();
  for (auto f : {media::format::m4a, media::format::wav, media::format::mp3,
                 media::format::ogg, media::format::opus, media::format::flac,
                 media::format::webm}) {
    auto path = base_path(user, phrase) + "/" + media::to_string(f);
    // A caller without read scope (an upload-only token) gets the plain
    // paths: a link would let it read what it may not.
    formats[media::to_string(f)] = auth.enabled() && may_read
                                     ? auth.sign_link(path, now)
                                     : path;
  }
  // The waveforms (API.md, "Waveforms"), listed like a format: a signed
  // link covers the path, so a client adds its own zoom parameters to it.
  for (auto name : {"waveform.json", "waveform.dat"}) {
    auto path = base_path(user, phrase) + "/" + name;
    formats[name] = auth.enabled() && may_read ? auth.sign_link(path, now)
                                               : path;
  }
  return formats;
}

/// A JSON answer that may carry signed links: never stored by a cache
/// while auth is on (the links are credentials).
reply links_reply(unsigned status, std::string json,
                  const authenticator& auth) {
  auto r = json_reply(status, std::move(json));
  if (auth.enabled())
    r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

nlohmann::json to_json(const recording& rec, const authenticator& auth,
                       bool may_read) {
  nlohmann::json j{
    {"user_id", rec.user_id},
    {"phrase_id", rec.phrase_id},
    // Ids above 2^53 lose digits in JavaScript's JSON.parse.
    {"user_id_str", std::to_string(rec.user_id)},
    {"phrase_id_str", std::to_string(rec.phrase_id)},
    {"status", persistence::to_string(rec.status)},
    {"original_format", rec.original_format},
    {"original_filename", rec.original_filename},
    {"size_bytes", rec.size_bytes},
    {"duration_ms", rec.duration_ms},
    {"sample_rate", rec.sample_rate},
    {"channels", rec.channels},
    {"created_at", rfc3339(rec.created_at)},
    {"updated_at", rfc3339(rec.updated_at)},
    {"formats", format_links(auth, may_read, rec.user_id, rec.phrase_id,
                             unix_now())},
  };
  if (rec.status == persistence::recording_status::failed)
    j["error"] = rec.error;
  return j;
}

/// The metadata answer of a recording.
reply metadata_reply(const recording& rec, const authenticator& auth) {
  return links_reply(200, dump_json(to_json(rec, auth, true)), auth);
}

/// The answer to POST .../links: fresh links of every format.
reply fresh_links_reply(const recording& rec, const authenticator& auth) {
  auto now = unix_now();
  nlohmann::json body{
    {"formats", format_links(auth, true, rec.user_id, rec.phrase_id, now)},
    {"expires_at", nullptr}};
  if (auth.enabled())
    body["expires_at"] = rfc3339((now + auth.link_ttl()) * 1000);
  return links_reply(200, dump_json(body), auth);
}

/// Unix time in milliseconds.
int64_t unix_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

/// The upload message with the request's id (its log lines carry it).
actors::upload_request with_request_id(actors::upload_request up,
                                       const std::string& id) {
  up.request_id = id;
  return up;
}

void upload(const services& svc, const incoming& req,
            const respond_fn& respond) {
  // Waits past request_timeout: the recordings actor answers 504 itself
  // when it abandons the upload before its commit point (services.hpp).
  ask_within(
    svc, svc.change_timeout, respond, svc.recordings,
    [respond, auth = svc.auth, may_read = req.may_read](
      actors::upload_result& res) {
      nlohmann::json body{{"message", res.created
                                        ? "Audio uploaded successfully"
                                        : "Audio replaced successfully"},
                          {"data", to_json(res.rec, *auth, may_read)}};
      auto r = links_reply(res.created ? 201 : 200, dump_json(body), *auth);
      r.headers.emplace_back("Location",
                             base_path(res.rec.user_id, res.rec.phrase_id));
      respond(std::move(r));
    },
    actors::upload_atom_v, with_request_id(*req.upload, req.request_id));
}

void list(const services& svc, const incoming& req,
          const respond_fn& respond) {
  int32_t limit = 100;
  int64_t after = 0;
  if (auto text = query_param(req.query, "limit")) {
    auto n = parse_id(*text);
    if (!n || *n > 1000) {
      respond(error_reply(400, "limit must be an integer from 1 to 1000",
                          "bad_request"));
      return;
    }
    limit = static_cast<int32_t>(*n);
  }
  if (auto text = query_param(req.query, "after")) {
    auto n = parse_id(*text);
    if (!n) {
      respond(error_reply(400, "after must be a phrase id", "bad_request"));
      return;
    }
    after = *n;
  }
  // One row more than asked tells whether there is a next page.
  ask(
    svc, respond, svc.recordings,
    [respond, limit, auth = svc.auth](std::vector<recording>& rows) {
      nlohmann::json items = nlohmann::json::array();
      bool more = rows.size() > static_cast<size_t>(limit);
      if (more)
        rows.resize(static_cast<size_t>(limit));
      for (auto& rec : rows)
        items.push_back(to_json(rec, *auth, true));
      nlohmann::json body{{"items", std::move(items)}, {"next", nullptr}};
      if (more)
        body["next"] = std::to_string(rows.back().phrase_id);
      respond(links_reply(200, dump_json(body), *auth));
    },
    actors::list_atom_v, req.where.user_id, after, limit + 1, req.request_id);
}

void readiness(const services& svc, const respond_fn& respond) {
  auto timeout = std::min(svc.timeout, std::chrono::milliseconds{5000});
  auto repo = svc.repository;
  auto storage = svc.storage;
  auto supervisor = svc.supervisor;
  svc.sys->spawn([=](caf::event_based_actor* self) {
    struct checks {
      bool database = false;
      bool storage = false;
      bool transcoder = false;
      int pending = 3;
    };
    auto st = std::make_shared<checks>();
    auto done = [=] {
      if (--st->pending > 0)
        return;
      nlohmann::json body{
        {"database", st->database ? "ok" : "unavailable"},
        {"storage", st->storage ? "ok" : "unavailable"},
        {"transcoder", st->transcoder ? "ok" : "unavailable"}};
      bool ok = st->database && st->storage && st->transcoder;
      body["status"] = ok ? "ok" : "unavailable";
      respond(json_reply(ok ? 200 : 503, dump_json(body)));
    };
    self->request(repo, timeout, actors::ping_atom_v)
      .then([=](bool ok) { st->database = ok; done(); },
            [=](caf::error&) { done(); });
    self->request(storage, timeout, actors::ping_atom_v)
      .then([=](bool ok) { st->storage = ok; done(); },
            [=](caf::error&) { done(); });
    self->request(supervisor, timeout, actors::status_atom_v)
      .then(
        [=](const actors::pool_status& ps) {
          st->transcoder = ps.local_transcoders + ps.remote_transcoders > 0;
          done();
        },
        [=](caf::error&) { done(); });
  });
}

/// The name under which the audio route's file is stored and cached: the
/// format for a format, the waveform's parameters for a waveform; nullopt
/// when the query of a waveform is refused (answer() says why).
std::optional<std::string> stored_format(const incoming& req) {
  if (auto w = parse_waveform_query(req.where.format, req.query)) {
    if (!w->error.empty())
      return std::nullopt;
    return w->format;
  }
  return req.where.format;
}

} // namespace

std::optional<reply> answer_from_model(const services& svc,
                                       const incoming& req) {
  const auto& r = req.where;
  bool read = req.method == "GET" || req.method == "HEAD";
  bool links = r.kind == route_kind::links && req.method == "POST";
  if (!(read && (r.kind == route_kind::recording || r.kind == route_kind::audio))
      && !links)
    return std::nullopt;
  auto view = svc.model->find(r.user_id, r.phrase_id);
  if (!view)
    return std::nullopt;
  if (r.kind == route_kind::recording)
    return metadata_reply(view->row, *svc.auth);
  if (links)
    return fresh_links_reply(view->row, *svc.auth);
  auto format = stored_format(req);
  if (!format)
    return std::nullopt;
  auto* file = view->file(*format);
  if (file == nullptr)
    return std::nullopt;
  const auto& row = view->row;
  bool derived = *format != "wav"
                 && !(row.serve_original && *format == row.original_format);
  if (derived) {
    // Served from the format cache's file as much as a hit the actors
    // answer (phonon_cache_hits_total counts both).
    static auto& hits = actors::metrics::global().counter(
      "phonon_cache_hits_total");
    hits.add(1);
    if (actors::read_model::should_touch(*file, unix_now_ms()))
      caf::anon_send(svc.cache, actors::touch_atom_v, row.user_id,
                     row.phrase_id, row.revision, *format);
  }
  reply res;
  res.file = file->facts;
  res.from_model = true;
  return res;
}

std::string recording_json(const recording& rec, const authenticator& auth) {
  return dump_json(to_json(rec, auth, true));
}

namespace {

void answer(const services& svc, const incoming& req,
            const respond_fn& respond);

} // namespace

void handle(const services& svc, const incoming& req, respond_fn respond) {
  try {
    answer(svc, req, respond);
  } catch (const std::exception& e) {
    respond(internal_error("handle", e.what()));
  } catch (...) {
    respond(internal_error("handle", "unknown exception"));
  }
}

namespace {

void answer(const services& svc, const incoming& req,
           const respond_fn& respond) {
  const auto& r = req.where;
  switch (r.kind) {
    case route_kind::healthz:
      respond(json_reply(200, R"({"status":"ok"})"));
      return;
    case route_kind::readyz:
      readiness(svc, respond);
      return;
    case route_kind::metrics: {
      auto st = svc.model->snapshot();
      auto& m = actors::metrics::global();
      m.set("phonon_read_model_entries", {}, static_cast<double>(st.entries));
      m.set("phonon_read_model_hits_total", {}, static_cast<double>(st.hits));
      m.set("phonon_read_model_misses_total", {},
            static_cast<double>(st.misses));
      reply res;
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = actors::metrics::global().render();
      respond(std::move(res));
      return;
    }
    case route_kind::console: {
      auto r = svc.console ? console_reply(req.where.format, req.if_none_match,
                                           svc.console_media_origin)
                           : std::nullopt;
      respond(r ? std::move(*r) : error_reply(404, "not found", "not_found"));
      return;
    }
    case route_kind::user_list:
      list(svc, req, respond);
      return;
    case route_kind::recording:
      if (req.method == "POST" || req.method == "PUT") {
        upload(svc, req, respond);
      } else if (req.method == "DELETE") {
        ask_within(
          svc, svc.change_timeout, respond, svc.recordings,
          [respond](bool) {
            reply res;
            res.status = 204;
            res.content_type.clear();
            respond(std::move(res));
          },
          actors::remove_atom_v, r.user_id, r.phrase_id, req.request_id);
      } else {
        ask(
          svc, respond, svc.recordings,
          [respond, auth = svc.auth](recording& rec) {
            respond(metadata_reply(rec, *auth));
          },
          actors::meta_atom_v, r.user_id, r.phrase_id, req.request_id);
      }
      return;
    case route_kind::links:
      // Fresh signed links of an existing recording (404 otherwise).
      ask(
        svc, respond, svc.recordings,
        [respond, auth = svc.auth](recording& rec) {
          respond(fresh_links_reply(rec, *auth));
        },
        actors::meta_atom_v, r.user_id, r.phrase_id, req.request_id);
      return;
    case route_kind::audio: {
      std::string format = r.format;
      if (auto w = parse_waveform_query(r.format, req.query)) {
        if (!w->error.empty()) {
          respond(error_reply(400, w->error, "bad_request"));
          return;
        }
        format = std::move(w->format);
      } else if (!media::parse_format(r.format)) {
        respond(error_reply(400,
                            "unknown format; use one of m4a, wav, mp3, ogg, "
                            "opus, flac, webm, waveform.json, waveform.dat",
                            "bad_request"));
        return;
      }
      ask(
        svc, respond, svc.recordings,
        [respond](actors::file_ref& file) {
          reply res;
          res.file = std::move(file);
          respond(std::move(res));
        },
        actors::fetch_atom_v, r.user_id, r.phrase_id, format,
        req.request_id);
      return;
    }
    default:
      respond(error_reply(404, "not found", "not_found"));
  }
}

} // namespace

} // namespace phonon::http
