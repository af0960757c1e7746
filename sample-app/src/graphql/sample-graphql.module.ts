import { Module, type DynamicModule } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import type { SamplePlatform } from '../config/sample-app.config.js';
import { CounterResolver } from './counter.resolver.js';

/**
 * `POST /graphql`, code first with the schema kept in memory: Apollo (its Express 5 integration) on
 * Express, Mercurius on Fastify, each with its driver's default context, which is all `@Session()` needs.
 * The driver of the other platform is never loaded.
 */
export async function sampleGraphQLModule(platform: SamplePlatform): Promise<DynamicModule> {
  const driver =
    platform === 'fastify'
      ? (await import('@nestjs/mercurius')).MercuriusDriver
      : (await import('@nestjs/apollo')).ApolloDriver;
  // No stack traces in error replies: Apollo adds them outside NODE_ENV=production (Mercurius never does).
  const graphql = GraphQLModule.forRoot({
    driver,
    autoSchemaFile: true,
    graphiql: false,
    includeStacktraceInErrorResponses: false,
  });
  return { module: SampleGraphQLModule, imports: [graphql], providers: [CounterResolver] };
}

/** The sample app's GraphQL endpoint (see {@link sampleGraphQLModule}). */
@Module({})
export class SampleGraphQLModule {}
