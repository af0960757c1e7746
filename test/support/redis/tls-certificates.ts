import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsCertificates {
  /** Directory holding every file below. */
  dir: string;
  caCertPath: string;
  caKeyPath: string;
  certPath: string;
  keyPath: string;
  /** The CA certificate (PEM) a client must trust. */
  ca: Buffer;
  /** The server certificate (PEM), valid for 127.0.0.1 and localhost. */
  cert: Buffer;
  /** The server's private key (PEM). */
  key: Buffer;
  /** Removes `dir`. */
  remove(): Promise<void>;
}

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no

[dn]
CN = redis-harness

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

/**
 * Generates, with the `openssl` binary, a throw-away CA and a server certificate signed by it for
 * 127.0.0.1 / localhost (subjectAltName), valid for two days. EC P-256 keys keep this fast (~50 ms).
 *
 * @param options.dir directory to write into (created if missing); default: a new temp dir.
 */
export async function generateTlsCertificates(options: { dir?: string } = {}): Promise<TlsCertificates> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'redis-harness-tls-')));
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'openssl.cnf');
  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  const csrPath = join(dir, 'server.csr');
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await writeFile(configPath, OPENSSL_CONFIG);
  try {
    // CA: self-signed.
    await openssl(['req', '-x509', ...newKey, '-keyout', caKeyPath, '-out', caCertPath, '-days', '2'], {
      config: configPath,
      subject: '/CN=redis-harness test CA',
      extensions: ['-extensions', 'v3_ca'],
    });
    // Server: key + CSR, then signed by the CA with the SAN extension.
    await openssl(['req', '-new', ...newKey, '-keyout', keyPath, '-out', csrPath], {
      config: configPath,
      subject: '/CN=localhost',
      extensions: [],
    });
    const serial = `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      csrPath,
      '-CA',
      caCertPath,
      '-CAkey',
      caKeyPath,
      '-set_serial',
      serial,
      '-out',
      certPath,
      '-days',
      '2',
      '-extfile',
      configPath,
      '-extensions',
      'v3_server',
    ]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl failed to generate test certificates in ${dir}: ${String(error)}\n${stderr}`);
  }

  const [ca, cert, key] = await Promise.all([readFile(caCertPath), readFile(certPath), readFile(keyPath)]);
  return {
    dir,
    caCertPath,
    caKeyPath,
    certPath,
    keyPath,
    ca,
    cert,
    key,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

async function openssl(
  args: string[],
  options: { config: string; subject: string; extensions: string[] },
): Promise<void> {
  await run('openssl', [...args, '-config', options.config, '-subj', options.subject, ...options.extensions]);
}
