// The SQS event source of the delivery queue: each room's events to the network, in order (partial batch responses).
import { queueConsumer } from '../lib/appservice/queue-consumer.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { deliverRecords } from '../lib/bridge/deliver.js';

export const handler = queueConsumer((records, { deps: bridge, deadline }) => deliverRecords(bridge, records, deadline), { deps: getBridge });
