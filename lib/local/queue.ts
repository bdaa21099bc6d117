/**
 * The delivery queue and its dead-letter queue on this machine: an SQS-compatible server in this
 * process (npm `local-aws-sqs`, pure JavaScript, in memory), the queues made from the definition
 * CloudFormation deploys (infra/queue.yml), so the code talks to them with @aws-sdk/client-sqs
 * unchanged. npm start and the tests use it.
 *
 * local-aws-sqs drops a repeated MessageDeduplicationId only while the first message is still on
 * the queue; SQS FIFO drops it for 5 minutes, delivered or not, which push's retries count on. So
 * the server is reached through a small front (`deduplicating`) that keeps that 5-minute window.
 *
 * The server keeps nothing on disk. So that undelivered messages survive npm start's Ctrl-C, a
 * clean stop moves every message of both queues into a file (`saveTo`), and the next start puts
 * them back, each room's in order, before anything else is queued. A killed process (SIGKILL, a
 * crash) loses what was on the queues.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import { createSqsServer } from 'local-aws-sqs';
import { parseDocument } from 'yaml';
import { queueNamesFor } from '../defaults.js';

const QUEUE_YML = fileURLToPath(new URL('../../infra/queue.yml', import.meta.url));

type Props = Record<string, unknown>;

/** The two queues' properties as infra/queue.yml deploys them (CloudFormation's short forms parse as plain values). */
export function queueDefinitions(): { queue: Props; deadLetters: Props } {
  const tag = (name: string) => ({ tag: `!${name}`, resolve: (v: string) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: v }) });
  const doc = parseDocument(readFileSync(QUEUE_YML, 'utf8'), {
    customTags: ['Ref', 'GetAtt', 'Sub', 'If', 'Equals', 'Not', 'Join'].map(tag) as never,
  }).toJS() as { Resources: Record<string, { Properties: Props }> };
  return { queue: doc.Resources.DeliveryQueue!.Properties, deadLetters: doc.Resources.DeadLetterQueue!.Properties };
}

export interface LocalQueues {
  endpoint: string;
  queueUrl: string;
  queueArn: string;
  deadLetterQueueUrl: string;
  client: SQSClient;
  /** How many messages a start put back from the file. */
  restored: number;
  /** Stops the server; with `saveTo`, first moves every message into that file. `hidden`: receipts of messages hidden for a retry, brought back first. */
  stop(hidden?: readonly string[]): Promise<{ saved: number }>;
}

interface SavedMessage {
  queue: 'queue' | 'deadLetters';
  body: string;
  groupId: string;
  deduplicationId: string;
  attributes: Record<string, MessageAttributeValue>;
}

export function localSqsClient(endpoint: string): SQSClient {
  return new SQSClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

const str = (v: unknown) => (v === undefined ? undefined : String(v));

/** SQS FIFO's deduplication interval. */
const DEDUPLICATION_MS = 5 * 60_000;

/**
 * A front for the local SQS server that keeps SQS FIFO's 5-minute deduplication window: a message
 * sent again with a MessageDeduplicationId seen in the last 5 minutes (JSON protocol, as
 * @aws-sdk/client-sqs speaks) is answered as sent, with the first one's ids, and not queued.
 * As SQS does: the window is the queue's (its DeduplicationScope, `queue` by default, as
 * infra/queue.yml leaves it), and the answer's MD5OfMessageBody is that of the body sent now (the
 * SDK checks it against what it sent; SQS recomputes it, and only the ids are the first message's).
 * Everything else passes through as it is.
 */
async function deduplicating(target: string, port: number): Promise<Server> {
  const seen = new Map<string, { at: number; answer: Record<string, unknown> }>();
  const keyOf = (queueUrl: unknown, entry: Record<string, unknown>) =>
    typeof entry.MessageDeduplicationId === 'string' ? `${String(queueUrl).split('/').pop()}|${entry.MessageDeduplicationId}` : undefined;
  /** The first message's ids, with the MD5 of this body (the attributes' MD5 is not computed here; the SDK does not check it). */
  const repeated = (hit: { answer: Record<string, unknown> }, entry: Record<string, unknown>) => {
    const { MD5OfMessageAttributes: _attributes, ...ids } = hit.answer;
    return { ...ids, MD5OfMessageBody: createHash('md5').update(String(entry.MessageBody ?? ''), 'utf8').digest('hex') };
  };
  const recent = (key: string | undefined) => {
    const hit = key === undefined ? undefined : seen.get(key);
    return hit && Date.now() - hit.at < DEDUPLICATION_MS ? hit : undefined;
  };
  const pass = async (req: IncomingMessage, body: Buffer) => {
    const res = await fetch(target + (req.url ?? '/'), {
      method: req.method,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && k !== 'content-length' && k !== 'host')) as Record<string, string>,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : new Uint8Array(body),
    });
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() };
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = Buffer.concat(chunks);
        const action = String(req.headers['x-amz-target'] ?? '');
        let answer: { status: number; headers: Record<string, string>; text: string };
        if (action === 'AmazonSQS.SendMessage' || action === 'AmazonSQS.SendMessageBatch') {
          const input = JSON.parse(body.toString('utf8')) as Record<string, any>;
          const batch = action === 'AmazonSQS.SendMessageBatch';
          const entries: Record<string, unknown>[] = batch ? input.Entries ?? [] : [input];
          const repeats = entries.map((e) => recent(keyOf(input.QueueUrl, e)));
          const fresh = entries.filter((_, i) => !repeats[i]);
          if (!fresh.length) {
            const out = batch ? { Successful: entries.map((e, i) => ({ ...repeated(repeats[i]!, e), Id: e.Id })), Failed: [] } : repeated(repeats[0]!, input);
            answer = { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, text: JSON.stringify(out) };
          } else {
            const sent = await pass(req, Buffer.from(JSON.stringify(batch ? { ...input, Entries: fresh } : input)));
            answer = sent;
            if (sent.status === 200) {
              const out = JSON.parse(sent.text) as Record<string, any>;
              const now = Date.now();
              if (batch) {
                for (const ok of out.Successful ?? []) {
                  const entry = fresh.find((e) => e.Id === ok.Id);
                  const key = entry && keyOf(input.QueueUrl, entry);
                  if (key) seen.set(key, { at: now, answer: { ...ok } });
                }
                out.Successful = [...(out.Successful ?? []), ...entries.flatMap((e, i) => (repeats[i] ? [{ ...repeated(repeats[i]!, e), Id: e.Id }] : []))];
                answer = { ...sent, text: JSON.stringify(out) };
              } else {
                const key = keyOf(input.QueueUrl, input);
                if (key) seen.set(key, { at: now, answer: out });
              }
            }
          }
        } else {
          answer = await pass(req, body);
        }
        const headers = { ...answer.headers };
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        delete headers['content-encoding'];
        res.writeHead(answer.status, headers).end(answer.text);
      } catch (e) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify({ __type: 'InternalError', message: (e as Error).message }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return server;
}

export async function startLocalQueues(opts: { stage: string; port?: number; saveTo?: string }): Promise<LocalQueues> {
  const sqs = await createSqsServer({ port: 0, hostname: '127.0.0.1', emulateQueueCreationLifecycle: false });
  const server = await deduplicating(`http://127.0.0.1:${(sqs.address() as AddressInfo).port}`, opts.port ?? 0);
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = localSqsClient(endpoint);
  const names = queueNamesFor(opts.stage);
  const def = queueDefinitions();
  const attributesOf = (p: Props): Record<string, string> => {
    const a: Record<string, string | undefined> = {
      FifoQueue: 'true',
      MessageRetentionPeriod: str(p.MessageRetentionPeriod),
      VisibilityTimeout: str(p.VisibilityTimeout),
    };
    return Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as Record<string, string>;
  };
  const deadLetterQueueUrl = (await client.send(new CreateQueueCommand({ QueueName: names.deadLetters, Attributes: attributesOf(def.deadLetters) }))).QueueUrl!;
  const arnOf = async (url: string) => (await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const maxReceiveCount = (def.queue.RedrivePolicy as { maxReceiveCount?: unknown } | undefined)?.maxReceiveCount;
  const queueUrl = (
    await client.send(
      new CreateQueueCommand({
        QueueName: names.queue,
        Attributes: {
          ...attributesOf(def.queue),
          ...(maxReceiveCount ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await arnOf(deadLetterQueueUrl), maxReceiveCount: Number(maxReceiveCount) }) } : {}),
        },
      }),
    )
  ).QueueUrl!;
  const urls = { queue: queueUrl, deadLetters: deadLetterQueueUrl };

  let restored = 0;
  if (opts.saveTo && existsSync(opts.saveTo)) {
    const saved = readFileSync(opts.saveTo, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SavedMessage);
    for (const q of ['deadLetters', 'queue'] as const) {
      const mine = saved.filter((m) => m.queue === q);
      for (let i = 0; i < mine.length; i += 10) {
        const out = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: urls[q],
            Entries: mine.slice(i, i + 10).map((m, j) => ({
              Id: String(j),
              MessageBody: m.body,
              MessageGroupId: m.groupId,
              MessageDeduplicationId: m.deduplicationId,
              MessageAttributes: m.attributes,
            })),
          }),
        );
        if (out.Failed?.length) throw new Error(`could not put back ${out.Failed.length} saved message(s) from ${opts.saveTo}; the file is kept`);
      }
    }
    restored = saved.length;
    rmSync(opts.saveTo);
  }

  return {
    endpoint,
    queueUrl,
    queueArn: await arnOf(queueUrl),
    deadLetterQueueUrl,
    client,
    restored,
    async stop(hidden = []) {
      let saved = 0;
      try {
        if (opts.saveTo) {
          // Messages waiting out a retry are hidden: visible again first, so that none is left behind.
          for (let i = 0; i < hidden.length; i += 10) {
            await client
              .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: hidden.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: 0 })) }))
              .catch(() => undefined);
          }
          const lines: string[] = [];
          for (const q of ['queue', 'deadLetters'] as const) {
            for (;;) {
              const out = await client.send(
                new ReceiveMessageCommand({
                  QueueUrl: urls[q],
                  MaxNumberOfMessages: 10,
                  VisibilityTimeout: 60,
                  AttributeNames: ['All'],
                  MessageAttributeNames: ['All'],
                }),
              );
              const messages = out.Messages ?? [];
              if (!messages.length) break;
              for (const m of messages) {
                const line: SavedMessage = {
                  queue: q,
                  body: m.Body ?? '',
                  groupId: m.Attributes?.MessageGroupId ?? 'unknown',
                  deduplicationId: m.Attributes?.MessageDeduplicationId ?? m.MessageId ?? '',
                  attributes: m.MessageAttributes ?? {},
                };
                lines.push(JSON.stringify(line));
              }
              // Written before they are deleted: a stop that dies half-way keeps them in the file.
              writeFileSync(opts.saveTo, lines.join('\n') + '\n', { mode: 0o600 });
              await client.send(new DeleteMessageBatchCommand({ QueueUrl: urls[q], Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
            }
          }
          saved = lines.length;
        }
      } finally {
        client.destroy();
        for (const srv of [server, sqs]) {
          await new Promise<void>((resolve) => {
            srv.close(() => resolve());
            srv.closeAllConnections?.();
          });
        }
      }
      return { saved };
    },
  };
}
