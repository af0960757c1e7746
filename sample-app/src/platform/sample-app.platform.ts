import type { DynamicModule, INestApplication, NestApplicationOptions } from '@nestjs/common';
import type { SamplePlatform } from '../config/sample-app.config.js';
import type { Footer } from './footer.js';

/**
 * Creates the sample app on the platform `HTTP_ADAPTER` names. Each platform's module is imported only
 * when chosen, so an app on Express never loads Fastify (and the reverse).
 */
export async function createSampleApp(
  platform: SamplePlatform,
  module: DynamicModule,
  options: NestApplicationOptions,
  viewsDir: string,
  footer: Footer,
): Promise<INestApplication> {
  if (platform === 'fastify') {
    const { createFastifyApp } = await import('./fastify.platform.js');
    return createFastifyApp(module, options, viewsDir, footer);
  }
  const { createExpressApp } = await import('./express.platform.js');
  return createExpressApp(module, options, viewsDir, footer);
}
