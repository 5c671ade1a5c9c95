// Shared part of the browser scripts that tests/integration/
// auth_browser_test.cpp runs: read the JSON config named on the command
// line, serve tiny pages from loopback origins of our own, drive Debian's
// Chromium headless through puppeteer-core, write the result JSON, and
// always close the browser.
//
// Every wait is bounded: each script passes a deadline (config.timeout_ms)
// after which it writes what it has, closes the browser and exits 3.
// Chromium talks to 127.0.0.1 only: no proxy, and every host name but
// 127.0.0.1 resolves to nothing.
//
// Exit codes: 0 the result file is written (the C++ test judges it),
// 2 bad config, 3 deadline passed, 4 any other harness failure.

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import puppeteer from 'puppeteer-core';

/// Reads the config file named by argv[2] (a JSON object).
export function read_config() {
  const path = process.argv[2];
  if (!path) {
    console.error('usage: node <script> <config.json>');
    process.exit(2);
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

/// Serves `html` at every path from 127.0.0.1:`port` (0 = any free port).
/// Resolves to { server, port, origin }.
export function serve_page(html, port = 0) {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
      });
      res.end(html);
    });
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const p = server.address().port;
      resolve({ server, port: p, origin: `http://127.0.0.1:${p}` });
    });
  });
}

/// A blank page: the scripts run their checks with page.evaluate.
export const blank_page =
  '<!doctype html><html><head><meta charset="utf-8"><title>phonon test ' +
  'origin</title></head><body></body></html>';

/// Launches Chromium headless with the profile in `profile_dir` (the C++
/// side sweeps processes that name that folder after the script ends).
export async function launch(config) {
  return puppeteer.launch({
    executablePath: config.chromium || '/usr/bin/chromium',
    headless: true,
    userDataDir: config.profile,
    // puppeteer kills the browser on SIGINT, SIGTERM and SIGHUP of node
    // (the C++ side runs this script under `timeout`).
    handleSIGINT: true,
    handleSIGTERM: true,
    handleSIGHUP: true,
    protocolTimeout: config.timeout_ms || 60000,
    timeout: 30000,
    args: [
      '--no-sandbox', // the tests run as root
      '--autoplay-policy=no-user-gesture-required',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-proxy-server',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-quic',
      '--disable-features=MediaRouter,OptimizationHints,Translate',
      // A script's own flags (the console test's fake microphone).
      ...(config.extra_args || []),
    ],
  });
}

/// Runs `body(browser)` with a deadline and writes the object it returns
/// to config.result_path. The browser and every server in `servers` are
/// closed on every path out.
export async function run(config, body) {
  const servers = [];
  let browser = null;
  let timer = null;
  const deadline_ms = config.timeout_ms || 60000;
  const cleanup = async () => {
    if (browser) {
      const b = browser;
      browser = null;
      // close() asks politely; the process is killed when that hangs.
      await Promise.race([
        b.close().catch(() => {}),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
      try {
        b.process()?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const s of servers) {
      s.closeAllConnections?.();
      s.close();
    }
  };
  const expired = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`deadline of ${deadline_ms} ms passed`)),
      deadline_ms,
    );
  });
  let code = 0;
  try {
    browser = await Promise.race([launch(config), expired]);
    const version = await browser.version();
    const result = await Promise.race([
      body(browser, (s) => servers.push(s)),
      expired,
    ]);
    result.browser = version;
    writeFileSync(config.result_path, JSON.stringify(result, null, 1));
  } catch (e) {
    console.error(`harness: ${e && e.stack ? e.stack : e}`);
    code = /deadline/.test(String(e)) ? 3 : 4;
  } finally {
    clearTimeout(timer);
    await cleanup();
  }
  process.exit(code);
}

/// Opens a new tab on `url` and waits for its load (bounded).
export async function open_page(browser, url) {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`page ${url}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page ${url} error: ${e}`));
  await page.goto(url, { waitUntil: 'load', timeout: 15000 });
  return page;
}
