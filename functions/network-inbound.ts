// Placeholder while the use case is written; replaced in the next commits.
import { endpoint } from '../lib/appservice/http.js';
import { MatrixError } from '../lib/matrix/errors.js';

export const handler = endpoint(async () => {
  throw new MatrixError(501, 'M_UNRECOGNIZED', 'not yet implemented');
}, { auth: 'none' });
