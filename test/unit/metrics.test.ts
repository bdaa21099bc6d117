/** The embedded metrics lines (CloudWatch EMF) the functions write: what CloudWatch turns into metrics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setLogSink } from '../../lib/log.js';
import { METRICS, METRICS_NAMESPACE, recordColdStart, recordMetrics, recordMetricsBy } from '../../lib/metrics.js';

const capture = () => {
  const lines: any[] = [];
  setLogSink((l) => lines.push(JSON.parse(l)));
  return lines;
};

test('a line names its metrics, units and dimension sets, and carries their values', () => {
  const lines = capture();
  process.env.STAGE = 'prod';
  recordMetrics({ Delivered: 3, DeliveryLatency: [120, 80], DeadLettered: 0 });
  recordMetricsBy('Errcode', 'M_FORBIDDEN', { HomeserverError: 1 });
  delete process.env.STAGE;
  recordMetrics({ Delivered: 1, DeliveryLatency: [] });

  const [plain, dimensioned, local] = lines;
  assert.deepEqual(plain._aws.CloudWatchMetrics, [
    {
      Namespace: METRICS_NAMESPACE,
      Dimensions: [['Stage']],
      Metrics: [
        { Name: 'Delivered', Unit: 'Count' },
        { Name: 'DeliveryLatency', Unit: 'Milliseconds' },
        { Name: 'DeadLettered', Unit: 'Count' },
      ],
    },
  ]);
  assert.equal(typeof plain._aws.Timestamp, 'number');
  assert.deepEqual([plain.Stage, plain.Delivered, plain.DeliveryLatency, plain.DeadLettered], ['prod', 3, [120, 80], 0]);
  // Published under [Stage] and [Stage, Errcode]: an alarm on the total needs no metric math.
  assert.deepEqual(dimensioned._aws.CloudWatchMetrics[0].Dimensions, [['Stage'], ['Stage', 'Errcode']]);
  assert.deepEqual([dimensioned.Stage, dimensioned.Errcode, dimensioned.HomeserverError], ['prod', 'M_FORBIDDEN', 1]);
  // No STAGE (npm start): `local`; an empty list of values is left out rather than sent empty.
  assert.equal(local.Stage, 'local');
  assert.deepEqual(local._aws.CloudWatchMetrics[0].Metrics, [{ Name: 'Delivered', Unit: 'Count' }]);
  assert.ok(!('DeliveryLatency' in local));
});

test('a cold start is counted once per process, by function', () => {
  const lines = capture();
  recordColdStart('matrix-appservice-lambda-prod-push');
  recordColdStart('matrix-appservice-lambda-prod-push');
  assert.deepEqual(
    lines.map((l) => [l.FunctionName, l.ColdStart]),
    [['matrix-appservice-lambda-prod-push', 1]],
  );
});

test('the catalog: every metric has a CloudWatch unit, and second dimensions are the three the alarms and dashboard use', () => {
  for (const [name, m] of Object.entries(METRICS)) {
    assert.ok(['Count', 'Milliseconds'].includes(m.unit), name);
    if ('dimension' in m) assert.ok(['Outcome', 'Errcode', 'FunctionName'].includes(m.dimension), name);
  }
});
