/**
 * Loopback ports for the local servers (npm start's front door, serverless-offline, DynamoDB Local)
 * that are chosen now and listened on later, seconds later for serverless-offline.
 *
 * Why not the port the kernel hands out for `listen(0)`: that port comes from the ephemeral range,
 * the same range every outgoing connection takes its local port from, and a port held by an outgoing
 * connection cannot be listened on (EADDRINUSE). On a busy machine (a test suite, a homeserver, a
 * browser) thousands of connections go through that range in the half minute serverless-offline
 * takes to start, and one of them took its port once (CI, stop 29). A port below the ephemeral range
 * is only ever taken by someone who listens on it on purpose.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Linux's own setting; elsewhere (macOS, Windows) the IANA range, 49152–65535, is the default. */
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
const IANA_EPHEMERAL_LOW = 49152;
/** Below this are the registered ports of well-known servers, and ports a developer picks by hand (3000, 8008, 9000…). */
const LOWEST = 10_000;
const ATTEMPTS = 50;

/** The first port of the ephemeral range: what `listen(0)` and outgoing connections use starts there. */
export function ephemeralLow(readRange: () => string = () => readFileSync(EPHEMERAL_RANGE_FILE, 'utf8')): number {
  try {
    const low = Number(readRange().trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : IANA_EPHEMERAL_LOW;
  } catch {
    return IANA_EPHEMERAL_LOW;
  }
}

/** Listens on `port` (0: the kernel's choice) on 127.0.0.1 and lets go: the port it got, or undefined if taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const got = (srv.address() as { port: number }).port;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * A loopback port free now, below the ephemeral range when there is room there (random, so that
 * two processes choosing at once rarely meet); the kernel's choice if not. Whoever listens on it
 * later should still expect EADDRINUSE: another program may take it first.
 */
export async function freePort(random: () => number = Math.random): Promise<number> {
  const high = ephemeralLow() - 1;
  if (high - LOWEST >= 1000) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = await tryPort(LOWEST + Math.floor(random() * (high - LOWEST + 1)));
      if (port !== undefined) return port;
    }
  }
  const port = await tryPort(0);
  if (port === undefined) throw new Error('no free loopback port');
  return port;
}

/** `n` free loopback ports, all different and none of them in `taken`. */
export async function freePorts(n: number, taken: readonly number[] = []): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!taken.includes(p) && !ports.includes(p)) ports.push(p);
  }
  return ports;
}

/** Whether a server's output says it could not listen because the port was taken. */
export function saysPortTaken(output: string): boolean {
  return /EADDRINUSE|Address already in use/.test(output);
}

/** How many times a server is started on newly chosen ports before a taken port is reported. */
export const PORT_TRIES = 3;

/**
 * Starts something on ports chosen now (`choose`; `first`: ports chosen earlier, for the first try),
 * choosing again when it fails because one was taken before it listened: the ports were free when
 * chosen, so only a race took them. Any other failure is thrown at once.
 */
export async function onFreePorts<T>(
  choose: () => Promise<number[]>,
  start: (ports: number[]) => Promise<T>,
  opts: { first?: number[]; tries?: number } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = attempt === 1 && opts.first ? opts.first : await choose();
    try {
      return await start(ports);
    } catch (e) {
      if (attempt >= (opts.tries ?? PORT_TRIES) || !saysPortTaken(e instanceof Error ? e.message : String(e))) throw e;
    }
  }
}
