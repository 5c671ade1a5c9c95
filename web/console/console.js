// Phonon console: a person records or picks a phrase, uploads it, sees the
// user's recordings turn from processing to ready, plays every format and
// sees the waveform, replaces and deletes. Only the public HTTP API of the
// server that served this page (README.md, docs/openapi.yaml); no
// third-party code or host. Plain ES2017, no build step.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  // The formats an <audio> element may be asked to play, in menu order.
  const AUDIO_FORMATS = ['mp3', 'm4a', 'webm', 'opus', 'ogg', 'flac', 'wav'];
  // Longest recording the console makes (the server's own limit is
  // server.max_duration); a forgotten Stop does not record for ever.
  const MAX_RECORD_MS = 5 * 60 * 1000;
  // Status polling while something is processing: every second, and not
  // for longer than this after the last change.
  const POLL_MS = 1000;
  const POLL_GIVE_UP_MS = 3 * 60 * 1000;
  const ID = /^[1-9][0-9]{0,18}$/;
  // The list shows at most this many pages of 1000 recordings.
  const MAX_PAGES = 10;
  // A waveform that is not ready yet (409) or a busy server (503) is asked
  // again after Retry-After, this many times at most.
  const WAVEFORM_TRIES = 6;

  const state = {
    user: '',
    token: '',
    // What Upload / Replace send: {blob, name}.
    pending: null,
    previewUrl: null,
    recorder: null,
    // phrase_id_str -> {li, rec}
    items: new Map(),
    pollTimer: null,
    lastChange: 0,
    phraseEdited: false,
  };

  // -- HTTP -----------------------------------------------------------------

  /// One request to this server. XHR rather than fetch: upload progress.
  /// Resolves to {status, json, text}; rejects only when no answer came.
  function api(method, path, opts) {
    opts = opts || {};
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, path);
      if (state.token) xhr.setRequestHeader('Authorization', 'Bearer ' + state.token);
      if (opts.onProgress && xhr.upload) {
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) opts.onProgress(e.loaded / e.total);
        };
      }
      xhr.onload = () => {
        let json = null;
        try { json = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch (e) { json = null; }
        resolve({ status: xhr.status, json: json, text: xhr.responseText,
                  retryAfter: xhr.getResponseHeader('Retry-After') });
      };
      xhr.onerror = () => reject(new Error('the server could not be reached'));
      xhr.ontimeout = () => reject(new Error('the server did not answer in time'));
      xhr.timeout = opts.timeout || 120000;
      xhr.send(opts.body === undefined ? null : opts.body);
    });
  }

  /// The human message of an error answer.
  function problem(res) {
    const msg = res.json && typeof res.json.message === 'string' ? res.json.message : 'HTTP ' + res.status;
    if (res.status === 401) return msg + ' — paste a valid bearer token (auth is on).';
    if (res.status === 403) return msg + ' — the token is for another user or lacks a scope.';
    if (res.retryAfter) return msg + ' (try again in ' + res.retryAfter + ' s)';
    return msg;
  }

  function recordingPath(phrase) {
    return '/audio/user/' + state.user + '/phrase/' + phrase;
  }

  // -- status line ------------------------------------------------------------

  function say(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  // -- who ----------------------------------------------------------------------

  function onShow(event) {
    event.preventDefault();
    const user = $('user').value.trim();
    if (!ID.test(user)) {
      say('The user id is a positive whole number, like 42.', true);
      $('user').focus();
      return;
    }
    state.user = user;
    state.token = $('token').value.trim();
    try { localStorage.setItem('phonon.user', user); } catch (e) { /* private mode */ }
    clearList();
    $('list-user').textContent = 'of user ' + user;
    refresh().then(updateButtons);
  }

  // -- the list -------------------------------------------------------------

  function clearList() {
    for (const { li } of state.items.values()) {
      const player = li.querySelector('audio');
      player.pause();
      player.removeAttribute('src');
    }
    state.items.clear();
    $('recordings').textContent = '';
    $('empty').hidden = true;
  }

  /// Reads the user's recordings and brings the list up to date. Resolves
  /// to true while something is still processing.
  async function refresh() {
    if (!state.user) return false;
    // Every page of the list (the API answers at most 1000 a page).
    const items = [];
    let after = '';
    for (let page = 0; page < MAX_PAGES; page++) {
      let res;
      try {
        res = await api('GET', '/audio/user/' + state.user + '?limit=1000' + (after ? '&after=' + after : ''));
      } catch (e) {
        say(e.message, true);
        return false;
      }
      if (res.status !== 200 || !res.json || !Array.isArray(res.json.items)) {
        say(problem(res), true);
        if (res.status === 401) $('token').focus();
        return false;
      }
      items.push(...res.json.items);
      after = res.json.next;
      if (!after) break;
    }
    $('more').hidden = !after;
    const seen = new Set();
    let busy = false;
    let highest = 0n;
    for (const rec of items) {
      const key = rec.phrase_id_str;
      seen.add(key);
      upsert(rec);
      if (rec.status === 'processing') busy = true;
      const n = BigInt(key);
      if (n > highest) highest = n;
    }
    for (const [key, item] of state.items) {
      if (!seen.has(key)) {
        item.li.remove();
        state.items.delete(key);
      }
    }
    $('empty').hidden = state.items.size !== 0;
    if (!state.phraseEdited) $('phrase').value = String(highest + 1n);
    return busy;
  }

  function upsert(rec) {
    const key = rec.phrase_id_str;
    let item = state.items.get(key);
    if (!item) {
      const li = $('item').content.firstElementChild.cloneNode(true);
      li.dataset.phrase = key;
      li.querySelector('.name').textContent = 'Phrase ' + key;
      li.querySelector('.format').addEventListener('change', () => choose(item));
      li.querySelector('.replace').addEventListener('click', () => send('PUT', key));
      li.querySelector('.delete').addEventListener('click', (e) => remove(item, e.currentTarget));
      li.querySelector('audio').addEventListener('error', () => relink(item));
      item = { li: li, rec: null, drawn: '' };
      state.items.set(key, item);
      insertSorted(li, BigInt(key));
    }
    const before = item.rec;
    item.rec = rec;
    const badge = item.li.querySelector('.badge');
    badge.textContent = rec.status;
    badge.className = 'badge ' + rec.status;
    const facts = [];
    if (rec.duration_ms) facts.push((rec.duration_ms / 1000).toFixed(1) + ' s');
    if (rec.original_format) facts.push(rec.original_format);
    if (rec.sample_rate) facts.push(rec.sample_rate + ' Hz');
    if (rec.channels) facts.push(rec.channels === 1 ? 'mono' : rec.channels + ' ch');
    if (rec.error) facts.push('error: ' + rec.error);
    item.li.querySelector('.facts').textContent = facts.join(' · ');
    item.li.classList.toggle('is-ready', rec.status === 'ready');
    const changed = !before || before.status !== rec.status || before.updated_at !== rec.updated_at;
    if (changed) {
      state.lastChange = Date.now();
      fillFormats(item);
      if (rec.status === 'ready') drawWaveform(item);
    }
    updateItemButtons(item);
  }

  function insertSorted(li, phrase) {
    const list = $('recordings');
    for (const other of list.children) {
      if (BigInt(other.dataset.phrase) > phrase) {
        list.insertBefore(li, other);
        return;
      }
    }
    list.appendChild(li);
  }

  // -- playing ----------------------------------------------------------------

  function fillFormats(item) {
    const select = item.li.querySelector('.format');
    const keep = select.value;
    select.textContent = '';
    const formats = item.rec.formats || {};
    const ready = item.rec.status === 'ready';
    for (const name of AUDIO_FORMATS) {
      if (!formats[name]) continue;
      // Before the master exists only the original's own format plays.
      if (!ready && name !== item.rec.original_format) continue;
      const opt = document.createElement('option');
      opt.value = name;
      opt.textContent = name;
      select.appendChild(opt);
    }
    if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
    select.disabled = select.options.length === 0;
    choose(item);
  }

  /// Points the item's player at the chosen format (a signed link when
  /// auth is on: the metadata's `formats` map holds them).
  function choose(item) {
    const select = item.li.querySelector('.format');
    const player = item.li.querySelector('audio');
    const url = select.value ? item.rec.formats[select.value] : '';
    player.setAttribute('aria-label', 'Play phrase ' + item.rec.phrase_id_str + (select.value ? ' as ' + select.value : ''));
    if (!url) {
      player.removeAttribute('src');
      return;
    }
    if (player.getAttribute('src') !== url) {
      player.pause();
      player.src = url;
    }
  }

  /// A player failed: with auth on its signed link may have expired
  /// (auth.link_ttl), so the list is read again for fresh links, once in
  /// a while at most; otherwise the failure is shown.
  async function relink(item) {
    const player = item.li.querySelector('audio');
    if (!player.getAttribute('src')) return;
    const fmt = item.li.querySelector('.format').value;
    if (state.token && Date.now() - (item.relinked || 0) > 10000) {
      item.relinked = Date.now();
      await refresh();
      choose(item);
      say('The link to phrase ' + item.rec.phrase_id_str + ' was renewed; press play again.');
      return;
    }
    say('Phrase ' + item.rec.phrase_id_str + ' could not be played as ' + fmt + '.', true);
  }

  // -- the waveform -------------------------------------------------------------

  /// Fetches waveform.json (one merged channel, about one pixel per data
  /// point) and draws min/max bars on the item's canvas.
  async function drawWaveform(item) {
    const rec = item.rec;
    const canvas = item.li.querySelector('canvas');
    const width = Math.max(100, Math.round((canvas.clientWidth || 600) * (window.devicePixelRatio || 1)));
    const samples = (rec.duration_ms / 1000) * (rec.sample_rate || 48000);
    // A power of two at least as coarse as one point per pixel: every
    // screen width asks for one of a few zoom levels, which the server
    // keeps cached, and paint() merges points into pixels.
    let spp = 32;
    while (spp * width < samples) spp *= 2;
    const stamp = rec.updated_at + '/' + spp;
    if (item.drawn === stamp || item.drawing === stamp) return;
    item.drawing = stamp;
    try {
      for (let attempt = 1; attempt <= WAVEFORM_TRIES; attempt++) {
        let res;
        try {
          res = await api('GET', recordingPath(rec.phrase_id_str) + '/waveform.json?channels=mono&samples_per_pixel=' + spp);
        } catch (e) {
          return;
        }
        if (item.rec !== rec && item.rec.updated_at !== rec.updated_at) return; // replaced meanwhile
        if (res.status === 200 && res.json && Array.isArray(res.json.data)) {
          item.drawn = stamp;
          paint(canvas, res.json, width);
          return;
        }
        if (res.status !== 409 && res.status !== 503) return;
        const wait = Math.min(10, Math.max(1, Number(res.retryAfter) || attempt));
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    } finally {
      if (item.drawing === stamp) item.drawing = '';
    }
  }

  function paint(canvas, wf, width) {
    const height = Math.round((canvas.clientHeight || 64) * (window.devicePixelRatio || 1));
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    const channels = wf.channels || 1;
    const points = Math.floor(wf.data.length / (2 * channels));
    if (points === 0) return;
    // Drawn relative to the loudest peak (a quiet phrase still shows its
    // shape); near-silence stays a flat line.
    let loudest = 0;
    for (const v of wf.data) loudest = Math.max(loudest, Math.abs(v));
    const full = wf.bits === 16 ? 32768 : 128;
    const scale = Math.max(loudest, full / 32) / 0.9;
    const mid = height / 2;
    ctx.fillStyle = getComputedStyle(document.documentElement).getPropertyValue('--wave').trim() || '#2f5fd0';
    for (let x = 0; x < width; x++) {
      const from = Math.floor((x * points) / width);
      const to = Math.max(from + 1, Math.floor(((x + 1) * points) / width));
      let lo = 0;
      let hi = 0;
      for (let i = from; i < to && i < points; i++) {
        // Channel 0 (the request asks for one merged channel).
        lo = Math.min(lo, wf.data[2 * channels * i]);
        hi = Math.max(hi, wf.data[2 * channels * i + 1]);
      }
      const top = mid - (hi / scale) * mid;
      const bottom = mid - (lo / scale) * mid;
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
    canvas.dataset.drawn = String(points);
  }

  // -- deleting -------------------------------------------------------------

  /// Two steps instead of confirm(): the first press arms the button for a
  /// few seconds, the second deletes (keyboard and screen reader friendly).
  async function remove(item, button) {
    if (!button.dataset.armed) {
      button.dataset.armed = '1';
      button.textContent = 'Press again to delete';
      setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = 'Delete';
      }, 4000);
      return;
    }
    button.disabled = true;
    const key = item.rec.phrase_id_str;
    let res;
    try {
      res = await api('DELETE', recordingPath(key));
    } catch (e) {
      say(e.message, true);
      button.disabled = false;
      return;
    }
    if (res.status === 204 || res.status === 404) {
      say('Deleted phrase ' + key + '.');
      const player = item.li.querySelector('audio');
      player.pause();
      player.removeAttribute('src');
      // Focus moves to the next recording's Delete (or the list heading)
      // instead of falling to the top of the page.
      const next = item.li.nextElementSibling || item.li.previousElementSibling;
      item.li.remove();
      state.items.delete(key);
      $('empty').hidden = state.items.size !== 0;
      if (next) next.querySelector('button.delete').focus();
      else $('list-title').focus();
    } else {
      say(problem(res), true);
      button.disabled = false;
    }
  }

  // -- recording from the microphone ------------------------------------------

  function pickMime() {
    const wanted = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'];
    for (const m of wanted) if (MediaRecorder.isTypeSupported(m)) return m;
    return '';
  }

  function extensionOf(mime) {
    if (mime.startsWith('audio/webm')) return 'webm';
    if (mime.startsWith('audio/ogg')) return 'ogg';
    if (mime.startsWith('audio/mp4')) return 'm4a';
    return 'bin';
  }

  async function startRecording() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      say('This page cannot use the microphone here (browsers allow it only over HTTPS or on localhost). Choose a file instead.', true);
      return;
    }
    let stream;
    try {
      // The raw microphone: echo cancellation, noise suppression and
      // automatic gain are for calls; they colour a stored recording (and
      // noise suppression eats steady tones).
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (e) {
      say('No microphone: ' + (e && e.message ? e.message : e) + '. Choose a file instead.', true);
      return;
    }
    const mime = pickMime();
    const recorder = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
    const chunks = [];
    const started = Date.now();
    const audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    const ticker = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let peak = 0;
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
      $('level').value = Math.min(1, peak);
      $('elapsed').textContent = ((Date.now() - started) / 1000).toFixed(1) + ' s';
      if (Date.now() - started > MAX_RECORD_MS) stopRecording();
    }, 50);
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      clearInterval(ticker);
      stream.getTracks().forEach((t) => t.stop());
      audio.close();
      $('level').value = 0;
      const type = recorder.mimeType || mime || 'audio/webm';
      const blob = new Blob(chunks, { type: type });
      setPending(blob, 'recording.' + extensionOf(type));
      say('Recorded ' + ((Date.now() - started) / 1000).toFixed(1) + ' s. Upload it, or replace a recording with it.');
    };
    state.recorder = recorder;
    recorder.start(250);
    $('record').disabled = true;
    $('stop').disabled = false;
    $('stop').focus();
    say('Recording… press Stop when done.');
  }

  function stopRecording() {
    const recorder = state.recorder;
    if (!recorder) return;
    state.recorder = null;
    if (recorder.state !== 'inactive') recorder.stop();
    $('record').disabled = false;
    $('stop').disabled = true;
  }

  function setPending(blob, name) {
    state.pending = { blob: blob, name: name };
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(blob);
    const preview = $('preview');
    preview.src = state.previewUrl;
    preview.hidden = false;
    updateButtons();
  }

  function onFile() {
    const file = $('file').files[0];
    if (file) {
      setPending(file, file.name);
      say('Chosen: ' + file.name + ' (' + Math.round(file.size / 1024) + ' KiB).');
    }
  }

  // -- uploading ------------------------------------------------------------

  /// POST (new phrase) or PUT (replace `phrase`) of the pending audio, as
  /// multipart/form-data with the part `audio_file`.
  async function send(method, phrase) {
    if (!state.user) {
      say('Choose a user first.', true);
      $('user').focus();
      return;
    }
    if (!state.pending) {
      say('Record something or choose a file first.', true);
      return;
    }
    if (!phrase) phrase = $('phrase').value.trim();
    if (!ID.test(phrase)) {
      say('The phrase id is a positive whole number, like 1.', true);
      $('phrase').focus();
      return;
    }
    const form = new FormData();
    form.append('audio_file', state.pending.blob, state.pending.name);
    const progress = $('progress');
    progress.value = 0;
    setBusy(true);
    say((method === 'PUT' ? 'Replacing phrase ' : 'Uploading phrase ') + phrase + '…');
    let res;
    try {
      res = await api(method, recordingPath(phrase), {
        body: form,
        onProgress: (f) => { progress.value = Math.round(f * 100); progress.textContent = progress.value + '%'; },
      });
    } catch (e) {
      say(e.message, true);
      setBusy(false);
      return;
    }
    setBusy(false);
    // The pressed button was disabled meanwhile: keyboard focus goes back
    // to it rather than to the top of the page.
    if (document.activeElement === document.body) {
      if (method === 'POST') $('upload').focus();
      else { const li = state.items.get(phrase); if (li) li.li.querySelector('.replace').focus(); }
    }
    if (res.status === 200 || res.status === 201) {
      progress.value = 100;
      say((res.status === 201 ? 'Uploaded' : 'Replaced') + ' phrase ' + phrase + '; it is processing.');
      state.phraseEdited = false;
      pollSoon();
    } else if (res.status === 409 && method === 'POST') {
      say('Phrase ' + phrase + ' already exists: use "Replace with new recording" on it, or pick another phrase id.', true);
    } else {
      say(problem(res), true);
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    updateButtons();
  }

  // -- polling ----------------------------------------------------------------

  function pollSoon() {
    state.lastChange = Date.now();
    if (state.pollTimer) return;
    const tick = async () => {
      state.pollTimer = null;
      const busy = await refresh();
      if (busy && Date.now() - state.lastChange < POLL_GIVE_UP_MS)
        state.pollTimer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  // -- buttons ----------------------------------------------------------------

  function updateButtons() {
    $('upload').disabled = !state.pending || !state.user || !!state.busy;
    for (const item of state.items.values()) updateItemButtons(item);
  }

  function updateItemButtons(item) {
    const replace = item.li.querySelector('.replace');
    replace.disabled = !state.pending || !!state.busy;
    replace.title = state.pending ? '' : 'Record or choose a file first';
  }

  // -- start --------------------------------------------------------------------

  function init() {
    $('who').addEventListener('submit', onShow);
    $('record').addEventListener('click', startRecording);
    $('stop').addEventListener('click', stopRecording);
    $('file').addEventListener('change', onFile);
    $('upload').addEventListener('click', () => send('POST'));
    $('phrase').addEventListener('input', () => { state.phraseEdited = true; });
    let saved = '';
    try { saved = localStorage.getItem('phonon.user') || ''; } catch (e) { saved = ''; }
    if (ID.test(saved)) $('user').value = saved;
    if (!$('phrase').value) $('phrase').value = '1';
    updateButtons();
  }

  init();
}());
