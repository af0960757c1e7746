import { Injectable, UseInterceptors } from '@nestjs/common';
import { Args, Field, Int, Mutation, ObjectType, Query, ResolveField, Resolver } from '@nestjs/graphql';
import {
  Item,
  Items,
  ItemsAccessor,
  Session,
  SessionAccessor,
  SessionStateInterceptor,
  TempData,
  TempDataAccessor,
  UserSessions,
  type RequestItems,
  type TempDataDictionary,
} from 'nest-session-state';

/** Session keys the resolvers use. */
export const COUNT = 'count';
export const NAME = 'name';
export const OTHER = 'other';

/** A service that reaches the request's state only through the accessors (AsyncLocalStorage). */
@Injectable()
export class VisitsService {
  constructor(
    private readonly sessions: SessionAccessor,
    private readonly tempData: TempDataAccessor,
    private readonly items: ItemsAccessor,
  ) {}

  async name(): Promise<string | null> {
    return (await this.sessions.load()).getString(NAME) ?? null;
  }

  async rename(name: string): Promise<string> {
    const session = await this.sessions.load();
    session.setString(NAME, name);
    (await this.tempData.load()).set('Message', `renamed to ${name}`);
    this.items.current.set('renamedBy', 'service');
    return name;
  }
}

/** The visitor's session as fields: each field resolver reads the session on its own. */
@ObjectType()
export class Visitor {
  @Field(() => Int)
  marker!: number;
}

@Resolver(() => Visitor)
export class VisitorResolver {
  @ResolveField(() => String, { nullable: true })
  name(@Session() session: Session): string | undefined {
    return session.getString(NAME);
  }

  @ResolveField(() => Int)
  count(@Session() session: Session): number {
    return session.getInt32(COUNT) ?? 0;
  }

  @ResolveField(() => [String])
  keys(@Session() session: Session): string[] {
    return [...session.keys];
  }

  @ResolveField(() => Boolean)
  available(@Session() session: Session): boolean {
    return session.isAvailable;
  }
}

@Resolver()
export class SessionResolver {
  constructor(
    private readonly visits: VisitsService,
    private readonly userSessions: UserSessions,
  ) {}

  /** A sign-in that also stores a name (a value the failing store may refuse to commit). */
  @Mutation(() => Boolean, { nullable: true })
  async signInNamed(
    @Args('user') user: string,
    @Args('name') name: string,
    @Session() session: Session,
  ): Promise<boolean> {
    session.regenerate();
    session.setString(NAME, name);
    return this.userSessions.bind(session, user);
  }

  /** A sign-in: the session moves to a new key and is bound to the user. */
  @Mutation(() => Boolean, { nullable: true })
  async signIn(@Args('user') user: string, @Session() session: Session): Promise<boolean> {
    session.regenerate();
    return this.userSessions.bind(session, user);
  }

  @Query(() => Int)
  counter(@Session() session: Session): number {
    return session.getInt32(COUNT) ?? 0;
  }

  @Mutation(() => Int)
  increment(@Session() session: Session): number {
    const count = (session.getInt32(COUNT) ?? 0) + 1;
    session.setInt32(COUNT, count);
    return count;
  }

  /** Increments after `ms` of other work (a database call, say): an operation batched beside it may be committing. */
  @Mutation(() => Int)
  async incrementLater(
    @Args('ms', { type: () => Int }) ms: number,
    @Session() session: Session,
  ): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.increment(session);
  }

  /** Signs out (abandons the session) after `ms` of other work: an operation batched beside it may be committing. */
  @Mutation(() => Boolean)
  async signOutLater(
    @Args('ms', { type: () => Int }) ms: number,
    @Session() session: Session,
  ): Promise<boolean> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    session.abandon();
    return true;
  }

  /** Committed before the response's first byte: a failed commit replaces the response (503). */
  @Mutation(() => String)
  setName(@Args('name') name: string, @Session() session: Session): string {
    session.setString(NAME, name);
    return name;
  }

  /** The same, committed from Nest's pipeline: a failed commit is this field's error. */
  @Mutation(() => String, { nullable: true })
  @UseInterceptors(SessionStateInterceptor)
  setNameInPipeline(@Args('name') name: string, @Session() session: Session): string {
    session.setString(NAME, name);
    return name;
  }

  /** Another value, committed at the end of the request (no interceptor). */
  @Mutation(() => String)
  setOther(@Args('value') value: string, @Session() session: Session): string {
    session.setString(OTHER, value);
    return value;
  }

  /** Commits now (as UserSessions.bind() does inside): resolves true once the store took the changes. */
  @Mutation(() => Boolean, { nullable: true })
  async commitNow(@Session() session: Session): Promise<boolean> {
    await session.commit();
    return true;
  }

  /** Sets the name and commits it itself, behind the interceptor: a failed commit is this field's error. */
  @Mutation(() => String, { nullable: true })
  @UseInterceptors(SessionStateInterceptor)
  async setNameAndCommit(@Args('name') name: string, @Session() session: Session): Promise<string> {
    session.setString(NAME, name);
    await session.commit();
    return name;
  }

  @Query(() => String, { nullable: true })
  other(@Session() session: Session): string | null {
    return session.getString(OTHER) ?? null;
  }

  /** The name, read by a service through SessionAccessor.load(). */
  @Query(() => String, { nullable: true })
  @UseInterceptors(SessionStateInterceptor)
  serviceName(): Promise<string | null> {
    return this.visits.name();
  }

  @Query(() => Visitor)
  visitor(): Visitor {
    return { marker: 1 };
  }

  @Mutation(() => Boolean)
  flash(@Args('message') message: string, @TempData() tempData: TempDataDictionary): boolean {
    tempData.set('Message', message);
    return true;
  }

  @Mutation(() => Boolean, { nullable: true })
  flashThenFail(@Args('message') message: string, @TempData() tempData: TempDataDictionary): boolean {
    tempData.set('Message', message);
    throw new Error('refused after setting TempData');
  }

  @Query(() => String, { nullable: true })
  message(@TempData('Message') message?: string): string | null {
    return message ?? null;
  }

  @Query(() => String, { nullable: true })
  peekMessage(@TempData() tempData: TempDataDictionary): string | null {
    return tempData.peek<string>('Message') ?? null;
  }

  /** Sets a request item: the next mutation field of the same request (run after it) reads it. */
  @Mutation(() => Boolean)
  tag(@Args('value') value: string, @Items() items: RequestItems): boolean {
    items.set('tag', value);
    return true;
  }

  @Mutation(() => String, { nullable: true })
  tagged(@Item('tag') tag?: string): string | null {
    return tag ?? null;
  }

  /** A mutation (run after the ones before it in the same operation) that reads the service's item. */
  @Mutation(() => String, { nullable: true })
  whoRenamed(@Item('renamedBy') by?: string): string | null {
    return by ?? null;
  }

  @Mutation(() => String)
  rename(@Args('name') name: string): Promise<string> {
    return this.visits.rename(name);
  }
}

/** Every provider the GraphQL test apps register. */
export const GRAPHQL_TEST_PROVIDERS = [VisitsService, VisitorResolver, SessionResolver];
