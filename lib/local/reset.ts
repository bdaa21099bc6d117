/**
 * `npm run reset`: wipes what `npm start` kept between runs (DynamoDB Local's data in DATA_DIR),
 * as `npm start -- --fresh` does, without starting anything. Refused while an `npm start` runs on
 * that folder. The registration file stays: the homeserver has its tokens.
 */
import { dataDirFrom, describeWipe, lockDataDir, wipeDynamoData } from './data.js';

try {
  const dataDir = dataDirFrom(process.env);
  const lock = lockDataDir(dataDir, 'npm run reset');
  try {
    if (lock.tookOver) console.log(`npm run reset: ${lock.tookOver}`);
    console.log(`npm run reset: ${describeWipe(wipeDynamoData(dataDir))}; the registration file is kept (the homeserver has its tokens)`);
  } finally {
    lock.release();
  }
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(2);
}
