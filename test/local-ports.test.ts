/**
 * The local servers' ports (lib/local/ports.ts). CI once saw serverless-offline exit with
 * EADDRINUSE: its port, free when npm start chose it from the kernel's ephemeral range, had been
 * taken as the local port of one of the suite's many outgoing connections by the time it listened.
 * Ports are now chosen below that range, and a server whose port was taken anyway starts again on others.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ephemeralLow, freePort, onFreePorts, saysPortTaken } from '../lib/local/ports.js';
import { startDynamoLocal } from '../lib/local/dynamodb.js';
import { localDynamoClient } from '../lib/local/table.js';

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** Listens on `port` (0: any) on 127.0.0.1, as a program that took the port would. */
function occupy(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => s.destroy());
    servers.push(srv);
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve((srv.address() as { port: number }).port));
  });
}

test('the ephemeral range is read from Linux\'s setting, and the IANA range is assumed without it', () => {
  assert.equal(ephemeralLow(() => '32768\t60999\n'), 32768);
  assert.equal(ephemeralLow(() => '1024 65535'), 1024);
  assert.equal(ephemeralLow(() => 'nonsense'), 49152);
  assert.equal(
    ephemeralLow(() => {
      throw new Error('ENOENT');
    }),
    49152,
  );
});

test('a port held by an outgoing connection cannot be listened on: why ports are not taken from the ephemeral range', async () => {
  const server = await occupy();
  const client = connect(server, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  try {
    const local = client.localPort!;
    assert.ok(local >= ephemeralLow(), `the kernel gave the connection ${local}, from the ephemeral range`);
    await assert.rejects(occupy(local), /EADDRINUSE/);
    // freePort's ports are below the range, where no outgoing connection gets one.
    const port = await freePort();
    assert.ok(port >= 10_000 && port < ephemeralLow(), `${port} is below ${ephemeralLow()}`);
    assert.equal(await occupy(port), port);
  } finally {
    client.destroy();
  }
});

test('freePort passes over a port someone listens on and gives a free one', async () => {
  const low = ephemeralLow();
  // The random draw lands on `taken` first, then on a free port.
  const taken = await freePort();
  const draw = (p: number) => (p - 10_000 + 0.5) / (low - 10_000);
  await occupy(taken);
  const next = await freePort();
  const draws = [draw(taken), draw(next)];
  assert.equal(await freePort(() => draws.shift() ?? Math.random()), next);
});

test('onFreePorts chooses again when a port was taken before the server listened, and throws anything else at once', async () => {
  const taken = await occupy();
  const tried: number[][] = [];
  const listen = async (ports: number[]) => {
    tried.push(ports);
    return occupy(ports[0]);
  };
  const port = await onFreePorts(async () => [await freePort()], listen, { first: [taken] });
  assert.equal(tried.length, 2);
  assert.deepEqual(tried[0], [taken]);
  assert.notEqual(port, taken);

  // Three tries, then the taken port is reported.
  let calls = 0;
  await assert.rejects(
    onFreePorts(async () => [taken], async (p) => (calls++, occupy(p[0]))),
    /EADDRINUSE/,
  );
  assert.equal(calls, 3);

  // Any other failure is not a race on the port: no second try.
  calls = 0;
  await assert.rejects(
    onFreePorts(async () => [1], async () => {
      calls++;
      throw new Error('the data folder is locked');
    }),
    /locked/,
  );
  assert.equal(calls, 1);
  assert.ok(saysPortTaken('java.net.BindException: Address already in use'));
});

test('DynamoDB Local whose port was taken before java listened starts on another one', async () => {
  const taken = await occupy();
  const chosen = [taken];
  const dynamo = await startDynamoLocal({ choosePort: async () => chosen.shift() ?? freePort() });
  try {
    assert.notEqual(dynamo.endpoint, `http://127.0.0.1:${taken}`);
    const client = localDynamoClient(dynamo.endpoint);
    assert.ok(Array.isArray((await client.send(new ListTablesCommand({}))).TableNames));
    client.destroy();
  } finally {
    await dynamo.stop();
  }
});
