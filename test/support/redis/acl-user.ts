import type { RedisServerProcess } from './redis-server.process.js';

/**
 * Creates (or replaces) the ACL user `name` with password `<Name>-Secret-PW-1234`, every command and only the
 * key patterns given, and returns the module's Redis options for it (applicationName `shop` unless given).
 */
export async function aclUser(
  server: RedisServerProcess,
  name: string,
  keyPatterns: readonly string[],
  applicationName = 'shop',
) {
  const accessKey = `${name[0].toUpperCase()}${name.slice(1)}-Secret-PW-1234`;
  await server.admin().call('ACL', 'SETUSER', name, 'reset', 'on', `>${accessKey}`, ...keyPatterns, '+@all');
  return { host: server.host, port: server.port, username: name, accessKey, applicationName };
}
