/** What views/layout.hbs shows in every page's footer (a view local on both platforms). */
export interface Footer {
  /** The running adapter's `getType()`: `express` or `fastify`. */
  platform: string;
  store: string;
  tempDataProvider: string;
  idleTimeoutMinutes: number;
  /** `host, pid N` until the app listens, then `host:port, pid N` (the object is shared, so views see it). */
  instance: string;
}
