// Scheduled every minute (serverless.yml): delivers the parked rooms as they come due, for most of the minute.
import type { Context } from 'aws-lambda';
import { getBridge } from '../lib/bridge/runtime.js';
import { drainWhileParked } from '../lib/bridge/parking.js';

export const handler = async (_event: unknown, context: Context) => {
  const remaining = context.getRemainingTimeInMillis();
  return drainWhileParked(await getBridge(), { deadline: Date.now() + remaining - 5000, hardStop: Date.now() + remaining });
};
