import { Int, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Session } from 'nest-session-state';
import { incrementCounter, readCounter } from '../counter/counter.js';

/** The per-session counter of `GET /counter` over GraphQL: `{ counter }` reads it, `mutation { increment }` adds one. */
@Resolver()
export class CounterResolver {
  @Query(() => Int, { description: 'The per-session counter that GET /counter increments, unchanged.' })
  counter(@Session() session: Session): number {
    return readCounter(session);
  }

  @Mutation(() => Int, { description: 'Adds one to the per-session counter and returns the new value.' })
  increment(@Session() session: Session): number {
    return incrementCounter(session);
  }
}
