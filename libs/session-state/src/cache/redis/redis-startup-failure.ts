import type { ResolvedRedisCacheOptions } from './redis-cache.options.js';
import { RedisConfigurationError } from './redis-cache.errors.js';
import { withoutCommand } from './without-command.js';
import { tlsFailureAdvice, tlsFailureOf } from '../tls-failure.js';

interface ErrorLike {
  code?: string;
  message?: string;
  /** ioredis's Cluster: the last reply of a node while it refreshed the slots ("Failed to refresh slots cache."). */
  lastNodeError?: { message?: string };
}

/** Turns what ioredis reported while connecting into an error that names the option to fix. */
export function describeStartupFailure(
  failure: unknown,
  events: readonly unknown[],
  options: ResolvedRedisCacheOptions,
  timedOut: boolean,
): RedisConfigurationError {
  const where =
    options.mode === 'cluster'
      ? `the cluster nodes ${options.clusterNodes.map((n) => `${n.host}:${n.port}`).join(', ')}`
      : options.mode === 'client'
        ? describeClientAddress(options.client as ClientWithOptions)
        : `${options.host}:${options.port}`;
  const all = [...events, failure] as ErrorLike[];
  const text = all.map((e) => `${e?.code ?? ''} ${e?.message ?? JSON.stringify(e)}`).join(' | ');
  // What a cluster's nodes answered while it read the slots (a standalone server refuses CLUSTER SLOTS).
  const nodeReplies = all.map((e) => e?.lastNodeError?.message ?? '').join(' | ');
  const has = (pattern: RegExp) => pattern.test(text);
  const picked = (all.find((e) => e && (e.code || e.message)) ?? failure) as ErrorLike | undefined;
  // What ioredis reported, without what it sent (for AUTH, the password).
  const cause =
    picked instanceof Error
      ? withoutCommand(picked)
      : Object.assign(
          new Error(picked?.message ?? JSON.stringify(picked)),
          picked?.code ? { code: picked.code } : {},
        );
  const make = (message: string) => new RedisConfigurationError(`${message} [${text.trim()}]`, { cause });
  // A client passed in was configured by the app: the options to check are that client's, not the module's.
  const passedIn = options.mode === 'client';
  const check = (moduleOptions: string, clientOptions: string) =>
    passedIn ? `the ioredis client passed as client (its ${clientOptions})` : moduleOptions;

  if (options.mode === 'client' && sentinelsOf(options.client as ClientWithOptions).length > 0) {
    if (has(/All sentinels are unreachable|No such master|not a master|sentinel/i)) {
      return make(
        `Could not reach ${where}: check the sentinels and name options of the ioredis client passed as client, ` +
          'and that the Sentinels run and know that master.',
      );
    }
  }
  if (/cluster support disabled/i.test(nodeReplies)) {
    return make(
      `Redis at ${where} is not a Redis Cluster (cluster support disabled): ` +
        (passedIn
          ? 'pass an ioredis Redis client (not a Cluster) for a standalone server.'
          : 'clusterNodes is for a cluster; for a standalone server use the url (or host and port) option.'),
    );
  }
  if (has(/WRONGPASS|NOAUTH|invalid password|invalid username-password/i)) {
    if (passedIn) {
      return make(`Redis at ${where} refused the credentials: check ${check('', 'password and username')}.`);
    }
    if (options.credentialsFrom === undefined) {
      return make(
        `Redis at ${where} requires credentials and none were given: set the accessKey option (and username for ` +
          'an ACL user), or put them in url (redis://user:password@host:port).',
      );
    }
    return make(
      options.credentialsFrom === 'url'
        ? `Redis at ${where} rejected the credentials: check the password (and user name) in the url option.`
        : `Redis at ${where} rejected the credentials: check the accessKey option (and username for an ACL user).`,
    );
  }
  if (has(/NOPERM/)) {
    return make(
      `Redis at ${where} refused a command to the ACL user${options.username ? ` ${options.username}` : ''} ` +
        '(NOPERM): the library needs +@read +@write +@scripting (EVALSHA, SCRIPT LOAD) +time +ping on the ' +
        `application's keys${options.databaseId ? ', +select for databaseId' : ''} (and, for the near cache, ` +
        '+client|id +client|tracking +client|setname +subscribe &__redis__:invalidate). Grant them, or check ' +
        `${check('the username option', 'username')}.`,
    );
  }
  if (has(/DB index is out of range|invalid DB index/i)) {
    return make(
      `Redis at ${where} has no database${options.databaseId === undefined ? '' : ` ${options.databaseId}`}: check ${check('the databaseId option', 'db')}.`,
    );
  }
  if (has(/ENOTFOUND|EAI_AGAIN/)) {
    return make(
      `The Redis host of ${where} cannot be resolved: check ${check('the host (or url) option', 'host names')}.`,
    );
  }
  const tlsFailure = tlsFailureOf(text);
  if (tlsFailure) {
    const place = passedIn ? 'the tls option of the ioredis client passed as client' : 'the ssl option';
    return make(`The TLS handshake with Redis at ${where} failed: ${tlsFailureAdvice(tlsFailure, place)}.`);
  }
  if (has(/ERR_SSL|EPROTO|SSL routines|certificate|self[- ]signed|TLS/i)) {
    return make(
      passedIn
        ? `The TLS handshake with Redis at ${where} failed: check ${check('', 'tls and port')}.`
        : `The TLS handshake with Redis at ${where} failed: with ssl on, port must be the server's TLS port, ` +
            'and a private CA must be given as ssl: { ca }. Check the ssl and port options.',
    );
  }
  if (has(/ECONNREFUSED/)) {
    return make(
      `Nothing accepts connections at ${where} (ECONNREFUSED): check ` +
        `${check('the host and port options', 'host and port or cluster nodes')} and that Redis runs.`,
    );
  }
  if (has(/ECONNRESET|Connection is closed/) && !timedOut && !has(/ETIMEDOUT/)) {
    return make(
      `Redis at ${where} closed the connection during the handshake: if the server requires TLS ` +
        (passedIn
          ? 'give the ioredis client passed as client its tls option; otherwise check its host and port.'
          : 'set the ssl option; otherwise check host and port.'),
    );
  }
  const tlsHint = passedIn
    ? ''
    : options.tls
      ? ' ssl is on: is port a TLS port?'
      : ' If the server requires TLS, set ssl: true.';
  return make(
    `Could not connect to Redis at ${where} within connectionTimeoutInMilliseconds=${options.connectionTimeout}: ` +
      `check ${check('the host and port options', 'host and port or cluster nodes, and tls')} and the network.${tlsHint}`,
  );
}

/** The part of an ioredis client's options that says where it connects. */
interface ClientWithOptions {
  /** An ioredis Cluster: it connects through the nodes it was built with. */
  readonly isCluster?: boolean;
  readonly startupNodes?: readonly (string | number | { host?: string; port?: number })[];
  readonly options?: {
    readonly host?: string;
    readonly port?: number;
    readonly path?: string | null;
    readonly name?: string;
    readonly sentinels?: readonly { host?: string; port?: number }[] | null;
  };
}

function sentinelsOf(client: ClientWithOptions | undefined): readonly { host?: string; port?: number }[] {
  return client?.options?.sentinels ?? [];
}

/**
 * Where an ioredis client connects, for messages: `host:port`, its socket path, the master it asks the Sentinels
 * for, or a Cluster's startup nodes.
 */
export function describeClientAddress(client: ClientWithOptions | undefined): string {
  if (client?.isCluster) {
    return `the cluster nodes ${(client.startupNodes ?? []).map(describeStartupNode).join(', ')}`;
  }
  const options = client?.options ?? {};
  const sentinels = sentinelsOf(client);
  if (sentinels.length > 0) {
    const list = sentinels.map((s) => `${s.host ?? 'localhost'}:${s.port ?? 26379}`).join(', ');
    return `the master "${options.name ?? 'mymaster'}" through the Sentinels ${list}`;
  }
  return options.path ?? `${options.host ?? 'localhost'}:${options.port ?? 6379}`;
}

/** A Cluster's startup node as ioredis reads it (its defaults: 127.0.0.1, 6379), never with a password. */
function describeStartupNode(node: string | number | { host?: string; port?: number }): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'object') return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
  if (node.includes('://')) {
    try {
      const url = new URL(node);
      return `${url.hostname}:${url.port || 6379}`;
    } catch {
      // Not a URL after all: shown as written, without what precedes an @ (user and password).
    }
  }
  return node.replace(/^.*@/, '');
}
