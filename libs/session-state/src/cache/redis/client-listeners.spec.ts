import { EventEmitter } from 'node:events';
import { listenShared } from './client-listeners.js';

describe('listenShared', () => {
  it('gives the client one listener per event, calls every handler, and the last removal leaves it as found', () => {
    const client = new EventEmitter();
    const heard: string[] = [];
    const stops = Array.from({ length: 20 }, (_, i) =>
      listenShared(client, 'error', (error: Error) => heard.push(`${i}:${error.message}`)),
    );
    const stopReady = listenShared(client, 'ready', () => heard.push('ready'));
    expect(client.listenerCount('error')).toBe(1);
    client.emit('error', new Error('down'));
    client.emit('ready');
    expect(heard).toEqual([...Array.from({ length: 20 }, (_, i) => `${i}:down`), 'ready']);
    for (const stop of stops.slice(1)) stop();
    stops[1](); // twice: nothing more
    expect(client.listenerCount('error')).toBe(1);
    stops[0]();
    stopReady();
    expect(client.eventNames()).toEqual([]);
    // Used again afterwards: a fresh listener.
    const stop = listenShared(client, 'error', () => undefined);
    expect(client.listenerCount('error')).toBe(1);
    stop();
    expect(client.listenerCount('error')).toBe(0);
  });
});
