/** A self-signed certificate for 127.0.0.1 (valid two days), for servers the tests start with TLS. */
import { execFileSync } from 'node:child_process';

export function selfSignedCertificate(certFile: string, keyFile: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
}
