// The web console driven as a person would: headless Chromium with a fake
// microphone (a WAV file the C++ test generated) opens Phonon's `/`, types
// the user id (and a bearer token when auth is on), records, uploads, waits
// for `ready`, sees the waveform, plays formats to their end, takes a
// screenshot, checks a phone-width layout, and deletes the recording.
// Every request the page makes and every console message is recorded for
// the C++ side (tests/integration/console_test.cpp) to judge.
//
// Config: origin (Phonon's http://127.0.0.1:port), user, phrase, token
// (empty: auth off), record_ms, play (format names), screenshot (path).

import { read_config, run } from './harness.mjs';

const config = read_config();

/// Waits until `fn` (run in the page) returns a truthy value, polling every
/// 100 ms for at most `ms`; returns that value or throws naming `what`.
async function until(page, what, ms, fn, ...args) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await page.evaluate(fn, ...args);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const status_text = (page) => page.$eval('#status', (e) => e.textContent);

run(config, async (browser) => {
  const result = {
    requests: [],
    console: [],
    page_errors: [],
    failed: [],
    steps: [],
  };
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 900 });
  page.on('request', (r) => result.requests.push(r.url()));
  page.on('requestfailed', (r) =>
    result.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('console', (m) => result.console.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => result.page_errors.push(String(e)));
  const step = (name) => result.steps.push(name);

  const res = await page.goto(config.origin + '/', { waitUntil: 'load', timeout: 15000 });
  result.page_status = res.status();
  result.csp = res.headers()['content-security-policy'] || '';
  step('loaded');

  // Every form control has a name a screen reader can read out.
  result.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, button, meter, progress')]
      .filter((e) => !e.closest('template'))
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !(e.textContent || '').trim())
      .map((e) => e.id || e.outerHTML.slice(0, 60)));

  // -- who -----------------------------------------------------------------
  await page.$eval('#user', (e) => { e.value = ''; });
  await page.type('#user', String(config.user));
  if (config.token) await page.type('#token', config.token);
  // Enter submits the form: the keyboard path.
  await page.focus('#user');
  await page.keyboard.press('Enter');
  await until(page, 'the list to load', 10000,
              () => document.getElementById('list-user').textContent !== '');
  step('listed');

  // -- record about 2 s ----------------------------------------------------
  await page.$eval('#phrase', (e) => { e.value = ''; });
  await page.type('#phrase', String(config.phrase));
  await page.click('#record');
  await until(page, 'recording to start', 10000,
              () => !document.getElementById('stop').disabled);
  // The level meter moves while the fake microphone plays its tone.
  let peak = 0;
  const started = Date.now();
  while (Date.now() - started < (config.record_ms || 2000)) {
    peak = Math.max(peak, await page.$eval('#level', (e) => e.value));
    await new Promise((r) => setTimeout(r, 100));
  }
  result.level_peak = peak;
  await page.click('#stop');
  await until(page, 'the recording to be ready to upload', 10000,
              () => !document.getElementById('upload').disabled);
  result.recorded_status = await status_text(page);
  step('recorded');

  // -- upload with progress --------------------------------------------------
  // Every progress value the bar shows is collected in the page.
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('progress');
    new MutationObserver(() => window.__progress.push(bar.value))
      .observe(bar, { childList: true, characterData: true, subtree: true });
  });
  await page.click('#upload');
  const item = `#recordings li[data-phrase="${config.phrase}"]`;
  await until(page, 'the uploaded recording in the list', 15000,
              (sel) => !!document.querySelector(sel), item);
  result.upload_status = await status_text(page);
  result.progress_final = await page.$eval('#progress', (e) => e.value);
  result.progress_seen = await page.evaluate(() => window.__progress);
  result.first_badge = await page.$eval(`${item} .badge`, (e) => e.textContent);
  step('uploaded');

  await until(page, 'status ready', 30000,
              (sel) => document.querySelector(sel + ' .badge').textContent === 'ready', item);
  step('ready');

  // -- the waveform ------------------------------------------------------------
  await until(page, 'the waveform to be drawn', 15000,
              (sel) => Number(document.querySelector(sel + ' canvas').dataset.drawn || 0) > 0, item);
  result.waveform = await page.$eval(`${item} canvas`, (c) => {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
    return { points: Number(c.dataset.drawn), width: c.width, height: c.height, painted };
  });
  step('waveform');

  // -- play each format to its end --------------------------------------------
  result.formats = await page.$eval(`${item} select`, (s) => [...s.options].map((o) => o.value));
  result.played = {};
  for (const fmt of config.play || []) {
    await page.select(`${item} select`, fmt);
    result.played[fmt] = await page.$eval(`${item} audio`, (a) => new Promise((resolve) => {
      const out = { src: a.getAttribute('src') };
      const timer = setTimeout(() => { out.timeout = true; resolve(out); }, 20000);
      a.addEventListener('ended', () => {
        clearTimeout(timer);
        out.ended = true;
        out.duration = a.duration;
        out.currentTime = a.currentTime;
        resolve(out);
      }, { once: true });
      a.addEventListener('error', () => {
        clearTimeout(timer);
        out.error = a.error ? a.error.code + ' ' + a.error.message : 'error';
        resolve(out);
      }, { once: true });
      a.currentTime = 0;
      a.play().catch((e) => { out.play_error = String(e); });
    }));
  }
  step('played');

  // -- an expired signed link is renewed (auth on, a short auth.link_ttl) --
  // The links the page holds are older than the TTL by now: playing one
  // fails (401), the console reads the list again for fresh links and says
  // so, and the next play works.
  if (config.relink_wait_ms) {
    await new Promise((r) => setTimeout(r, config.relink_wait_ms));
    result.console_before_relink = result.console.length;
    await page.select(`${item} select`, 'm4a');
    result.relink = await page.$eval(`${item} audio`, (a) => new Promise((resolve) => {
      const out = { first_src: a.getAttribute('src') };
      const timer = setTimeout(() => { out.timeout = true; resolve(out); }, 20000);
      const status = document.getElementById('status');
      const watch = new MutationObserver(() => {
        if (!/renewed/.test(status.textContent)) return;
        watch.disconnect();
        out.status = status.textContent;
        out.src = a.getAttribute('src');
        a.addEventListener('ended', () => {
          clearTimeout(timer);
          out.ended = true;
          resolve(out);
        }, { once: true });
        a.play().catch((e) => { out.play_error = String(e); });
      });
      watch.observe(status, { childList: true, characterData: true, subtree: true });
      a.play().catch((e) => { out.first_play_error = String(e); });
    }));
    step('relinked');
  }

  if (config.screenshot) {
    await page.screenshot({ path: config.screenshot, fullPage: true });
    step('screenshot');
  }

  // -- phone width: nothing wider than the screen -------------------------------
  await page.setViewport({ width: 360, height: 740 });
  result.phone_overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewport({ width: 900, height: 900 });

  // -- delete (two presses: the first arms the button) ---------------------------
  await page.click(`${item} button.delete`);
  await page.click(`${item} button.delete`);
  await until(page, 'the recording to leave the list', 10000,
              (sel) => !document.querySelector(sel), item);
  result.delete_status = await status_text(page);
  step('deleted');
  return result;
});
