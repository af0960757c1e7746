import type { LoggerService } from '@nestjs/common';

/** A Nest logger that keeps every line, for asserting what is (and is not) logged. */
export class CaptureLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];

  private push(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length > 0 ? String(rest[rest.length - 1]) : undefined;
    const extra = rest.slice(0, -1).map((r) => (r instanceof Error ? r.stack : String(r)));
    this.lines.push({ level, message: [String(message), ...extra].join(' '), context });
  }

  log(message: unknown, ...rest: unknown[]) {
    this.push('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]) {
    this.push('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]) {
    this.push('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]) {
    this.push('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]) {
    this.push('verbose', message, rest);
  }

  text(): string {
    return this.lines.map((l) => `${l.level} ${l.context ?? ''} ${l.message}`).join('\n');
  }

  has(pattern: RegExp): boolean {
    return this.lines.some((l) => pattern.test(l.message));
  }
}
