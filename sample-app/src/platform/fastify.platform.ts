import type { DynamicModule, INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import handlebars from 'handlebars';
import type { Footer } from './footer.js';

/**
 * The sample app on `@nestjs/platform-fastify`: the same handlebars views and layout through
 * `@fastify/view` (`layout.hbs` wraps each page as `{{{body}}}`, as hbs does on Express), the footer as
 * the view engine's default context. The adapter parses form bodies (urlencoded) by default.
 */
export async function createFastifyApp(
  module: DynamicModule,
  options: NestApplicationOptions,
  viewsDir: string,
  footer: Footer,
): Promise<INestApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(module, new FastifyAdapter(), options);
  app.setViewEngine({
    engine: { handlebars },
    templates: viewsDir,
    layout: 'layout.hbs',
    viewExt: 'hbs',
    // Templates compiled once, as hbs caches them on Express in production.
    production: true,
    defaultContext: { footer },
  });
  return app;
}
