import type { CaptureLogger } from '../../support/capture-logger.js';
import type { RawReply } from './raw-http.js';

/** Shortest string watched for: shorter ones (`chunks-3`, `1`) occur in logs by chance, and hide nothing. */
const MIN_NEEDLE = 16;

/**
 * Everything that must never reach a log line: the key ring's secrets, every session key, and every
 * cookie value the suite saw in either direction (what the server set and what the attacker sent).
 */
export class LeakWatch {
  private readonly needles = new Map<string, string>();

  secret(value: string): this {
    return this.add(value, 'a secret');
  }

  /** A cookie value; for a session cookie (`<key>.<tag>`) its key and tag are watched too. */
  cookie(value: string, name = 'a cookie'): this {
    this.add(value, `${name} value`);
    const dot = value.lastIndexOf('.');
    if (dot > 0) {
      this.add(value.slice(0, dot), `a session key (${name})`);
      this.add(value.slice(dot + 1), `a signature (${name})`);
    }
    return this;
  }

  /** Watches every cookie value a response set. */
  reply(reply: RawReply): RawReply {
    for (const cookie of reply.setCookies) this.cookie(cookie.value, cookie.name);
    return reply;
  }

  /** Watches every value of a Cookie header the suite sent. */
  header(header: string): string {
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) this.cookie(part.slice(eq + 1).trim(), part.slice(0, eq).trim());
    }
    return header;
  }

  get size(): number {
    return this.needles.size;
  }

  /** The first log line carrying a watched value, described without quoting the value. */
  findLeak(logger: CaptureLogger): string | undefined {
    for (const line of logger.lines) {
      const text = `${line.context ?? ''} ${line.message}`;
      for (const [needle, label] of this.needles) {
        if (text.includes(needle))
          return `${line.level} line "${line.message.slice(0, 80)}..." holds ${label}`;
      }
    }
    return undefined;
  }

  private add(value: string, label: string): this {
    if (value.length >= MIN_NEEDLE && !this.needles.has(value)) this.needles.set(value, label);
    return this;
  }
}

/** Log lines about a rejected session or TempData cookie. */
export function badCookieLines(logger: CaptureLogger) {
  return logger.lines.filter((l) =>
    /session cookie could not be unprotected|TempData cookie was ignored/.test(l.message),
  );
}
