/**
 * The figures recorded before delivery moved to the SQS FIFO queue (issue 21): the parking design,
 * in which push delivered each event to the network inline and parked a failing room's events in
 * DynamoDB. From the `npm run bench` run of 2026-12-01 recorded in bench/README.md ("A recorded run",
 * 2-core Intel Xeon VM, Node 20.20.2), kept so that every later run prints its figures beside them.
 * They are constants, not re-measured: that code is gone.
 */
export const BEFORE = {
  label: 'before (parking, inline delivery)',
  recordedOn: '2026-12-01',
  /**
   * 3. Push, per transaction, request to answer (the last event delivered to the no-op network came
   * before the answer), ms; DynamoDB calls per transaction (warm copy) and write units.
   */
  push: {
    1: { p50: 4.56, p99: 9.1, mean: 4.93, dynamoCalls: 3, wru: 2, rruFresh: 1.5 },
    10: { p50: 4.43, p99: 8.74, mean: 4.82, dynamoCalls: 3, wru: 2, rruFresh: 1.5 },
    100: { p50: 5.27, p99: 10.28, mean: 5.76, dynamoCalls: 3, wru: 2, rruFresh: 1.5 },
    1000: { p50: 7.5, p99: 8.56, mean: 7.74, dynamoCalls: 3, wru: 2, rruFresh: 1.5 },
  } as Record<number, { p50: number; p99: number; mean: number; dynamoCalls: number; wru: number; rruFresh: number }>,
  /**
   * How fast that machine was, to read today's figures against: the same run's time per DynamoDB
   * Local call (push, 1 event/transaction: 3 calls in 4.39 ms) and the peers' push p50 (their code
   * has not changed), on a 2-core Intel Xeon VM.
   */
  machine: {
    cpus: '2 × Intel(R) Xeon(R) Processor',
    dynamoMsPerCall: 1.46,
    peersPushP50: {
      bridge: { 1: 0.94, 10: 1.23, 100: 5.19, 1000: 69.9 },
      botsdk: { 1: 0.61, 10: 0.66, 100: 0.77, 1000: 2.99 },
    } as Record<string, Record<number, number>>,
  },
  /** 4. Cost per million bridged events (push only: delivery was inside it), USD. */
  costPerMillionEvents: { 1: 2.903, 10: 0.29, 100: 0.029 } as Record<number, number>,
  /** 5. One room failing (parking): healthy-room delivery and answer per transaction, ms, (a) no failures, (b) one room failing. */
  oneRoom: {
    healthyP50: { a: 3.21, b: 3.51 },
    healthyMean: { a: 3.57, b: 3.77 },
    answerMean: { a: 5.2, b: 13.01 },
    dynamoCallsPerTxn: { a: 3.0, b: 7.01 },
    ratio: { healthyP50: 1.1, healthyMean: 1.06, answerMean: 2.5, healthyEventsPerSec: 0.4 },
  },
} as const;
