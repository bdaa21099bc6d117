/**
 * The middy stack of a function on a schedule (EventBridge): load the configuration once per cold
 * start, hand the handler a deadline and a logger, and log how it went. What the handler finds is
 * recorded as metrics and returned (a manual `osls invoke` prints it); an error it throws is logged and re-thrown, so the invocation
 * counts in Lambda's Errors metric (EventBridge retries it twice).
 */
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { getConfig } from '../config.js';
import type { Config } from '../config.js';
import { logger } from '../log.js';
import type { Logger } from '../log.js';
import { recordColdStart } from '../metrics.js';

/** Time kept back from the invocation's end for the log line and the metrics. */
const MARGIN_MS = 2_000;

export function scheduled<R>(handle: (ctx: { config: Config; log: Logger; deadline: number; now: () => number }) => Promise<R>) {
  return middy<ScheduledEvent, R, Error, Context>().handler(async (_event, context) => {
    recordColdStart(context.functionName);
    const log = logger({ requestId: context.awsRequestId, function: context.functionName });
    try {
      const config = await getConfig();
      const deadline = Date.now() + Math.max(context.getRemainingTimeInMillis() - MARGIN_MS, 1000);
      // Returned as the invocation's result: what `osls invoke` prints.
      return await handle({ config, log, deadline, now: Date.now });
    } catch (e) {
      log.error('scheduled run failed', { err: e });
      throw e;
    }
  });
}
