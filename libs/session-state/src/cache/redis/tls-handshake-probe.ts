import { connect, type ConnectionOptions } from 'node:tls';

/**
 * Why a TLS handshake with `node` fails, as Node tells it (its error's code and message); undefined when it succeeds,
 * or gives no answer within `timeoutMs`. For a Redis Cluster's failed start: ioredis reads the slots over connections
 * whose errors it drops, and says only that no startup node is available, whatever refused the certificate.
 */
export function tlsHandshakeFailure(
  node: { readonly host: string; readonly port: number },
  tls: ConnectionOptions,
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let socket: ReturnType<typeof connect>;
    try {
      socket = connect({ ...tls, host: node.host, port: node.port });
    } catch {
      // Options Node refuses before connecting (a cert that is not PEM): not a handshake's failure.
      resolve(undefined);
      return;
    }
    const done = (failure: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(failure);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => done(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => done(`${error.code ?? ''} ${error.message}`));
  });
}
