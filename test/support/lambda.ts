/** Invokes a function the way API Gateway's HTTP API (payload format 2.0) does. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';

export interface Invoke {
  method: string;
  path: string;
  query?: Record<string, string>;
  /**
   * The query string as the caller sent it (repeated names, `+` for a space, …), instead of
   * `query`: API Gateway hands it over as `rawQueryString`, and in `queryStringParameters` each
   * name once, its values decoded and joined with commas.
   */
  rawQuery?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Send the body as it is, not JSON-encoded. */
  rawBody?: string | Buffer;
  timeoutMs?: number;
}

export function apiGatewayEvent(req: Invoke): APIGatewayProxyEventV2 {
  let query = req.query ?? {};
  let rawQueryString = new URLSearchParams(query).toString();
  if (req.rawQuery !== undefined) {
    rawQueryString = req.rawQuery;
    const joined: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(req.rawQuery)) joined[k] = Object.hasOwn(joined, k) ? `${joined[k]},${v}` : v;
    query = joined;
  }
  const raw = req.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const binary = Buffer.isBuffer(raw);
  const headers = Object.fromEntries(Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    version: '2.0',
    routeKey: `${req.method} ${req.path}`,
    rawPath: req.path,
    rawQueryString,
    headers: { host: 'as.example', 'content-type': 'application/json', ...headers },
    queryStringParameters: rawQueryString ? query : undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'as.example',
      domainPrefix: 'as',
      http: { method: req.method, path: req.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: randomUUID(),
      routeKey: `${req.method} ${req.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body: raw === undefined ? undefined : binary ? raw.toString('base64') : raw,
    isBase64Encoded: binary,
  } as APIGatewayProxyEventV2;
}

export function lambdaContext(timeoutMs = 30_000): Context {
  const end = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:test',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/test',
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface Reply {
  status: number;
  body: any;
  headers: Record<string, unknown>;
  /** The decoded bytes of a base64-encoded answer (a medium). */
  bytes?: Buffer;
}

type Handler = (event: any, context: Context) => Promise<APIGatewayProxyStructuredResultV2 | undefined | void>;

export async function invoke(handler: Handler, req: Invoke): Promise<Reply> {
  const res = (await handler(apiGatewayEvent(req), lambdaContext(req.timeoutMs))) as APIGatewayProxyStructuredResultV2;
  const headers = (res.headers ?? {}) as Record<string, unknown>;
  if (res.isBase64Encoded) return { status: res.statusCode ?? 200, body: undefined, headers, bytes: Buffer.from(res.body ?? '', 'base64') };
  let body: any;
  try {
    body = res.body ? JSON.parse(res.body) : undefined;
  } catch {
    body = res.body;
  }
  return { status: res.statusCode ?? 200, body, headers };
}
