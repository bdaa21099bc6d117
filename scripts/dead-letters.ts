/**
 * `npm run dead-letters -- list | redrive | purge [--stage S]`: the messages that were not
 * delivered to the network, on the delivery queue's FIFO dead-letter queue.
 *
 * - list: room, sender, event ID, age and last error of each, one JSON line each; nothing is
 *   taken off the queue (each message read is made visible again at once). A FIFO queue hands a
 *   room's messages out in order only, so at most 10 per room are shown; the count covers all.
 * - redrive: SQS's own message move task puts every dead letter back on the delivery queue, where
 *   the deliver function sends it (a room's letters in their order, after what the room has queued).
 * - purge: deletes every dead letter (SQS's PurgeQueue, which takes up to 60 seconds).
 *
 * Which queues: `--stage prod` (AWS credentials and region from the environment, as for
 * `osls deploy`), or npm start's, by its local SQS address: `SQS_ENDPOINT=http://127.0.0.1:PORT`
 * (npm start prints it) with `--stage local` (the default).
 */
import { parseArgs } from 'node:util';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { sqsClient, sqsQueue } from '../lib/queue/sqs.js';
import { queueNamesFor } from '../lib/defaults.js';

const USAGE = 'usage: npm run dead-letters -- list|redrive|purge [--stage local|<stage>]';

const age = (ms: number) => (ms < 3600_000 ? `${Math.round(ms / 60_000)} min` : ms < 172_800_000 ? `${(ms / 3600_000).toFixed(1)} h` : `${Math.round(ms / 86_400_000)} d`);

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { stage: { type: 'string', default: 'local' } } });
  const command = positionals[0];
  if (!['list', 'redrive', 'purge'].includes(command ?? '') || positionals.length > 1) {
    console.error(USAGE);
    return 2;
  }
  const stage = values.stage ?? 'local';
  const endpoint = process.env.SQS_ENDPOINT?.trim() || undefined;
  if (stage === 'local' && !endpoint) {
    console.error("for npm start's queues, set SQS_ENDPOINT to the local SQS address npm start printed; for a deployed stage, give --stage");
    return 2;
  }
  // The SDK's notice about Node 20 support would drown a command-line listing.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = sqsClient(endpoint);
  const names = queueNamesFor(stage);
  const urlOf = async (QueueName: string) => (await client.send(new GetQueueUrlCommand({ QueueName }))).QueueUrl!;
  const queue = sqsQueue({ queueUrl: await urlOf(names.queue), deadLetterQueueUrl: await urlOf(names.deadLetters), client });
  try {
    if (command === 'list') {
      const { letters, total } = await queue.deadLetters.list();
      const now = Date.now();
      for (const d of letters) {
        process.stdout.write(
          JSON.stringify({ room: d.roomId, sender: d.sender, event: d.eventId, age: age(now - d.deadLetteredAt), deadLetteredAt: new Date(d.deadLetteredAt).toISOString(), lastError: d.lastError }) + '\n',
        );
      }
      console.error(`${total} dead letter(s)${total > letters.length ? `, ${letters.length} shown (at most 10 per room: a FIFO queue hands a room's messages out in order)` : ''}`);
    } else if (command === 'redrive') {
      const { taskHandle } = await queue.deadLetters.redrive();
      console.error(`moving the dead letters back onto ${names.queue} (SQS message move task ${taskHandle.slice(0, 24)}…); the deliver function sends them`);
    } else {
      await queue.deadLetters.purge();
      console.error(`purge of ${names.deadLetters} started: SQS deletes every dead letter on it within 60 seconds`);
    }
    return 0;
  } finally {
    client.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
