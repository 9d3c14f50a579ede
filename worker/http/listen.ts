import type http from 'node:http';

/** Starts listening; rejects with the reason (the port is taken, the address is not ours…). */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
