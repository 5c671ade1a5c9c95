// Plays Phonon's signed links in <audio src=...> elements of a page served
// from a second loopback origin (this script's own HTTP server), with no
// request headers of ours: what an app's web page does with the links from
// the metadata's `formats` map.
//
// Config (argv[2], JSON):
//   chromium, profile, result_path, timeout_ms: see harness.mjs
//   cases: [{ key, src (absolute URL), wait_ms }]
// Every case gets one <audio> in the same page, all loading at once. It
// records the duration at loadedmetadata, calls play(), tracks the largest
// currentTime seen in timeupdate, and is done at `ended`, at `error`
// (MediaError code and message), or after wait_ms.
// Result: { origin, results: { key: {...} }, responses: [{ url, status }] }
// (the statuses the browser got for every request to the server). The C++
// test decides what is a pass.

import { blank_page, open_page, read_config, run, serve_page } from './harness.mjs';

const config = read_config();

await run(config, async (browser, keep) => {
  const { server, origin } = await serve_page(blank_page);
  keep(server);
  const page = await open_page(browser, origin + '/');
  const responses = [];
  page.on('response', (r) => {
    if (r.url().startsWith(origin)) return;
    responses.push({ url: r.url(), status: r.status(), method: r.request().method() });
  });
  page.on('requestfailed', (r) => {
    responses.push({ url: r.url(), failed: r.failure()?.errorText ?? '?' });
  });
  const results = await page.evaluate(async (cases) => {
    const one = (c) =>
      new Promise((resolve) => {
        const r = { maxTime: 0 };
        const a = document.createElement('audio');
        a.preload = 'auto';
        let done = false;
        let timer = null;
        const finish = (why) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          r.finished = why;
          r.currentTime = a.currentTime;
          r.networkState = a.networkState;
          r.readyState = a.readyState;
          a.pause();
          resolve([c.key, r]);
        };
        timer = setTimeout(() => finish('timeout'), c.wait_ms);
        a.addEventListener('loadedmetadata', () => {
          // String(): Infinity and NaN survive JSON as text.
          r.duration = String(a.duration);
          a.play().then(
            () => { r.played = true; },
            (e) => { r.playError = String(e); finish('play-error'); },
          );
        });
        a.addEventListener('timeupdate', () => {
          r.maxTime = Math.max(r.maxTime, a.currentTime);
        });
        a.addEventListener('ended', () => {
          r.ended = true;
          r.endedAt = a.currentTime;
          finish('ended');
        });
        a.addEventListener('error', () => {
          r.errorCode = a.error ? a.error.code : -1;
          r.errorMessage = a.error ? a.error.message : '';
          finish('error');
        });
        a.src = c.src;
        document.body.appendChild(a);
      });
    return Object.fromEntries(await Promise.all(cases.map(one)));
  }, config.cases);
  await page.close();
  return { origin, results, responses };
});
