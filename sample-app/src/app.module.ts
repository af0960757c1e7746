import {
  Module,
  RequestMethod,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { SessionModule } from 'nest-session-state';
import { AccountController } from './account/account.controller.js';
import { AccountSessionsController } from './account/account-sessions.controller.js';
import { CartController } from './cart/cart.controller.js';
import type { SampleAppConfig } from './config/sample-app.config.js';
import { CounterController } from './counter/counter.controller.js';
import { CustomersController } from './customers/customers.controller.js';
import { CustomersService } from './customers/customers.service.js';
import { sampleGraphQLModule } from './graphql/sample-graphql.module.js';
import { HomeController } from './home/home.controller.js';
import { PrefsController } from './prefs/prefs.controller.js';
import { CrossSitePostMiddleware } from './security/cross-site-post.middleware.js';
import { VerificationMiddleware } from './verification/verification.middleware.js';
import { WhoAmIGateway } from './ws/whoami.gateway.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { sampleMetrics } from './metrics/sample-metrics.js';

/** The sample app: `AppModule.forRoot(loadSampleConfig())`. */
@Module({
  controllers: [
    HomeController,
    CounterController,
    CustomersController,
    CartController,
    PrefsController,
    AccountController,
    AccountSessionsController,
  ],
  providers: [CustomersService, WhoAmIGateway],
})
export class AppModule implements NestModule {
  static forRoot(config: SampleAppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        SessionModule.forRoot({ ...config.session, metrics: sampleMetrics.sessionOption }),
        sampleGraphQLModule(config.platform),
        HealthModule,
        MetricsModule,
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(CrossSitePostMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
    // Runs after the SessionModule's own middleware (imported modules' middleware comes first), so the
    // request's items bag already exists.
    consumer.apply(VerificationMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
