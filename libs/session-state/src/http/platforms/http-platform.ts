import type { PlatformRequest, RawRequest, RawResponse } from '../platform-request.js';
import type { BeforeFirstByte, ResponseHold } from '../response-hold.js';

/** The platforms this library runs on: the `getType()` of Nest's Express and Fastify adapters. */
export const SUPPORTED_PLATFORMS = ['express', 'fastify'] as const;
export type SupportedPlatform = (typeof SUPPORTED_PLATFORMS)[number];

/**
 * What the library does at the start of every request, called by the platform's entry: attach the
 * request's state, then `next()` (inside the request's async context when it is on).
 */
export interface RequestEntry {
  enter(request: PlatformRequest, raw: RawRequest, res: RawResponse, next: (error?: unknown) => void): void;
  /**
   * Attaches the request's state ahead of the platform's entry, where a platform can do it earlier
   * (Express: the Node server's `request` event); `enter` then finds it.
   */
  attach(request: PlatformRequest, raw: RawRequest, res: RawResponse): void;
}

/** The response hold of a request (the state it hangs on), for a hook shared by every response. */
export type HoldOf = (raw: RawRequest | undefined) => ResponseHold | undefined;

/** One platform's part of the boundary: how a request is entered, secured and held. */
export interface HttpPlatform {
  readonly name: SupportedPlatform;
  /** HTTPS, as the platform says (Express's `req.secure`, Fastify's `request.protocol`: both honour trust proxy). */
  isSecure(request: PlatformRequest, raw: RawRequest): boolean;
  /** A hold on this response's first byte (see {@link ResponseHold}). */
  holdResponse(
    raw: RawRequest,
    res: RawResponse,
    beforeFirstByte: BeforeFirstByte,
    onEarlyRelease: () => void,
  ): ResponseHold;
}

/** Whether the connection itself is TLS (the answer when the platform gives none). */
export function isEncrypted(raw: RawRequest): boolean {
  return (raw.socket as { encrypted?: boolean } | null)?.encrypted === true;
}
