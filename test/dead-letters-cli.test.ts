/**
 * `npm run dead-letters -- list | redrive | purge` against a local SQS server, as an operator runs
 * it against npm start's (SQS_ENDPOINT and the stage name the queues are named after).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalQueues } from '../lib/local/queue.js';
import { sqsQueue } from '../lib/queue/sqs.js';
import type { ReceivedEvent } from '../lib/queue/port.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STAGE = `cli${process.pid}`;
const q = await startLocalQueues({ stage: STAGE });
test.after(() => q.stop());
const queue = sqsQueue({ queueUrl: q.queueUrl, deadLetterQueueUrl: q.deadLetterQueueUrl, client: q.client });

function run(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dead-letters.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, SQS_ENDPOINT: q.endpoint, AWS_REGION: 'us-east-1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

const letter = (n: number, room = '!room:example.org'): ReceivedEvent => ({
  messageId: `m${n}`,
  receipt: '',
  roomId: room as `!${string}`,
  eventId: `$event${n}`,
  sender: '@alice:example.org',
  body: JSON.stringify({ id: `$event${n}`, room: '#matrix', sender: { userId: '@alice:example.org' }, msgtype: 'm.text', body: `message ${n}`, ts: 1 }),
  receiveCount: 3,
  queuedAt: Date.now(),
});
const count = async (url: string) => Number((await q.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes?.ApproximateNumberOfMessages);

test('list shows room, sender, event, age and last error, and takes nothing away; redrive moves them back; purge starts SQS\'s purge', { timeout: 60_000 }, async () => {
  await queue.delivery.deadLetter(letter(1), 'still failing after 24 h: network answered HTTP 503');
  await queue.delivery.deadLetter(letter(2), 'still failing after 24 h: network answered HTTP 503');
  await queue.delivery.deadLetter(letter(3, '!other:example.org'), 'unreadable queued message');

  const listed = await run('list', '--stage', STAGE);
  assert.equal(listed.code, 0, listed.err);
  const lines = listed.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.room, l.sender, l.event, l.lastError]),
    [
      ['!room:example.org', '@alice:example.org', '$event1', 'still failing after 24 h: network answered HTTP 503'],
      ['!room:example.org', '@alice:example.org', '$event2', 'still failing after 24 h: network answered HTTP 503'],
      ['!other:example.org', '@alice:example.org', '$event3', 'unreadable queued message'],
    ],
  );
  assert.ok(lines.every((l) => /^\d+ min$/.test(l.age)), JSON.stringify(lines.map((l) => l.age)));
  assert.match(listed.err, /^3 dead letter\(s\)/);
  assert.equal(await count(q.deadLetterQueueUrl), 3, 'listing took nothing away');

  const redriven = await run('redrive', '--stage', STAGE);
  assert.equal(redriven.code, 0, redriven.err);
  assert.match(redriven.err, /message move task/);
  for (let i = 0; i < 100 && (await count(q.deadLetterQueueUrl)) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await count(q.deadLetterQueueUrl), 0);
  const back = await q.client.send(new ReceiveMessageCommand({ QueueUrl: q.queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
  assert.deepEqual(back.Messages?.map((m) => m.MessageAttributes?.eventId?.StringValue).sort(), ['$event1', '$event2', '$event3']);

  await queue.delivery.deadLetter(letter(4), 'refused');
  const purged = await run('purge', '--stage', STAGE);
  assert.equal(purged.code, 0, purged.err);
  // SQS's PurgeQueue deletes within 60 seconds (local-aws-sqs waits the whole minute, as it may):
  // started is all that can be seen here without waiting it out.
  assert.match(purged.err, /purge of .*dead-letters\.fifo started: SQS deletes every dead letter on it within 60 seconds/);
});

test('a wrong command, or npm start\'s queues without SQS_ENDPOINT, is refused with how to run it', async () => {
  const wrong = await run('resend');
  assert.equal(wrong.code, 2);
  assert.match(wrong.err, /usage: npm run dead-letters -- list\|redrive\|purge/);
  const noEndpoint = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const env = { ...process.env };
    delete env.SQS_ENDPOINT;
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dead-letters.ts', 'list'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => resolve({ code, err }));
  });
  assert.equal(noEndpoint.code, 2);
  assert.match(noEndpoint.err, /set SQS_ENDPOINT to the local SQS address npm start printed/);
});
