/**
 * The middy stack of a function on an SQS event source (the deliver function): load the
 * configuration and the dependencies once per cold start, hand the handler the records and a
 * deadline, answer with a partial batch response (`batchItemFailures`), and log the invocation.
 * A handler that throws fails the whole batch: the event source returns every message to the
 * queue (that is for our bugs and a missing configuration; a failing delivery is per message).
 */
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { getConfig } from '../config.js';
import { logger } from '../log.js';
import { recordColdStart } from '../metrics.js';

/** Time kept back from the invocation's end: deliveries stop then, and what is left goes back to the queue. */
const MARGIN_MS = 5_000;

export function queueConsumer<D>(
  handle: (records: SQSRecord[], ctx: { deps: D; deadline: number }) => Promise<{ failed: string[] }>,
  opts: { deps: () => Promise<D> },
) {
  return middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
    const started = Date.now();
    recordColdStart(context.functionName);
    const log = logger({ requestId: context.awsRequestId, function: context.functionName });
    try {
      await getConfig();
      const deps = await opts.deps();
      const deadline = Date.now() + Math.max(context.getRemainingTimeInMillis() - MARGIN_MS, 1000);
      const { failed } = await handle(event.Records, { deps, deadline });
      log.info('queue batch', { records: event.Records.length, failed: failed.length, ms: Date.now() - started });
      return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
    } catch (e) {
      log.error('queue batch failed as a whole: every message goes back to the queue', { records: event.Records.length, err: e });
      throw e;
    }
  });
}
