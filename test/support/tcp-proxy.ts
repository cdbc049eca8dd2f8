/**
 * A TCP proxy in front of a real server, to take it away and give it back: `cut()` drops every
 * connection and stops listening (new ones are refused, ECONNREFUSED), `restore()` listens on the
 * same port again.
 * The server behind it keeps its data, as Redis does across a network partition or failover.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy extends AsyncDisposable {
  port: number;
  /** Connections stay open but nothing passes either way (a half-open link, a frozen server). */
  freeze(): void;
  cut(): Promise<void>;
  restore(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server: Server = createServer((client) => {
    if (frozen) {
      sockets.add(client);
      client.pause();
      return;
    }
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let listening = true;
  return {
    port,
    freeze() {
      frozen = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async cut() {
      listening = false;
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await closed;
    },
    async restore() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      listening = true;
    },
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      if (listening) await new Promise((resolve) => server.close(resolve));
    },
  };
}
