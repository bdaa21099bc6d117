/**
 * The delivery queue for one test file: the same SQS-compatible server and queues npm start
 * uses (lib/local/queue.ts), and the deliver function run by the same event-source emulation,
 * invoked in this process the way Lambda's SQS event source invokes it.
 */
import { after } from 'node:test';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { startLocalQueues } from '../../lib/local/queue.js';
import type { LocalQueues } from '../../lib/local/queue.js';
import { sqsEventSource } from '../../lib/local/sqs-event-source.js';
import type { SqsEventSource } from '../../lib/local/sqs-event-source.js';
import { DELIVERY } from '../../lib/defaults.js';
import { lambdaContext } from './lambda.js';
import { startCutProxy } from './cut-proxy.js';
import type { CutProxy } from './cut-proxy.js';

export interface TestQueues extends LocalQueues {
  /** The way the functions reach the queue server (their SQS_ENDPOINT): cut it for "SQS is down". */
  asEndpoint: CutProxy;
  /** The deliver function on its event source; `invoke` runs the handler in this process. */
  events: SqsEventSource;
  /** Messages visible, hidden (in flight or waiting out a retry) on the delivery queue, and on the dead-letter queue. */
  counts(): Promise<{ visible: number; hidden: number; deadLetters: number }>;
}

export async function startTestQueues(deliverHandler: () => Promise<(event: unknown, ctx: unknown) => Promise<any>>): Promise<TestQueues> {
  const q = await startLocalQueues({ stage: `test${process.pid}` });
  after(() => q.stop());
  const events = sqsEventSource({
    client: q.client,
    queueUrl: q.queueUrl,
    queueArn: q.queueArn,
    batchSize: DELIVERY.BATCH_SIZE,
    concurrency: 2,
    invoke: async (event) => (await deliverHandler())(event, lambdaContext(60_000)),
  });
  const count = async (url: string, name: string) =>
    Number(((await q.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [name as never] }))).Attributes as Record<string, string> | undefined)?.[name] ?? 0);
  return {
    ...q,
    asEndpoint: await startCutProxy(q.endpoint),
    events,
    counts: async () => ({
      visible: await count(q.queueUrl, 'ApproximateNumberOfMessages'),
      hidden: await count(q.queueUrl, 'ApproximateNumberOfMessagesNotVisible'),
      deadLetters: await count(q.deadLetterQueueUrl, 'ApproximateNumberOfMessages'),
    }),
  };
}
