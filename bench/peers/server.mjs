// Runs one peer AS as its own process (a long-running server, as the peers are deployed),
// for the query and push benchmarks. Driven by bench/run.ts over IPC:
//   child -> parent {type: 'ready', port}
//   parent -> child {type: 'wait', total}   child -> parent {type: 'seen', total} once `total`
//                                           m.room.message events reached the event handler
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const kind = process.argv[2];
const mod = await import(kind === 'bridge' ? './bridge-as.mjs' : kind === 'botsdk' ? './botsdk-as.mjs' : './missing.mjs');
const dataDir = mkdtempSync(join(tmpdir(), `bench-${kind}-`));
let seen = 0;
const waiters = [];
const as = await mod.startAs({
  homeserverUrl: process.env.BENCH_HS_URL,
  domain: process.env.BENCH_DOMAIN,
  asToken: process.env.BENCH_AS_TOKEN,
  hsToken: process.env.BENCH_HS_TOKEN,
  prefix: process.env.BENCH_PREFIX,
  dataDir,
  onEvent: (event) => {
    if (event?.type !== 'm.room.message') return;
    seen++;
    while (waiters.length && waiters[0] <= seen) process.send({ type: 'seen', total: waiters.shift() });
  },
});
process.on('message', (m) => {
  if (m?.type !== 'wait') return;
  if (seen >= m.total) process.send({ type: 'seen', total: m.total });
  else waiters.push(m.total);
});
const stop = () => {
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
process.send({ type: 'ready', port: as.port });
