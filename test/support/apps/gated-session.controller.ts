import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { Session } from 'nest-session-state';

/**
 * A named point that requests wait at, after their session is loaded and before they change it: a
 * test lines up concurrent requests exactly (all loaded, then all changing) without sleeping.
 */
export class Gate {
  private waiting = 0;
  private readonly watchers: { count: number; resolve: () => void }[] = [];
  private open!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve));

  /** Called by a request: waits until the gate opens. */
  pass(): Promise<void> {
    this.waiting++;
    for (const watcher of this.watchers.filter((w) => w.count <= this.waiting)) watcher.resolve();
    return this.opened;
  }

  /** Resolves once `count` requests wait at the gate. */
  reached(count: number): Promise<void> {
    if (this.waiting >= count) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ count, resolve }));
  }

  release(): void {
    this.open();
  }
}

const gates = new Map<string, Gate>();

/**
 * Opens every gate made so far: an afterAll calls it before closing its app, so a test that failed while a
 * request waited at a gate does not leave that request (and the app's close) waiting for ever.
 */
export function releaseAllGates(): void {
  for (const found of gates.values()) found.release();
}

/** The gate named `name` (created on first use; shared by every app in this process). */
export function gate(name: string): Gate {
  let found = gates.get(name);
  if (!found) gates.set(name, (found = new Gate()));
  return found;
}

/** Session routes that wait at a {@link Gate} between loading the session and changing it. */
@Controller('gated/:gate')
export class GatedSessionController {
  @Post('set/:key')
  @HttpCode(200)
  async set(
    @Session() session: Session,
    @Param('gate') name: string,
    @Param('key') key: string,
    @Body() body: { value?: string },
  ) {
    await gate(name).pass();
    session.setString(key, body?.value ?? key);
    return { keys: session.keys };
  }

  /** Removes `key`; with `?commit=1` commits at once (the end-of-request commit then follows). */
  @Post('remove/:key')
  @HttpCode(200)
  async remove(
    @Session() session: Session,
    @Param('gate') name: string,
    @Param('key') key: string,
    @Query('commit') commit?: string,
  ) {
    await gate(name).pass();
    session.remove(key);
    if (commit === '1') await session.commit();
    return { keys: session.keys };
  }

  @Post('clear')
  @HttpCode(200)
  async clear(@Session() session: Session, @Param('gate') name: string) {
    await gate(name).pass();
    session.clear();
    return { keys: session.keys };
  }

  @Post('abandon')
  @HttpCode(200)
  async abandon(@Session() session: Session, @Param('gate') name: string) {
    await gate(name).pass();
    session.abandon();
    return { ok: true };
  }

  /** Regenerates the session (new key, data kept), setting `key` too when given. */
  @Post('regenerate')
  @HttpCode(200)
  async regenerate(@Session() session: Session, @Param('gate') name: string, @Body() body: { key?: string }) {
    await gate(name).pass();
    session.regenerate();
    if (body?.key) session.setString(body.key, 'by-regenerate');
    return { keys: session.keys };
  }

  /** Reads `count`, waits at the gate, writes it plus one: a read-modify-write across the wait. */
  @Post('increment')
  @HttpCode(200)
  async increment(@Session() session: Session, @Param('gate') name: string) {
    const count = (session.getInt32('count') ?? 0) + 1;
    await gate(name).pass();
    session.setInt32('count', count);
    return { count };
  }

  /** Sets `key` to `size` bytes of 'x' (limits tests). */
  @Post('fill/:key/:size')
  @HttpCode(200)
  async fill(
    @Session() session: Session,
    @Param('gate') name: string,
    @Param('key') key: string,
    @Param('size') size: string,
  ) {
    await gate(name).pass();
    session.setString(key, 'x'.repeat(Number(size)));
    return { keys: session.keys };
  }

  /** Byte size (keys + values) of what this request loaded, and its keys. */
  @Get('size')
  size(@Session() session: Session) {
    let bytes = 0;
    for (const key of session.keys) bytes += key.length + (session.getBytes(key)?.byteLength ?? 0);
    return { bytes, keys: session.keys.length };
  }
}
