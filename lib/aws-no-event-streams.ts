/**
 * What the Lambda bundles have in place of `@smithy/core/event-streams` (the esbuild alias in
 * serverless.yml). The SDK's protocols import it lazily, only for operations with event streams,
 * which neither DynamoDB's nor SQS's API has; bundled, its module and what it imports (CRC32 on
 * node:zlib) would still load at cold start, since esbuild puts an ES module bundle's Node
 * built-in imports at its top. Should an event stream ever be asked for, this says why it fails.
 */
const leftOut = () => new Error('event streams: @smithy/core/event-streams is left out of this bundle (serverless.yml, esbuild alias); neither DynamoDB nor SQS has them');

export class EventStreamSerde {
  constructor() {
    throw leftOut();
  }
}

export const eventStreamSerdeProvider = (): never => {
  throw leftOut();
};
