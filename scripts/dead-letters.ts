/**
 * `npm run dead-letters -- list | redrive [--room R] [--event E]`: the events that were not
 * delivered to the network, and sending them again. A redriven event goes back into its room's
 * queue, at its end, and the drainer delivers it once (the scheduled function when deployed,
 * `npm start`'s timer locally).
 *
 * Which table: `--stage prod` (AWS credentials from the environment, as for `osls deploy`), or
 * `npm start`'s, by its DynamoDB Local address: `DYNAMODB_ENDPOINT=http://127.0.0.1:PORT` (npm start
 * prints it) with `--stage local` (the default). TABLE_NAME overrides the table's name.
 */
import { parseArgs } from 'node:util';
import { createStore } from '../lib/store/index.js';
import type { RoomId } from '../lib/matrix/ids.js';
import { isRoomId } from '../lib/matrix/ids.js';
import { redrive } from '../lib/bridge/parking.js';
import { logger } from '../lib/log.js';
import { tableNameFor } from '../lib/defaults.js';

const USAGE = 'usage: npm run dead-letters -- list|redrive [--room !room:server] [--event $event] [--stage local|<stage>]';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { room: { type: 'string' }, event: { type: 'string' }, stage: { type: 'string', default: 'local' } },
  });
  const command = positionals[0];
  if ((command !== 'list' && command !== 'redrive') || positionals.length > 1) {
    console.error(USAGE);
    return 2;
  }
  if (values.room !== undefined && !isRoomId(values.room)) {
    console.error(`--room must be a room ID such as !abc:example.org, not ${JSON.stringify(values.room)}`);
    return 2;
  }
  const stage = values.stage ?? 'local';
  const endpoint = process.env.DYNAMODB_ENDPOINT?.trim() || undefined;
  if (stage === 'local' && !endpoint) {
    console.error('for npm start\'s table, set DYNAMODB_ENDPOINT to the DynamoDB Local address npm start printed; for a deployed stage, give --stage');
    return 2;
  }
  // The SDK's notice about Node 20 support would drown a command-line listing.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const store = createStore({ tableName: process.env.TABLE_NAME?.trim() || tableNameFor(stage), endpoint });
  const roomId = values.room as RoomId | undefined;
  if (command === 'list') {
    const letters = (await store.listDeadLetters(roomId)).filter((d) => !values.event || d.eventId === values.event);
    for (const d of letters) {
      const { event: _event, ...shown } = d;
      process.stdout.write(JSON.stringify({ ...shown, firstFailure: new Date(d.firstFailureAt).toISOString(), lastFailure: new Date(d.lastFailureAt).toISOString() }) + '\n');
    }
    console.error(`${letters.length} dead letter(s)`);
    return 0;
  }
  const sent = await redrive({ store, log: logger({ tool: 'dead-letters' }), now: Date.now }, { roomId, eventId: values.event });
  console.error(`${sent.length} dead letter(s) back in their rooms' queues; the drainer delivers them`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
