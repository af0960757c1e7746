import type { DynamicModule, INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Footer } from './footer.js';

/**
 * The sample app on `@nestjs/platform-express`: views rendered by hbs (which picks `layout.hbs` itself),
 * the footer as an app-wide view local. Express parses form bodies through Nest's default body parser.
 */
export async function createExpressApp(
  module: DynamicModule,
  options: NestApplicationOptions,
  viewsDir: string,
  footer: Footer,
): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(module, options);
  app.disable('x-powered-by');
  app.setBaseViewsDir(viewsDir);
  app.setViewEngine('hbs');
  app.setLocal('footer', footer);
  return app;
}
