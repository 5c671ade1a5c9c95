// Cross-origin fetch() from pages on loopback origins other than Phonon's:
// a page whose origin is in server.cors_origins reads the metadata JSON and
// a byte range of the audio (and the exposed headers); a page whose origin
// is not listed sees its fetch() rejected.
//
// Config (argv[2], JSON):
//   chromium, profile, result_path, timeout_ms: see harness.mjs
//   phonon: "http://127.0.0.1:<port>"
//   metadata_path, audio_path: paths on phonon (audio_path may carry a
//     signed link's query)
//   token: a bearer token sent as Authorization, or "" for none
//   links_path: optional; POST there (with the token) for fresh signed
//     links, then fetch the m4a link with a Range and no Authorization
//   request_id: sent as X-Request-Id (a header that is not CORS-safelisted,
//     so every fetch is preflighted)
//   origins: [{ key, port }]: one page per entry, served from
//     http://127.0.0.1:<port>
// Result: { results: { key: { origin, metadata, audio, links? } },
//           responses: [{ url, method, status }] }
// Each fetch result has either `status` plus what was read, or `error`
// (the rejection's name and message). The C++ test decides what passes.

import { blank_page, open_page, read_config, run, serve_page } from './harness.mjs';

const config = read_config();

await run(config, async (browser, keep) => {
  const results = {};
  const responses = [];
  for (const o of config.origins) {
    const { server, origin } = await serve_page(blank_page, o.port);
    keep(server);
    const page = await open_page(browser, origin + '/');
    page.on('response', (r) => {
      if (!r.url().startsWith(config.phonon)) return;
      responses.push({ origin, url: r.url(), method: r.request().method(), status: r.status() });
    });
    const r = await page.evaluate(async (c) => {
      const headers = { 'X-Request-Id': c.request_id };
      if (c.token) headers.Authorization = 'Bearer ' + c.token;
      const failed = (e) => ({ error: `${e.name}: ${e.message}` });
      const bounded = () => AbortSignal.timeout(15000);
      const out = { origin: location.origin };
      try {
        const res = await fetch(c.phonon + c.metadata_path, { headers, signal: bounded() });
        const m = { status: res.status, x_request_id: res.headers.get('X-Request-Id') };
        const text = await res.text();
        try {
          m.json = JSON.parse(text);
        } catch {
          m.text = text.slice(0, 500);
        }
        out.metadata = m;
      } catch (e) {
        out.metadata = failed(e);
      }
      try {
        const res = await fetch(c.phonon + c.audio_path, {
          headers: { ...headers, Range: 'bytes=0-99' },
          signal: bounded(),
        });
        const body = await res.arrayBuffer();
        const h = (n) => res.headers.get(n);
        out.audio = {
          status: res.status,
          bytes: body.byteLength,
          content_range: h('Content-Range'),
          content_length: h('Content-Length'),
          accept_ranges: h('Accept-Ranges'),
          content_type: h('Content-Type'),
          etag: h('ETag'),
          last_modified: h('Last-Modified'),
          x_request_id: h('X-Request-Id'),
        };
      } catch (e) {
        out.audio = failed(e);
      }
      if (c.links_path) {
        // POST .../links with the token, then the fresh m4a link read with
        // fetch() and no Authorization (as a page decoding audio with Web
        // Audio would).
        try {
          const res = await fetch(c.phonon + c.links_path, {
            method: 'POST',
            headers,
            signal: bounded(),
          });
          const l = { status: res.status };
          const text = await res.text();
          try {
            l.json = JSON.parse(text);
          } catch {
            l.text = text.slice(0, 500);
          }
          const link = l.json && l.json.formats && l.json.formats.m4a;
          if (link) {
            const a = await fetch(c.phonon + link, {
              headers: { Range: 'bytes=0-99', 'X-Request-Id': c.request_id },
              signal: bounded(),
            });
            const body = await a.arrayBuffer();
            l.link_status = a.status;
            l.link_bytes = body.byteLength;
            l.link_content_range = a.headers.get('Content-Range');
          }
          out.links = l;
        } catch (e) {
          out.links = failed(e);
        }
      }
      return out;
    }, config);
    results[o.key] = r;
    await page.close();
  }
  return { results, responses };
});
