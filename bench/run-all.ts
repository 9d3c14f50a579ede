import { benchClaimThroughput } from './claim-throughput.js';
import { benchEndToEnd } from './end-to-end.js';

await benchClaimThroughput();
await benchEndToEnd();
