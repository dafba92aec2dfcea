import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on `host` (default 127.0.0.1) and `port` (0 = a free one); resolves with the port in use. */
export async function listen(server: Server, port: number, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
