import { ConfigurableModuleBuilder, type ConfigurableModuleOptionsFactory } from '@nestjs/common';
import type { SessionModuleOptions } from './session-module.options.js';

/** The generated base of `SessionModule`: `forRoot(options)` and `forRootAsync({ useFactory | useClass | useExisting })`. */
export const {
  ConfigurableModuleClass: ConfigurableSessionModule,
  MODULE_OPTIONS_TOKEN: SESSION_MODULE_OPTIONS,
  OPTIONS_TYPE: SESSION_MODULE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: SESSION_MODULE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<SessionModuleOptions>({ moduleName: 'Session' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createSessionOptions')
  // `isGlobal: undefined` (a value read from configuration) is the default, as for every option.
  .setExtras<{ isGlobal?: boolean | undefined }>({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal ?? true,
  }))
  .build();

/**
 * A class that builds the options, for `SessionModule.forRootAsync({ useClass })`.
 * @example
 * \@Injectable()
 * class SessionConfig implements SessionModuleOptionsFactory {
 *   createSessionOptions(): SessionModuleOptions { return { redis: { url: process.env.REDIS_URL } }; }
 * }
 */
export type SessionModuleOptionsFactory = ConfigurableModuleOptionsFactory<
  SessionModuleOptions,
  'createSessionOptions'
>;

/**
 * The argument of `SessionModule.forRootAsync()`.
 *
 * @example
 * const async: SessionModuleAsyncOptions = {
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ redis: { url: config.get('REDIS_URL') } }),
 * };
 * \@Module({ imports: [SessionModule.forRootAsync(async)] })
 */
export type SessionModuleAsyncOptions = typeof SESSION_MODULE_ASYNC_OPTIONS_TYPE;
