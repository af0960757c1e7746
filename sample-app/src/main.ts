import 'reflect-metadata';
import { hostname } from 'node:os';
import type { AddressInfo, Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import { AppModule } from './app.module.js';
import { explainStartupError, loadSampleConfig } from './config/sample-app.config.js';
import type { Footer } from './platform/footer.js';
import { createSampleApp } from './platform/sample-app.platform.js';

/** `sample-app/views`, found from this file whether it runs as `src/main.ts` or `dist/main.js`. */
export const VIEWS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'views');

async function bootstrap(): Promise<void> {
  const config = loadSampleConfig();
  const logger = new Logger('SampleApp');
  for (const warning of config.warnings) logger.warn(warning);

  const footer: Footer = {
    platform: config.platform,
    store: config.summary.store,
    tempDataProvider: config.summary.tempDataProvider,
    idleTimeoutMinutes: Math.round((config.summary.idleTimeoutSeconds / 60) * 10) / 10,
    instance: `${hostname()}, pid ${process.pid}`,
  };
  // abortOnError: false, so a startup failure reaches the catch below (and names the variable to fix)
  // instead of aborting the process. No debug logs: the library logs every new session at debug level.
  const app = await createSampleApp(
    config.platform,
    AppModule.forRoot(config),
    { abortOnError: false, logger: ['fatal', 'error', 'warn', 'log'] },
    VIEWS_DIR,
    footer,
  );
  // What the adapter says it is (not what HTTP_ADAPTER asked for), so the footer shows the real platform.
  footer.platform = app.getHttpAdapter().getType();
  app.enableShutdownHooks();
  // The /ws gateway (ws/whoami.gateway.ts): plain WebSocket on the HTTP server's port, on either platform.
  app.useWebSocketAdapter(new WsAdapter(app));

  await app.listen(config.port);
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  footer.instance = `${hostname()}:${port}, pid ${process.pid}`;
  const { store, tempDataProvider } = config.summary;
  logger.log(
    `On ${config.platform}; sessions in ${store}, TempData in ${tempDataProvider === 'cookie' ? 'a cookie' : 'the session'}`,
  );
  console.log(`Sample app listening on http://localhost:${port}`);
}

bootstrap().catch((error: unknown) => {
  const explained = explainStartupError(error);
  console.error(`Sample app failed to start: ${explained.message}`);
  process.exit(1);
});
