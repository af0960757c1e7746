#!/usr/bin/env node
// `npm run screenshots`: one PNG of each sample-app page in docs/screenshots/<page>.png (1000x700).
// Starts the app through scripts/start.mjs (which builds it when needed) on a free port, drives
// Debian's Chromium with playwright-core, then stops the app.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'docs/screenshots');
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const args = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts the app on a free port (PORT=0) and resolves with its URL once it prints it. */
function startApp() {
  const env = { ...process.env, PORT: '0', NO_COLOR: '1' };
  for (const name of ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'TEMPDATA_PROVIDER', 'NODE_OPTIONS'])
    delete env[name];
  const child = spawn(process.execPath, [join(root, 'scripts/start.mjs')], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk.toString('utf8');
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.once('exit', (code) =>
      reject(new Error(`the sample app exited (${code}) before listening:\n${out}`)),
    );
  });
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const { child, url } = await startApp();
  const browser = await chromium.launch({ executablePath, args, headless: true });
  try {
    const context = await browser.newContext({ baseURL: url, viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const shot = async (name) => {
      await page.screenshot({ path: join(outDir, `${name}.png`) });
      console.log(`docs/screenshots/${name}.png  ${new URL(page.url()).pathname}`);
    };
    const submit = async (button, path) => {
      await Promise.all([
        page.waitForURL((u) => u.pathname === path),
        page.getByRole('button', { name: button, exact: true }).click(),
      ]);
    };
    const createCustomer = async (name, then, path) => {
      await page.goto('/customers/create');
      await page.fill('#name', name);
      await page.check(`#then-${then}`);
      await submit('Save', path);
    };

    await page.goto('/');
    await shot('index');
    await page.goto('/about');
    await shot('about');

    await createCustomer('Ada Lovelace', 'index', '/customers');
    await page.goto('/customers/create');
    await page.fill('#name', 'Grace Hopper');
    await shot('customers-create');
    await createCustomer('Grace Hopper', 'index', '/customers');
    await shot('customers');
    await createCustomer('Katherine Johnson', 'peek', '/customers/peek');
    await shot('customers-peek');
    await page.goto('/customers/keep');
    await shot('customers-keep');

    for (const item of ['Tea', 'Jelly babies', 'Tea']) {
      await page.goto('/cart');
      await page.fill('#item', item);
      await submit('Add', '/cart');
    }
    await shot('cart');

    await page.goto('/prefs/edit');
    await page.selectOption('#pref-theme', 'dark');
    await page.locator('form[action="/prefs/theme"] button').click();
    await page.waitForURL((u) => u.pathname === '/prefs/edit');
    await page.selectOption('#pref-language', 'cy');
    await page.locator('form[action="/prefs/language"] button').click();
    await page.waitForLoadState();
    await shot('prefs');
    await page.goto('/prefs');
    await shot('prefs-json');

    await page.goto('/account');
    await page.fill('#user-name', 'Clara');
    await submit('Sign in', '/account');
    await shot('account');

    for (let i = 0; i < 2; i++) await page.goto('/counter');
    await shot('counter');
  } finally {
    await browser.close();
    child.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
